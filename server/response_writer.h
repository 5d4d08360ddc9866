// server/response_writer.h — the framing of one HTTP/1.x response (RFC 9112 §4, §6, §7.1), apart from any I/O.
//
// A ResponseWriter appends the bytes of one response to a string the caller owns (the connection's output buffer):
// the status line, the fields a gateway or the static files gave, then the fields the server owns (Date, Server,
// Connection) and the framing: Content-Length when the body length is known, chunked transfer coding when it is
// not and the client speaks HTTP/1.1, or a body delimited by the close for an HTTP/1.0 client. Responses to HEAD,
// and 1xx/204/304 responses, carry fields that describe a body that is never sent (RFC 9110 §9.3.2, §15.3.5,
// §15.4.5). It remembers what it decided (chunked, body suppressed, status, body bytes) for the rest of the response
// and for the access log.
//
// One ResponseWriter per request: the connection makes a fresh one (by assignment) with every new request head.
// Pure and single-threaded; it never fails.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "server/gateway/gateway.h"

namespace spawnd::server {

// The interim response to "Expect: 100-continue" (RFC 9110 §10.1.1, §15.2.1).
inline constexpr std::string_view kContinueResponse = "HTTP/1.1 100 Continue\r\n\r\n";

class ResponseWriter {
 public:
  // A writer for a response to an HTTP/1.1 GET (what the connection answers when no head could be parsed).
  ResponseWriter() noexcept = default;
  // `is_head_request`: the request's method is HEAD, so no body is sent whatever the head says. `version_minor`: the
  // request's HTTP/1.x minor version (0 or 1); an HTTP/1.0 client gets no chunked coding (RFC 9112 §6.1).
  ResponseWriter(bool is_head_request, int version_minor) noexcept
      : is_head_request_(is_head_request), version_minor_(version_minor) {}

  // Appends the head of the response to `out`: "HTTP/1.1 <status> <reason>" (the standard reason phrase when
  // head.reason is empty), Date (`date`, an IMF-fixdate, RFC 9110 §6.6.1), "Server: spawnd", the fields of `head`
  // except those the server owns (is_server_owned_field()), `extra_fields` (field lines, "Name: value\r\n" each:
  // the connection's own, Strict-Transport-Security; or empty), then the framing:
  //   - head.content_length known: "Content-Length: N", except on 204 and 304 (RFC 9110 §8.6);
  //   - unknown, body not suppressed, HTTP/1.1 client: "Transfer-Encoding: chunked" (RFC 9112 §7.1);
  //   - unknown, body not suppressed, HTTP/1.0 client: no length; the close ends the body (RFC 9112 §6.3 item 8),
  //     so the connection cannot persist.
  // Last "Connection: close" when the connection will not persist, or "Connection: keep-alive" to an HTTP/1.0 client
  // when it will (RFC 9112 §9.3). `keep_alive`: whether the caller wants to keep the connection. Returns whether it
  // can: `keep_alive`, or false for a close-delimited body. Call once per response (again only after retract_head()).
  [[nodiscard]] bool write_head(std::string& out, const ResponseHead& head, bool keep_alive, std::string_view date,
                                std::string_view extra_fields = {});

  // The same for a plain 200 whose fields are encoded already (a cached static file's StaticFile::head_fields):
  // `encoded_fields` is every field line ("Name: value\r\n" each), Content-Length included, none server-owned but
  // that one; `extra_fields` as for write_head(). Appends the status line, Date, Server, both, the Connection field
  // as above and the blank line. Returns `keep_alive`.
  [[nodiscard]] bool write_encoded_head(std::string& out, std::string_view encoded_fields, bool keep_alive,
                                        std::string_view date, std::string_view extra_fields = {});

  // Appends body bytes: as one chunk (hex size line, bytes, CRLF) when chunked, as they are otherwise, nothing when
  // the body is suppressed or `bytes` is empty. Counts them in body_bytes().
  void write_body(std::string& out, std::string_view bytes);
  // A body of `n` bytes sent by other means (sendfile of a static file): counted in body_bytes() unless suppressed.
  // Returns false when the body is suppressed (nothing must be sent).
  [[nodiscard]] bool count_body(std::uint64_t n) noexcept;
  // Ends the body: appends the last-chunk and the empty trailer section ("0\r\n\r\n") when chunked, else nothing.
  void write_end(std::string& out);

  // NPH (RFC 3875 §5): the gateway writes the whole response itself and these bytes go out as they are. The first
  // call takes the status from a status line at their front ("HTTP/1.1 404 ...", else 200). Counts the bytes.
  void note_raw(std::string_view bytes);

  // Forgets the head written by write_head(): the caller cut it back out of its buffer before any of it was sent
  // (to answer an error status instead). Keeps what it knows of the request.
  void retract_head() noexcept { *this = ResponseWriter(is_head_request_, version_minor_); }

  [[nodiscard]] bool is_head_written() const noexcept { return is_head_written_; }
  [[nodiscard]] bool is_chunked() const noexcept { return is_chunked_; }
  [[nodiscard]] bool is_body_suppressed() const noexcept { return is_body_suppressed_; }
  [[nodiscard]] bool is_raw() const noexcept { return is_raw_; }
  [[nodiscard]] bool is_head_request() const noexcept { return is_head_request_; }
  // The status of the response (0 before write_head() or note_raw()).
  [[nodiscard]] int status() const noexcept { return status_; }
  // Body bytes of the response as the access log counts them (without chunk framing; NPH: every byte).
  [[nodiscard]] std::uint64_t body_bytes() const noexcept { return body_bytes_; }

 private:
  // The head's end: the Connection field (close, or keep-alive for HTTP/1.0) and the blank line.
  void end_head(std::string& out, bool keep_alive) const;
  bool is_head_request_ = false;
  int version_minor_ = 1;
  bool is_head_written_ = false;
  bool is_chunked_ = false;
  bool is_body_suppressed_ = false;
  bool is_raw_ = false;
  int status_ = 0;
  std::uint64_t body_bytes_ = 0;
};

// True for the fields the server writes itself and never copies from a gateway's head: hop-by-hop fields (RFC 9110
// §7.6.1: Connection, Keep-Alive, Upgrade, Proxy-Connection, TE, Trailer), the framing (Transfer-Encoding,
// Content-Length), Date and Server. Case-insensitive.
[[nodiscard]] bool is_server_owned_field(std::string_view name) noexcept;

// The status that answers a gateway's failure before its head was sent: 502, 504, 503 or 500 (gateway.h).
[[nodiscard]] int status_for(GatewayError error) noexcept;

// The head of an error response the server makes itself: `status`, a text/html page of `page_bytes` bytes
// (error_page() in static_files.h), and "Retry-After: 1" with 503 (RFC 9110 §10.2.3: over capacity for a moment).
[[nodiscard]] ResponseHead error_head(int status, std::uint64_t page_bytes);

}  // namespace spawnd::server
