// server/range.cpp — a single byte range from the Range field (RFC 9110 §14.1.2, §14.2).
#include "server/range.h"

#include <limits>
#include <optional>

namespace spawnd::server {
namespace {

constexpr std::uint64_t kSaturated = std::numeric_limits<std::uint64_t>::max();

bool is_ows(char c) { return c == ' ' || c == '\t'; }
char to_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// 1*DIGIT, saturating at UINT64_MAX: a position beyond any file size keeps its meaning (a first-pos past the end is
// unsatisfiable, a last-pos past the end is clamped, a suffix longer than the file selects all of it), so there is
// no need to reject it as an overflow.
std::optional<std::uint64_t> parse_digits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    value = value > (kSaturated - digit) / 10 ? kSaturated : value * 10 + digit;
  }
  return value;
}

}  // namespace

RangeStatus parse_range(std::string_view field, std::uint64_t size_bytes, ByteRange& out) noexcept {
  // ranges-specifier = range-unit "=" range-set; the unit is case-insensitive (RFC 9110 §14.1).
  constexpr std::string_view kUnit = "bytes=";
  std::string_view s = trim_ows(field);
  if (s.size() < kUnit.size()) return RangeStatus::Ignore;
  for (std::size_t i = 0; i < kUnit.size(); ++i) {
    if (to_lower(s[i]) != kUnit[i]) return RangeStatus::Ignore;
  }
  s.remove_prefix(kUnit.size());

  // range-set = 1#range-spec. Empty list elements are allowed (RFC 9110 §5.6.1.2); more than one range is
  // ignored because we do not generate multipart/byteranges.
  std::string_view spec;
  int count = 0;
  while (!s.empty()) {
    const std::size_t comma = s.find(',');
    const std::string_view element = trim_ows(s.substr(0, comma));
    s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
    if (element.empty()) continue;
    spec = element;
    if (++count > 1) return RangeStatus::Ignore;
  }
  if (count == 0) return RangeStatus::Ignore;

  const std::size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeStatus::Ignore;
  const std::string_view first_text = spec.substr(0, dash);
  const std::string_view last_text = spec.substr(dash + 1);

  if (first_text.empty()) {
    // suffix-range = "-" suffix-length
    const std::optional<std::uint64_t> suffix = parse_digits(last_text);
    if (!suffix) return RangeStatus::Ignore;
    if (*suffix == 0) return RangeStatus::Unsatisfiable;  // RFC 9110 §14.1.1: needs a non-zero suffix-length
    // RFC 9110 §14.1.1 calls a non-zero suffix of an empty representation satisfiable, but a 206 cannot carry
    // zero bytes in an inclusive range, so we serve the (empty) whole representation instead.
    if (size_bytes == 0) return RangeStatus::Ignore;
    out.first = *suffix >= size_bytes ? 0 : size_bytes - *suffix;
    out.last = size_bytes - 1;
    return RangeStatus::Satisfiable;
  }

  // int-range = first-pos "-" [ last-pos ]
  const std::optional<std::uint64_t> first = parse_digits(first_text);
  if (!first) return RangeStatus::Ignore;
  std::uint64_t last = kSaturated;
  if (!last_text.empty()) {
    const std::optional<std::uint64_t> parsed_last = parse_digits(last_text);
    if (!parsed_last || *parsed_last < *first) return RangeStatus::Ignore;  // invalid range-spec, §14.1.1
    last = *parsed_last;
  }
  if (*first >= size_bytes) return RangeStatus::Unsatisfiable;
  out.first = *first;
  out.last = last >= size_bytes ? size_bytes - 1 : last;
  return RangeStatus::Satisfiable;
}

}  // namespace spawnd::server
