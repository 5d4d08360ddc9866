// server/mime.cpp — media types by file extension.
#include "server/mime.h"

#include <array>
#include <cstddef>

namespace spawnd::server {
namespace {

struct MimeEntry {
  std::string_view extension;  // lower case, without the dot
  std::string_view type;
};

// Linear search: the table is small, and it stays readable. JavaScript is text/javascript (RFC 9239 §6).
constexpr std::array<MimeEntry, 33> kMimeTable{{
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"wasm", "application/wasm"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
}};

constexpr std::string_view kDefaultType = "application/octet-stream";

constexpr char to_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equals_lower(std::string_view mixed, std::string_view lower) noexcept {
  if (mixed.size() != lower.size()) return false;
  for (std::size_t i = 0; i < mixed.size(); ++i) {
    if (to_lower(mixed[i]) != lower[i]) return false;
  }
  return true;
}

}  // namespace

std::string_view mime_type_for(std::string_view path) noexcept {
  const std::size_t slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return kDefaultType;
  const std::string_view extension = name.substr(dot + 1);
  for (const MimeEntry& entry : kMimeTable) {
    if (equals_lower(extension, entry.extension)) return entry.type;
  }
  return kDefaultType;
}

}  // namespace spawnd::server
