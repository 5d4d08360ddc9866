// server/http_parser.h — the llhttp adapter: bytes in, Request heads and body bytes out (RFC 9112).
//
// One RequestParser per connection. feed() parses as much as it can; once a head is complete is_head_done() turns
// true (take it with take_request()), and body bytes (chunked coding already removed) are appended to the string
// given to feed(). Parsing stops at the end of each message: bytes of a pipelined next request are left unconsumed
// until resume_next() is called, so requests are answered strictly in order.
//
// Limits: the request line plus header fields may take at most `max_header_bytes`; beyond that feed() fails with
// status 414 (still in the request-target) or 431. A body longer than `max_body_bytes` fails with 413.
// llhttp in strict mode already rejects what request smuggling needs: Content-Length together with
// Transfer-Encoding, repeated differing Content-Length, obsolete line folding, bad chunk sizes → 400.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/http_request.h"

namespace spawnd::server {

class RequestParser {
 public:
  enum class Status {
    Ok,     // parsed what it could; check is_head_done() / is_message_done()
    Error,  // malformed or over a limit: answer error_status() and close the connection
  };
  struct Outcome {
    Status status;
    std::size_t consumed;  // bytes of the input used; the caller keeps the rest and feeds it again later
  };

  RequestParser(std::size_t max_header_bytes, std::uint64_t max_body_bytes);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses `data`. Decoded body bytes are appended to `body` (which the caller owns and drains). Must not be called
  // after is_message_done() until resume_next(), nor after an Error.
  [[nodiscard]] Outcome feed(std::string_view data, std::string& body);
  // Moves the head out once is_head_done().
  [[nodiscard]] Request take_request() { return std::move(request_); }
  // After is_message_done(): prepare for the next request on the same connection.
  void resume_next();
  // The status to answer after Status::Error: 400, 413, 414, 417, 431 or 505.
  [[nodiscard]] int error_status() const noexcept { return error_status_; }
  // True once some bytes of a new request arrived (a partial head exists).
  [[nodiscard]] bool has_partial_head() const noexcept { return raw_head_bytes_ > 0 && !is_head_done_; }
  [[nodiscard]] bool is_head_done() const noexcept { return is_head_done_; }
  [[nodiscard]] bool is_message_done() const noexcept { return is_message_done_; }
  [[nodiscard]] std::uint64_t body_bytes() const noexcept { return body_bytes_; }

 private:
  static int on_url(llhttp_t* p, const char* at, std::size_t n);
  static int on_url_complete(llhttp_t* p);
  static int on_header_field(llhttp_t* p, const char* at, std::size_t n);
  static int on_header_value(llhttp_t* p, const char* at, std::size_t n);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, std::size_t n);
  static int on_message_complete(llhttp_t* p);
  // Records `status` as the answer (a limit or a rule of ours, rather than llhttp's verdict); returns HPE_USER.
  int fail(int status);

  llhttp_settings_t settings_{};
  llhttp_t parser_{};
  std::size_t max_header_bytes_;
  std::uint64_t max_body_bytes_;
  Request request_;
  std::string* body_out_ = nullptr;
  std::size_t head_bytes_ = 0;      // field names and values of this head so far
  std::size_t raw_head_bytes_ = 0;  // raw bytes fed while the head is incomplete
  std::uint64_t body_bytes_ = 0;
  bool is_url_done_ = false;
  bool is_in_value_ = false;
  bool is_head_done_ = false;
  bool is_message_done_ = false;
  bool has_own_error_ = false;  // fail() decided the status (a limit), rather than llhttp
  int error_status_ = 400;
};

}  // namespace spawnd::server
