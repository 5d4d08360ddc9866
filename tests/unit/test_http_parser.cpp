// Request parsing edge cases through the llhttp adapter (server/http_parser.h).
#include <catch2/catch.hpp>

#include <string>

#include "server/http_parser.h"

using spawnd::server::Request;
using spawnd::server::RequestParser;

namespace {

struct Parsed {
  bool ok = false;
  int error_status = 0;
  bool head_done = false;
  bool message_done = false;
  std::size_t consumed = 0;
  Request request;
  std::string body;
};

// Feeds `input` in pieces of `step` bytes (0: all at once) until the first message ends or an error.
Parsed parse(const std::string& input, std::size_t step = 0, std::size_t max_header = 8192,
             std::uint64_t max_body = 1 << 20) {
  RequestParser p(max_header, max_body);
  Parsed out;
  std::size_t pos = 0;
  bool taken = false;
  while (pos < input.size()) {
    std::size_t n = step ? std::min(step, input.size() - pos) : input.size() - pos;
    auto r = p.feed(std::string_view(input).substr(pos, n), out.body);
    out.consumed += r.consumed;
    if (r.status == RequestParser::Status::Error) {
      out.error_status = p.error_status();
      return out;
    }
    if (p.is_head_done() && !taken) {
      out.request = p.take_request();
      taken = true;
    }
    if (p.is_message_done()) break;
    pos += r.consumed;
    if (r.consumed < n) break;
  }
  out.ok = true;
  out.head_done = taken;
  out.message_done = p.is_message_done();
  return out;
}

}  // namespace

TEST_CASE("An absolute-form target is made origin-form, its authority taking the Host field's place (RFC 9112 §3.2.2)",
          "[unit][http_parser]") {
  auto r = parse("GET HTTP://Example.org:8080/a/b?x=1 HTTP/1.1\r\nHost: other.example\r\n\r\n");
  REQUIRE(r.ok);
  CHECK(r.request.target == "/a/b?x=1");
  CHECK(r.request.path == "/a/b");
  CHECK(r.request.query == "x=1");
  CHECK(r.request.field("Host") == std::optional<std::string_view>("Example.org:8080"));
  // No path: "/"; https too; HTTP/1.0 without a Host field gets one.
  r = parse("GET https://example.org?q HTTP/1.0\r\n\r\n");
  REQUIRE(r.ok);
  CHECK(r.request.target == "/?q");
  CHECK(r.request.field("Host") == std::optional<std::string_view>("example.org"));
  // Still: an HTTP/1.1 request needs its Host field (§3.2).
  r = parse("GET http://example.org/ HTTP/1.1\r\n\r\n");
  CHECK_FALSE(r.ok);
  CHECK(r.error_status == 400);
}

TEST_CASE("A simple GET is split into method, path, query and fields", "[unit][http_parser]") {
  auto r = parse("GET /a/b%20c?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nX-Thing:  padded value \t\r\n\r\n");
  REQUIRE(r.ok);
  REQUIRE(r.message_done);
  CHECK(r.request.method == "GET");
  CHECK(r.request.target == "/a/b%20c?x=1&y=2");
  CHECK(r.request.path == "/a/b%20c");
  CHECK(r.request.query == "x=1&y=2");
  CHECK(r.request.version_minor == 1);
  CHECK(r.request.is_keep_alive);
  CHECK_FALSE(r.request.has_body);
  CHECK(r.request.field("host") == std::optional<std::string_view>("example.com"));
  CHECK(r.request.field("X-THING") == std::optional<std::string_view>("padded value"));
}

TEST_CASE("Parsing is the same when bytes arrive one at a time", "[unit][http_parser]") {
  std::string req = "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
  auto whole = parse(req);
  auto bytewise = parse(req, 1);
  REQUIRE(whole.ok);
  REQUIRE(bytewise.ok);
  CHECK(bytewise.request.path == "/p");
  CHECK(bytewise.body == "hello");
  CHECK(whole.body == "hello");
  CHECK(bytewise.message_done);
}

TEST_CASE("Parsing stops at the end of a message so that pipelined requests wait their turn", "[unit][http_parser]") {
  std::string first = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n";
  std::string second = "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
  RequestParser p(8192, 1024);
  std::string body;
  auto r = p.feed(first + second, body);
  REQUIRE(r.status == RequestParser::Status::Ok);
  CHECK(r.consumed == first.size());
  CHECK(p.take_request().path == "/1");
  REQUIRE(p.is_message_done());
  p.resume_next();
  auto r2 = p.feed(second, body);
  REQUIRE(r2.status == RequestParser::Status::Ok);
  CHECK(p.is_message_done());
  CHECK(p.take_request().path == "/2");
}

TEST_CASE("A request asking for an Upgrade is an ordinary request and the next one parses", "[unit][http_parser]") {
  // llhttp pauses with HPE_PAUSED_UPGRADE after such a message; we implement no upgrade, so we must not let it.
  std::string first = "GET /1 HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  std::string second = "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
  RequestParser p(8192, 1024);
  std::string body;
  auto r = p.feed(first + second, body);
  REQUIRE(r.status == RequestParser::Status::Ok);
  CHECK(r.consumed == first.size());
  CHECK(p.take_request().path == "/1");
  REQUIRE(p.is_message_done());
  p.resume_next();
  auto r2 = p.feed(second, body);
  REQUIRE(r2.status == RequestParser::Status::Ok);
  CHECK(r2.consumed == second.size());
  CHECK(p.is_message_done());
  CHECK(p.take_request().path == "/2");
}

TEST_CASE("A chunked body is decoded", "[unit][http_parser]") {
  auto r = parse("POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
                 3);
  REQUIRE(r.ok);
  CHECK(r.request.is_chunked);
  CHECK(r.request.has_body);
  CHECK(r.body == "hello world");
  CHECK(r.message_done);
}

TEST_CASE("HTTP/1.0 closes by default and keeps alive only when asked", "[unit][http_parser]") {
  CHECK_FALSE(parse("GET / HTTP/1.0\r\n\r\n").request.is_keep_alive);
  CHECK(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").request.is_keep_alive);
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").request.is_keep_alive);
}

TEST_CASE("Expect: 100-continue is recognised and other expectations fail with 417", "[unit][http_parser]") {
  auto r = parse("PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
  REQUIRE(r.ok);
  CHECK(r.request.expects_continue);
  CHECK_FALSE(r.message_done);  // the body has not arrived yet
  CHECK(parse("PUT /x HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\n\r\n").error_status == 417);
}

TEST_CASE("Malformed and hostile requests get the right status", "[unit][http_parser]") {
  struct Case {
    const char* name;
    std::string input;
    int status;
  };
  const Case cases[] = {
      {"garbage request line", "GARBAGE\r\n\r\n", 400},
      {"HTTP/0.9 request line (no version)", "GET /\r\n\r\n", 505},
      {"Content-Length with Transfer-Encoding (smuggling)",
       "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"two different Content-Length values",
       "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
      {"non-numeric Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", 400},
      {"Transfer-Encoding not ending in chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
      {"a transfer coding other than chunked (RFC 9112 §6.1)",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
      {"another coding on a second field line",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: x-custom;a=1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
      {"chunked applied twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400},
      {"space before the colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
      {"bad chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400},
      {"two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400},
      {"two Host fields in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400},
      {"absolute-form target of another scheme", "GET ftp://example.com/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"absolute-form target with userinfo", "GET http://u:p@example.com/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"absolute-form target without a host", "GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"absolute-form target with a bad host", "GET http://a b/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"a target that is neither origin- nor absolute-form", "GET a.txt HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"declared body over the limit", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5000000\r\n\r\n", 413},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto r = parse(c.input);
    CHECK_FALSE(r.ok);
    CHECK(r.error_status == c.status);
  }
}

TEST_CASE("A Host field is uri-host [ \":\" port ] and anything else is 400 (RFC 9110 7.2)", "[unit][http_parser]") {
  const char* const valid[] = {"example.org", "example.org:8080", "Example.ORG.", "example.org:", "10.0.0.1:80",
                               "[::1]", "[::1]:8080", "[::1]:", "[2001:db8::1]", "[::ffff:10.0.0.1]:80", "[]",
                               "xn--bcher-kva.example", "a%20b", "sub-delims!$&'()*+,;="};
  for (const char* host : valid) {
    INFO(host);
    CHECK(parse(std::string("GET / HTTP/1.1\r\nHost: ") + host + "\r\n\r\n").ok);
  }
  const char* const invalid[] = {"a:b:c",     "example.org:80x", "example.org:-1", "[::1]x",     "[::1",
                                 "[::1]]",    "[a]b]:80",        "x[::1]",         "[::1]:80:90", "[g::1]",
                                 "a/b",       "a@b",             "a\"b",           "[::1]/x",     "["};
  for (const char* host : invalid) {
    INFO(host);
    CHECK(parse(std::string("GET / HTTP/1.1\r\nHost: ") + host + "\r\n\r\n").error_status == 400);
  }
}

TEST_CASE("A chunked body over the limit gets 413 once it crosses it", "[unit][http_parser]") {
  std::string req = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 10; ++i) req += "400\r\n" + std::string(1024, 'x') + "\r\n";
  auto r = parse(req, 0, 8192, 4096);
  CHECK_FALSE(r.ok);
  CHECK(r.error_status == 413);
}

TEST_CASE("A request-target over the head limit gets 414 and long fields get 431", "[unit][http_parser]") {
  std::string long_target = "GET /" + std::string(2000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n";
  CHECK(parse(long_target, 0, 1024).error_status == 414);
  CHECK(parse(long_target, 100, 1024).error_status == 414);
  std::string long_field = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(2000, 'b') + "\r\n\r\n";
  CHECK(parse(long_field, 0, 1024).error_status == 431);
  CHECK(parse(long_field, 100, 1024).error_status == 431);
  std::string many_fields = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 100; ++i) many_fields += "X-" + std::to_string(i) + ": v\r\n";
  many_fields += "\r\n";
  CHECK(parse(many_fields, 0, 512).error_status == 431);
}

TEST_CASE("Obsolete line folding is replaced by a space (RFC 9112 5.2)", "[unit][http_parser]") {
  auto r = parse("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n");
  REQUIRE(r.ok);
  CHECK(r.request.field("X") == std::optional<std::string_view>("a b"));
}

TEST_CASE("Repeated fields are kept in order", "[unit][http_parser]") {
  auto r = parse("GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nAccept: b\r\n\r\n");
  REQUIRE(r.ok);
  REQUIRE(r.request.fields.size() == 3);
  CHECK(r.request.fields[1].second == "a");
  CHECK(r.request.fields[2].second == "b");
  CHECK(r.request.field("Accept") == std::optional<std::string_view>("a"));
}

TEST_CASE("OPTIONS * is accepted, the asterisk-form with any other method is 400, and HEAD is recognised",
          "[unit][http_parser]") {
  CHECK(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").request.target == "*");
  for (const char* method : {"GET", "HEAD", "POST", "PUT", "DELETE"}) {
    INFO(method);
    CHECK(parse(std::string(method) + " * HTTP/1.1\r\nHost: h\r\n\r\n").error_status == 400);  // RFC 9112 §3.2.4
  }
  CHECK(parse("HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n").request.is_head());
}
