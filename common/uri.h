// common/uri.h — percent-decoding (RFC 3986 §2.1), shared by the server's path normalisation and the SDK's
// query and form parsing.
#pragma once

#include <string>
#include <string_view>

namespace spawnd {

// Percent-decodes `in` into `out` (replacing its contents). If `plus_as_space`, '+' becomes ' ', as in
// application/x-www-form-urlencoded (WHATWG URL §5.1). Returns false on a '%' not followed by two hex digits;
// `out` is then unspecified. Decoded bytes are not validated (a "%00" yields a NUL byte; callers decide).
[[nodiscard]] bool percent_decode(std::string_view in, std::string& out, bool plus_as_space = false);

}  // namespace spawnd
