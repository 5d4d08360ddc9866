// server/conditional.h — conditional requests (RFC 9110 §13) for static representations.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace spawnd::server {

// A strong entity tag for a file, derived from its size and modification time in nanoseconds:
// "\"<size hex>-<mtime ns hex>\"" including the double quotes (RFC 9110 §8.8.3).
[[nodiscard]] std::string make_etag(std::uint64_t size_bytes, std::int64_t mtime_ns);

// The request's precondition fields; empty string_view means the field was absent.
struct Preconditions {
  std::string_view if_match{};
  std::string_view if_none_match{};
  std::string_view if_modified_since{};
  std::string_view if_unmodified_since{};
};

enum class PreconditionResult {
  Proceed,             // serve the representation normally
  NotModified,         // 304 (only for GET and HEAD)
  PreconditionFailed,  // 412
};

// Evaluates the preconditions in the order of RFC 9110 §13.2.2: If-Match (strong comparison, "*" matches),
// then If-Unmodified-Since when If-Match is absent, then If-None-Match (weak comparison; GET/HEAD → NotModified,
// other methods → PreconditionFailed), then If-Modified-Since when If-None-Match is absent and the method is GET or
// HEAD. Entity-tag lists are comma-separated and may mix weak (W/"x") and strong tags. Unparseable dates are ignored.
// `last_modified` is in seconds since the epoch (HTTP dates have one-second resolution).
[[nodiscard]] PreconditionResult evaluate_preconditions(std::string_view method, const Preconditions& pre,
                                                        std::string_view etag, std::time_t last_modified);

// If-Range (RFC 9110 §13.1.5): true if the Range field should be honoured. An absent If-Range (empty) → true;
// an entity tag must match `etag` strongly; an HTTP-date must equal `last_modified` exactly.
[[nodiscard]] bool if_range_allows(std::string_view if_range, std::string_view etag, std::time_t last_modified);

}  // namespace spawnd::server
