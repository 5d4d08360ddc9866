// common/http_status.h — reason phrases of HTTP status codes, shared by the server's status lines and the SDK's
// CGI "Status:" fields and error pages.
#pragma once

namespace spawnd {

// The reason phrase registered for `status` (RFC 9110 §15), e.g. "See Other", or "" for a code without one
// (a status line may carry an empty reason phrase, RFC 9112 §4).
[[nodiscard]] const char* reason_phrase(int status) noexcept;

}  // namespace spawnd
