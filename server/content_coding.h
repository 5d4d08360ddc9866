// server/content_coding.h — precompressed representations of static files (--precompressed, like nginx's
// gzip_static and Caddy's `precompressed`) and the Accept-Encoding negotiation that chooses one (RFC 9110 §12.5.3).
//
// A precompressed representation of FILE is a sidecar file beside it, FILE.br, FILE.gz or FILE.zst, made by the
// site's build (`gzip -k`, `brotli`, `zstd`); spawnd never compresses anything itself. Pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace spawnd::server {

// One content coding spawnd can serve precompressed.
struct ContentCoding {
  std::string_view name;    // the content-coding token: "br", "gzip", "zstd" (RFC 9110 §8.4.1)
  std::string_view suffix;  // the sidecar file's suffix: ".br", ".gz", ".zst"
};

// The codings --precompressed accepts, by name: br, gzip, zstd.
[[nodiscard]] const std::vector<ContentCoding>& known_content_codings() noexcept;
// The codings named in `names` ("br", "gzip", "zstd"), in that order, duplicates dropped. Throws
// spawnd::ConfigError naming an unknown one.
[[nodiscard]] std::vector<ContentCoding> parse_content_codings(const std::vector<std::string>& names);

// The weight, in thousandths (0-1000), that the Accept-Encoding field value `accept_encoding` gives `coding` (RFC
// 9110 §12.5.3, §12.4.2): the q of a member naming it (case-insensitively; "x-gzip" counts as "gzip", RFC 9110
// §8.4.1.3), else the q of "*", else 1000 for "identity" (acceptable unless excluded) and 0 for any other coding.
// A member without q has q=1; one whose q is malformed is ignored. Several members naming the coding: the highest.
// 0 means "not acceptable".
[[nodiscard]] int coding_quality(std::string_view accept_encoding, std::string_view coding) noexcept;

}  // namespace spawnd::server
