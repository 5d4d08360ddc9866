// Unit tests for server/response_writer.h: the framing of responses (RFC 9112 §6, §7.1), byte for byte.
#include <catch2/catch.hpp>

#include <string>

#include "server/response_writer.h"
#include "server/static_files.h"

using spawnd::server::error_head;
using spawnd::server::GatewayError;
using spawnd::server::ResponseHead;
using spawnd::server::ResponseWriter;

namespace {

constexpr std::string_view kDate = "Sun, 06 Nov 1994 08:49:37 GMT";

ResponseHead head(int status, std::optional<std::uint64_t> length,
                  std::vector<std::pair<std::string, std::string>> fields = {{"Content-Type", "text/plain"}}) {
  ResponseHead h;
  h.status = status;
  h.fields = std::move(fields);
  h.content_length = length;
  return h;
}

}  // namespace

TEST_CASE("a known-length response gets Content-Length and its body as is", "[unit][response_writer]") {
  ResponseWriter w(false, 1);
  std::string out;
  CHECK(w.write_head(out, head(200, 5), true, kDate));
  w.write_body(out, "hello");
  w.write_end(out);
  CHECK(out ==
        "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: spawnd\r\nContent-Type: text/plain\r\n"
        "Content-Length: 5\r\n\r\nhello");
  CHECK(w.status() == 200);
  CHECK(w.body_bytes() == 5);
  CHECK_FALSE(w.is_chunked());
  CHECK(w.is_head_written());
}

TEST_CASE("the connection's extra field lines follow the response's own, in a built head and an encoded one alike",
          "[unit][response_writer]") {
  constexpr std::string_view kHsts = "Strict-Transport-Security: max-age=60\r\n";
  ResponseWriter built(false, 1);
  std::string out;
  CHECK(built.write_head(out, head(404, 5), true, kDate, kHsts));
  CHECK(out ==
        "HTTP/1.1 404 Not Found\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: spawnd\r\n"
        "Content-Type: text/plain\r\nStrict-Transport-Security: max-age=60\r\nContent-Length: 5\r\n\r\n");
  ResponseWriter encoded(false, 1);
  out.clear();
  CHECK(encoded.write_encoded_head(out, "Content-Type: text/plain\r\nContent-Length: 5\r\n", true, kDate, kHsts));
  CHECK(out ==
        "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: spawnd\r\n"
        "Content-Type: text/plain\r\nContent-Length: 5\r\nStrict-Transport-Security: max-age=60\r\n\r\n");
}

TEST_CASE("an unknown-length response to HTTP/1.1 is chunked and ends with the last-chunk", "[unit][response_writer]") {
  ResponseWriter w(false, 1);
  std::string out;
  CHECK(w.write_head(out, head(200, std::nullopt), true, kDate));
  w.write_body(out, "hello, world");
  w.write_body(out, "");  // no empty chunk: that would end the body
  w.write_body(out, "!");
  w.write_end(out);
  CHECK(out ==
        "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: spawnd\r\nContent-Type: text/plain\r\n"
        "Transfer-Encoding: chunked\r\n\r\nc\r\nhello, world\r\n1\r\n!\r\n0\r\n\r\n");
  CHECK(w.is_chunked());
  CHECK(w.body_bytes() == 13);
}

TEST_CASE("an unknown-length response to HTTP/1.0 is delimited by the close", "[unit][response_writer]") {
  ResponseWriter w(false, 0);
  std::string out;
  CHECK_FALSE(w.write_head(out, head(200, std::nullopt), true, kDate));
  w.write_body(out, "abc");
  w.write_end(out);
  CHECK(out ==
        "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: spawnd\r\nContent-Type: text/plain\r\n"
        "Connection: close\r\n\r\nabc");
  CHECK_FALSE(w.is_chunked());
}

TEST_CASE("an HTTP/1.0 client that keeps the connection is told so", "[unit][response_writer]") {
  ResponseWriter w(false, 0);
  std::string out;
  CHECK(w.write_head(out, head(200, 2), true, kDate));
  CHECK(out.find("Content-Length: 2\r\nConnection: keep-alive\r\n\r\n") != std::string::npos);
}

TEST_CASE("a connection that will close says Connection: close last", "[unit][response_writer]") {
  ResponseWriter w(false, 1);
  std::string out;
  CHECK_FALSE(w.write_head(out, head(200, 0), false, kDate));
  CHECK(out.ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"));
}

TEST_CASE("a response to HEAD keeps its fields but sends no body", "[unit][response_writer]") {
  SECTION("known length: the Content-Length of the GET") {
    ResponseWriter w(true, 1);
    std::string out;
    CHECK(w.write_head(out, head(200, 5), true, kDate));
    w.write_body(out, "hello");
    w.write_end(out);
    CHECK(out.ends_with("Content-Length: 5\r\n\r\n"));
    CHECK(w.is_body_suppressed());
    CHECK(w.body_bytes() == 0);
    CHECK_FALSE(w.count_body(100));
  }
  SECTION("unknown length: neither chunked nor a close") {
    ResponseWriter w(true, 1);
    std::string out;
    CHECK(w.write_head(out, head(200, std::nullopt), true, kDate));
    w.write_body(out, "hello");
    w.write_end(out);
    CHECK(out.ends_with("Content-Type: text/plain\r\n\r\n"));
    CHECK_FALSE(w.is_chunked());
  }
}

TEST_CASE("204 and 304 carry no Content-Length and no body", "[unit][response_writer]") {
  for (int status : {204, 304}) {
    CAPTURE(status);
    ResponseWriter w(false, 1);
    std::string out;
    CHECK(w.write_head(out, head(status, 10, {}), true, kDate));
    w.write_body(out, "ignored");
    w.write_end(out);
    CHECK(out.ends_with("Server: spawnd\r\n\r\n"));
    CHECK(w.is_body_suppressed());
  }
}

TEST_CASE("fields the server owns are never copied from a gateway's head", "[unit][response_writer]") {
  ResponseWriter w(false, 1);
  std::string out;
  CHECK(w.write_head(out,
                     head(200, 1,
                          {{"connection", "upgrade"}, {"Keep-Alive", "timeout=5"}, {"Transfer-Encoding", "gzip"},
                           {"Content-Length", "99"}, {"Date", "yesterday"}, {"Server", "evil"}, {"Upgrade", "h2c"},
                           {"Proxy-Connection", "x"}, {"TE", "trailers"}, {"Trailer", "X"}, {"X-Kept", "yes"}}),
                     true, kDate));
  CHECK(out ==
        "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: spawnd\r\nX-Kept: yes\r\n"
        "Content-Length: 1\r\n\r\n");
}

TEST_CASE("a gateway's reason phrase replaces the standard one", "[unit][response_writer]") {
  ResponseWriter w(false, 1);
  std::string out;
  ResponseHead h = head(404, 0, {});
  h.reason = "Nothing Here";
  CHECK(w.write_head(out, h, true, kDate));
  CHECK(out.starts_with("HTTP/1.1 404 Nothing Here\r\n"));
}

TEST_CASE("error responses are an HTML page with its length, 503 says Retry-After", "[unit][response_writer]") {
  const std::string page = spawnd::server::error_page(503);
  ResponseWriter w(false, 1);
  std::string out;
  CHECK_FALSE(w.write_head(out, error_head(503, page.size()), false, kDate));
  w.write_body(out, page);
  CHECK(out == "HTTP/1.1 503 Service Unavailable\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: spawnd\r\n"
               "Content-Type: text/html; charset=utf-8\r\nRetry-After: 1\r\nContent-Length: " +
                   std::to_string(page.size()) + "\r\nConnection: close\r\n\r\n" + page);
  CHECK(w.body_bytes() == page.size());

  const ResponseHead bad = error_head(502, 7);
  CHECK(bad.status == 502);
  CHECK(bad.content_length == std::optional<std::uint64_t>(7));
  CHECK(bad.fields.size() == 1);  // no Retry-After but for 503
}

TEST_CASE("gateway errors map to 502, 504, 503 and 500", "[unit][response_writer]") {
  CHECK(spawnd::server::status_for(GatewayError::BadGateway) == 502);
  CHECK(spawnd::server::status_for(GatewayError::GatewayTimeout) == 504);
  CHECK(spawnd::server::status_for(GatewayError::ServiceUnavailable) == 503);
  CHECK(spawnd::server::status_for(GatewayError::Internal) == 500);
}

TEST_CASE("a head taken back leaves a writer that can write another", "[unit][response_writer]") {
  ResponseWriter w(true, 0);
  std::string out;
  CHECK(w.write_head(out, head(200, std::nullopt), true, kDate));  // HEAD: no body, so no close to delimit it
  w.retract_head();
  CHECK_FALSE(w.is_head_written());
  CHECK(w.status() == 0);
  CHECK(w.is_head_request());  // what it knows of the request stays
}

TEST_CASE("NPH output passes through, its status is read from its status line", "[unit][response_writer]") {
  ResponseWriter w(false, 1);
  w.note_raw("HTTP/1.1 404 Not Found\r\n\r\n");
  w.note_raw("more");
  CHECK(w.is_raw());
  CHECK(w.is_head_written());
  CHECK(w.status() == 404);
  CHECK(w.body_bytes() == 30);

  ResponseWriter bare(false, 1);
  bare.note_raw("no status line");
  CHECK(bare.status() == 200);
}
