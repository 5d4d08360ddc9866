// spawnd/response.h — Response: what a handler returns, a status, header fields and a body held in memory.
//
// The runtime serialises it as a CGI response (RFC 3875 §6): "Status: 200 OK", the header fields in the order
// they were set, a Content-Length computed from the body (so the server can keep the connection alive), a blank
// line, the body. The SDK owns Status and Content-Length: setting either as a header field is a bug and throws
// std::invalid_argument (which the runtime answers with 500). Header names must be RFC 9110 tokens and values
// must not contain CR, LF or NUL: anything else throws std::invalid_argument too, so a handler cannot be made to
// split a response by user input.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spawnd::sdk {

class Response {
 public:
  using Field = std::pair<std::string, std::string>;

  // An empty response with `status` (100..999; default 200 OK) and no header fields.
  explicit Response(int status = 200);

  // text/plain; charset=utf-8
  [[nodiscard]] static Response text(std::string body, int status = 200);
  // text/html; charset=utf-8. The body is sent as is: escape user text with html_escape().
  [[nodiscard]] static Response html(std::string body, int status = 200);
  // application/json with a body that is already JSON text. See spawnd/json.h for nlohmann::json values.
  [[nodiscard]] static Response json_text(std::string json, int status = 200);
  // A client redirect: `status` (default 303 See Other, the answer to a POST, RFC 9110 §15.4.4) with Location and
  // a one-line HTML document linking to it (RFC 3875 §6.2.4). `location` may be a path ("/cgi-bin/guestbook"):
  // with an explicit 3xx Status it is a client redirect, not a CGI local redirect (RFC 3875 §6.2.2 is the
  // Location-only response).
  [[nodiscard]] static Response redirect(std::string_view location, int status = 303);
  // A small HTML error page: "<h1>404 Not Found</h1><p>message</p>", message escaped.
  [[nodiscard]] static Response error(int status, std::string_view message = {});
  // A JSON error: {"error":"message","status":404} as application/json.
  [[nodiscard]] static Response json_error(int status, std::string_view message);

  [[nodiscard]] int status() const noexcept { return status_; }
  Response& set_status(int status);

  // Replaces every field named `name` (case-insensitive) by one with `value`.
  Response& set_header(std::string_view name, std::string_view value);
  // Appends a field even if one with that name exists (e.g. Set-Cookie, RFC 6265 §3).
  Response& add_header(std::string_view name, std::string_view value);
  // The first field named `name` (case-insensitive), or nullopt.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept;
  [[nodiscard]] const std::vector<Field>& headers() const noexcept { return headers_; }
  Response& set_content_type(std::string_view value) { return set_header("Content-Type", value); }

  [[nodiscard]] std::string& body() noexcept { return body_; }
  [[nodiscard]] const std::string& body() const noexcept { return body_; }
  Response& set_body(std::string body) {
    body_ = std::move(body);
    return *this;
  }
  Response& append(std::string_view text) {
    body_.append(text);
    return *this;
  }

 private:
  int status_;
  std::vector<Field> headers_;
  std::string body_;
};

// The reason phrase for `status` (RFC 9110 §15), e.g. "See Other", or "" for codes without a registered phrase.
[[nodiscard]] const char* reason_phrase(int status) noexcept;

// `text` as a JSON string literal with quotes, escaped per RFC 8259 §7 (for small hand-built JSON without
// nlohmann::json, e.g. error bodies). Bytes >= 0x80 pass through, so valid UTF-8 stays valid.
[[nodiscard]] std::string json_quote(std::string_view text);

}  // namespace spawnd::sdk
