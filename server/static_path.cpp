// server/static_path.cpp — request path → safe path below the document root.
#include "server/static_path.h"

#include <vector>

#include "common/uri.h"

namespace spawnd::server {

PathStatus normalize_request_path(std::string_view raw_path, std::string& out) {
  if (raw_path.empty() || raw_path.front() != '/') return PathStatus::BadRequest;

  // Split on the literal '/' first and decode each segment on its own: a '/' that appears only after decoding
  // came from "%2F", which would let a client smuggle a separator past this function, so it is refused.
  std::vector<std::string> segments;
  std::string decoded;
  bool ends_as_directory = false;
  std::size_t pos = 1;
  for (;;) {
    const std::size_t slash = raw_path.find('/', pos);
    const std::string_view raw_segment =
        raw_path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    const bool is_last = slash == std::string_view::npos;

    if (!percent_decode(raw_segment, decoded)) return PathStatus::BadRequest;
    if (decoded.find('/') != std::string::npos || decoded.find('\0') != std::string::npos) {
      return PathStatus::NotFound;
    }

    // RFC 3986 §5.2.4: an empty, "." or ".." last segment leaves the output ending in '/'.
    if (decoded.empty() || decoded == ".") {
      ends_as_directory = is_last;
    } else if (decoded == "..") {
      if (segments.empty()) return PathStatus::NotFound;  // would climb above the root
      segments.pop_back();
      ends_as_directory = is_last;
    } else if (decoded.front() == '.' && !(decoded == ".well-known" && segments.empty())) {
      return PathStatus::NotFound;  // dotfiles (.git, .htpasswd) are never served; /.well-known/ is (RFC 8615)
    } else {
      segments.push_back(decoded);
      ends_as_directory = false;
    }

    if (is_last) break;
    pos = slash + 1;
  }

  out.clear();
  for (const std::string& segment : segments) {
    out.push_back('/');
    out += segment;
  }
  if (out.empty() || ends_as_directory) out.push_back('/');
  return PathStatus::Ok;
}

std::size_t script_path_length(std::string_view normalized_path, std::string_view extension) {
  if (extension.empty()) return std::string_view::npos;
  std::size_t start = 1;  // after the '/' that begins the segment
  while (start < normalized_path.size()) {
    std::size_t end = normalized_path.find('/', start);
    if (end == std::string_view::npos) end = normalized_path.size();
    const std::string_view segment = normalized_path.substr(start, end - start);
    if (segment.size() > extension.size() && segment.ends_with(extension)) return end;
    start = end + 1;
  }
  return std::string_view::npos;
}

bool is_under_prefix(std::string_view normalized_path, std::string_view prefix) {
  while (prefix.size() > 1 && prefix.back() == '/') prefix.remove_suffix(1);
  if (prefix.empty() || prefix == "/") return true;
  if (!normalized_path.starts_with(prefix)) return false;
  return normalized_path.size() == prefix.size() || normalized_path[prefix.size()] == '/';
}

}  // namespace spawnd::server
