// server/http_date.h — HTTP-date formatting and parsing (RFC 9110 §5.6.7).
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace spawnd::server {

// Formats `t` (seconds since the epoch, UTC) as an IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (always 29 bytes).
[[nodiscard]] std::string format_http_date(std::time_t t);

// Parses an HTTP-date in any of the three formats a recipient must accept (RFC 9110 §5.6.7): IMF-fixdate,
// obsolete RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37 1994").
// Returns nullopt for anything else (an invalid date in a conditional header is ignored, RFC 9110 §13.1.3).
[[nodiscard]] std::optional<std::time_t> parse_http_date(std::string_view s);

}  // namespace spawnd::server
