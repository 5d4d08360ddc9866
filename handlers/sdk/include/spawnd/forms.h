// spawnd/forms.h — the pure parsers behind Request: query strings and urlencoded bodies, multipart/form-data,
// Cookie headers, media types. No I/O, no exceptions for bad input: every parser returns a FormError, and
// Request turns a non-None result into HttpError(400).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <spawnd/params.h>

namespace spawnd::sdk {

enum class [[nodiscard]] FormError {
  None,
  BadEscape,        // a '%' not followed by two hex digits (RFC 3986 §2.1)
  TooManyFields,    // more than Limits::max_form_fields entries
  FieldTooLarge,    // a decoded name + value longer than Limits::max_field_bytes
  FileTooLarge,     // an uploaded file longer than Limits::max_file_bytes
  MissingBoundary,  // multipart/form-data without a usable boundary parameter (RFC 2046 §5.1.1)
  Malformed,        // multipart structure or part headers that do not parse
  Truncated,        // multipart body that ends before its close-delimiter
};

// A short English description for error pages and logs, e.g. "malformed percent-escape".
[[nodiscard]] const char* describe(FormError error) noexcept;

// Parses application/x-www-form-urlencoded text (also used for QUERY_STRING), appending to `out`: pairs split on
// '&', name and value at the first '=' (no '=' means an empty value), empty pairs skipped, '+' decoded as space,
// then percent-decoded (WHATWG URL §5.1). Fails on the first bad pair; `out` then holds the pairs before it.
FormError parse_urlencoded(std::string_view text, Params& out, const Limits& limits);

// The boundary parameter of a multipart Content-Type value, unquoted, or nullopt if absent, empty or longer than
// 70 characters (RFC 2046 §5.1.1).
[[nodiscard]] std::optional<std::string> multipart_boundary(std::string_view content_type);

// Parses a multipart/form-data body (RFC 7578, framing per RFC 2046 §5.1.1) delimited by `boundary`, appending
// fields and files to `out`. The preamble and epilogue are ignored. Each part needs Content-Disposition: form-data
// with a name; a filename parameter makes it a file. Names and filenames are taken as sent (no decoding).
FormError parse_multipart(std::string_view body, std::string_view boundary, Form& out, const Limits& limits);

// Parses a Cookie header value (RFC 6265 §5.4 / §4.2.1: "a=1; b=2") leniently, appending to `out`: pairs without
// '=' or with an empty name are skipped, surrounding whitespace is trimmed, a DQUOTE-wrapped value is unwrapped.
// Values are not decoded: RFC 6265 defines no encoding.
void parse_cookies(std::string_view header, Params& out);

// The media type of a Content-Type value, lower-cased and without parameters ("Text/HTML; charset=x" ->
// "text/html"), per RFC 9110 §8.3.1.
[[nodiscard]] std::string media_type(std::string_view content_type);

}  // namespace spawnd::sdk
