// server/range.h — the Range request field for a single byte range (RFC 9110 §14.1.2, §14.2).
#pragma once

#include <cstdint>
#include <string_view>

namespace spawnd::server {

// An inclusive range of byte offsets: first <= last < size of the representation.
struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  [[nodiscard]] std::uint64_t length() const noexcept { return last - first + 1; }
};

enum class RangeStatus {
  Ignore,         // no usable Range: serve 200 with the whole representation (also for multiple ranges,
                  // which we do not serve as multipart/byteranges, and for a unit other than "bytes")
  Satisfiable,    // `out` holds the range: serve 206 with Content-Range
  Unsatisfiable,  // 416 with "Content-Range: bytes */<size>"
};

// Parses `field` (e.g. "bytes=0-499", "bytes=500-", "bytes=-500") against a representation of `size_bytes`.
// A last-byte-pos past the end is clamped to size-1; a suffix length larger than the size selects the whole
// representation; a first-byte-pos >= size is Unsatisfiable (so is any range of an empty representation, except a
// suffix range, which RFC 9110 §14.1.1 calls satisfiable: it is Ignored, since a 206 cannot carry zero bytes).
// A suffix length of 0 is Unsatisfiable. Numbers too large for 64 bits saturate rather than fail.
// A syntactically invalid field is ignored (RFC 9110 §14.2: "a server MAY ignore the Range header field").
[[nodiscard]] RangeStatus parse_range(std::string_view field, std::uint64_t size_bytes, ByteRange& out) noexcept;

}  // namespace spawnd::server
