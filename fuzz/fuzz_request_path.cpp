// fuzz/fuzz_request_path.cpp — request-path normalisation (server/static_path.h), the guard in front of the
// static files and the CGI mapping.
//
// Input: the raw path of a request-target (still percent-encoded).
// Asserts, for a path that normalises (Ok): it starts with '/', holds no NUL, no empty segment ("//") and no "." or
// ".." segment and no dotfile segment (but a first segment ".well-known", RFC 8615); and normalising it again (after percent-encoding the '%' bytes it may hold,
// which were "%25" in the input) gives the same path: normalisation is idempotent.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "server/static_path.h"

using spawnd::server::normalize_request_path;
using spawnd::server::PathStatus;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  std::string out;
  if (normalize_request_path(raw, out) != PathStatus::Ok) return 0;

  FUZZ_CHECK(!out.empty() && out.front() == '/');
  FUZZ_CHECK(out.find('\0') == std::string::npos);
  // Segments between slashes; the last may be empty (a trailing '/' is kept for directory indexes).
  std::size_t begin = 1;
  while (begin <= out.size()) {
    std::size_t end = out.find('/', begin);
    if (end == std::string::npos) end = out.size();
    const std::string_view segment = std::string_view(out).substr(begin, end - begin);
    FUZZ_CHECK(!segment.empty() || end == out.size());
    FUZZ_CHECK(segment != "." && segment != "..");
    FUZZ_CHECK(segment.empty() || segment.front() != '.' || (begin == 1 && segment == ".well-known"));
    begin = end + 1;
  }

  std::string encoded;
  for (char c : out) {
    if (c == '%') encoded += "%25";
    else encoded += c;
  }
  std::string again;
  FUZZ_CHECK(normalize_request_path(encoded, again) == PathStatus::Ok);
  FUZZ_CHECK(again == out);
  return 0;
}
