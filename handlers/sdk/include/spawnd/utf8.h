// spawnd/utf8.h — UTF-8 checks for user text (RFC 3629), for handlers that limit lengths in characters or must
// store only valid text.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace spawnd::sdk {

// The number of code points in `text` if it is valid UTF-8 (no overlong forms, no surrogates, nothing above
// U+10FFFF, RFC 3629 §4), else nullopt.
[[nodiscard]] std::optional<size_t> utf8_length(std::string_view text) noexcept;

[[nodiscard]] inline bool is_valid_utf8(std::string_view text) noexcept { return utf8_length(text).has_value(); }

}  // namespace spawnd::sdk
