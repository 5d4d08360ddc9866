// Unit tests for common/cgi_response.h: CgiResponseParser, the CGI response header parser (RFC 3875 §6) shared by
// the CGI, fork-server and FastCGI gateways. The cases follow Go's net/http/cgi host tests (no headers, no
// Content-Type, bogus Status, redirects) plus the incremental-feeding and limit cases a streaming parser needs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/cgi_response.h"

using spawnd::CgiHead;
using spawnd::CgiResponseKind;
using spawnd::CgiResponseParser;
using State = spawnd::CgiResponseParser::State;

namespace {

const char* to_string(State s) {
  switch (s) {
    case State::NeedMore: return "NeedMore";
    case State::Done: return "Done";
    case State::Error: return "Error";
  }
  return "?";
}

const char* to_string(CgiResponseKind k) {
  switch (k) {
    case CgiResponseKind::Document: return "Document";
    case CgiResponseKind::LocalRedirect: return "LocalRedirect";
    case CgiResponseKind::ClientRedirect: return "ClientRedirect";
  }
  return "?";
}

// Feeds `input` in one piece, or in pieces of `step` bytes; stops at the first state other than NeedMore.
State feed(CgiResponseParser& p, std::string_view input, std::size_t step = 0) {
  if (step == 0) return p.feed(input);
  State s = State::NeedMore;
  for (std::size_t i = 0; i < input.size() && s == State::NeedMore; i += step) s = p.feed(input.substr(i, step));
  return s;
}

std::optional<std::string> field(const CgiHead& h, std::string_view name) {
  for (const auto& [n, v] : h.fields)
    if (n == name) return v;
  return std::nullopt;
}

struct ErrorCase {
  const char* what;
  std::string_view input;
};

// Each input is a complete script output that must be refused (→ 502), however it is fed.
void check_errors(std::initializer_list<ErrorCase> cases) {
  for (const ErrorCase& c : cases) {
    for (std::size_t step : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
      CAPTURE(c.what, c.input, step);
      CgiResponseParser p;
      const State s = feed(p, c.input, step);
      INFO("got " << to_string(s));
      REQUIRE(s == State::Error);
      CHECK_FALSE(p.error().empty());
      // Once in error, more input changes nothing.
      CHECK(p.feed("Content-Type: text/plain\r\n\r\n") == State::Error);
    }
  }
}

}  // namespace

TEST_CASE("a response with no header fields is an error", "[unit][cgi_response]") {
  check_errors({
      {"blank line first (CRLF)", "\r\nhello"},
      {"blank line first (LF)", "\nhello"},
      {"only a blank line", "\r\n"},
  });
}

TEST_CASE("a document response without Content-Type, Status or Location is an error", "[unit][cgi_response]") {
  check_errors({
      {"one unrelated field", "X-Foo: bar\r\n\r\nbody"},
      {"several unrelated fields", "X-Foo: bar\r\nCache-Control: no-store\r\n\r\n"},
      {"only Content-Length", "Content-Length: 2\r\n\r\nhi"},
  });
}

TEST_CASE("malformed header lines are errors", "[unit][cgi_response]") {
  check_errors({
      {"no colon", "Content-Type text/plain\r\n\r\n"},
      {"garbage text", "Hello, world!\n\n"},
      {"space in name", "Content Type: text/plain\r\n\r\n"},
      {"space before colon", "Content-Type : text/plain\r\n\r\n"},
      {"empty name", ": value\r\nContent-Type: text/plain\r\n\r\n"},
      {"folded continuation line", "Content-Type: text/plain\r\n  continued\r\n\r\n"},
      {"an HTTP status line (a non-nph script)", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"},
  });
}

TEST_CASE("Status sets the status code and reason phrase", "[unit][cgi_response]") {
  struct Case {
    std::string_view input;
    int status;
    std::string_view reason;
  };
  const Case cases[] = {
      {"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\n", 404, "Not Found"},
      {"Status: 404\r\nContent-Type: text/plain\r\n\r\n", 404, ""},
      {"status: 201 Created\r\nContent-Type: text/plain\r\n\r\n", 201, "Created"},
      {"STATUS:418 I'm a teapot\r\nContent-Type: text/plain\r\n\r\n", 418, "I'm a teapot"},
      {"Status: 500 Internal  Oops  \r\nContent-Type: text/plain\r\n\r\n", 500, "Internal  Oops"},
      {"Content-Type: text/plain\r\nStatus: 299 Custom\r\n\r\n", 299, "Custom"},
      {"Status: 200 OK\nContent-Type: text/plain\n\n", 200, "OK"},
      // A Status alone is a complete response (e.g. 204 or 304 without a body).
      {"Status: 204 No Content\r\n\r\n", 204, "No Content"},
      {"Status: 304 Not Modified\r\nETag: \"x\"\r\n\r\n", 304, "Not Modified"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.input);
    CgiResponseParser p;
    REQUIRE(p.feed(c.input) == State::Done);
    CHECK(p.head().kind == CgiResponseKind::Document);
    CHECK(p.head().status == c.status);
    CHECK(p.head().reason == c.reason);
    CHECK_FALSE(field(p.head(), "Status").has_value());  // Status is CGI-only, never sent to the client
    CHECK_FALSE(field(p.head(), "status").has_value());
    CHECK_FALSE(field(p.head(), "STATUS").has_value());
  }
}

TEST_CASE("an invalid Status is an error", "[unit][cgi_response]") {
  check_errors({
      {"not a number", "Status: abc\r\nContent-Type: text/plain\r\n\r\n"},
      {"empty", "Status:\r\nContent-Type: text/plain\r\n\r\n"},
      {"two digits", "Status: 20 OK\r\nContent-Type: text/plain\r\n\r\n"},
      {"four digits", "Status: 2000 OK\r\nContent-Type: text/plain\r\n\r\n"},
      {"below 100", "Status: 099 Low\r\nContent-Type: text/plain\r\n\r\n"},
      {"negative", "Status: -200 OK\r\nContent-Type: text/plain\r\n\r\n"},
      {"sign", "Status: +200 OK\r\nContent-Type: text/plain\r\n\r\n"},
      {"reason first", "Status: OK 200\r\nContent-Type: text/plain\r\n\r\n"},
  });
}

TEST_CASE("a Status outside 200-599 is an error, so 1xx is never relayed as the final response",
          "[unit][cgi_response]") {
  check_errors({
      {"101 would open a tunnel", "Status: 101 Switching Protocols\r\nContent-Type: text/plain\r\n\r\n"},
      {"101 alone", "Status: 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},
      {"100", "Status: 100 Continue\r\n\r\n"},
      {"103", "Status: 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nContent-Type: text/plain\r\n\r\n"},
      {"199", "Status: 199\r\nContent-Type: text/plain\r\n\r\n"},
      {"600", "Status: 600 Nope\r\nContent-Type: text/plain\r\n\r\n"},
      {"999", "Status: 999\r\nContent-Type: text/plain\r\n\r\n"},
      {"1xx with a client-redirect Location", "Status: 102\r\nLocation: http://example.test/\r\n\r\n"},
  });
  CgiResponseParser p;
  REQUIRE(p.feed("Status: 101 Switching Protocols\r\n\r\n") == State::Error);
  CHECK(p.error().find("101") != std::string::npos);  // the log line names the status
  CHECK(spawnd::is_final_status(200));
  CHECK(spawnd::is_final_status(599));
  CHECK_FALSE(spawnd::is_final_status(199));
  CHECK_FALSE(spawnd::is_final_status(600));
}

TEST_CASE("no Status means 200 for a document response", "[unit][cgi_response]") {
  CgiResponseParser p;
  REQUIRE(p.feed("Content-Type: text/html\r\n\r\n") == State::Done);
  CHECK(p.head().kind == CgiResponseKind::Document);
  CHECK(p.head().status == 200);
  CHECK(p.head().reason.empty());
  CHECK(p.head().location.empty());
  CHECK_FALSE(p.head().content_length.has_value());
}

TEST_CASE("fields are kept in order with their values trimmed, Content-Type and Location included",
          "[unit][cgi_response]") {
  CgiResponseParser p;
  REQUIRE(p.feed("Content-Type:text/plain; charset=utf-8\r\n"
                 "X-One:   a b  \r\n"
                 "Set-Cookie: a=1\r\n"
                 "Set-Cookie: b=2\r\n"
                 "X-Empty:\r\n"
                 "\r\n") == State::Done);
  const std::vector<std::pair<std::string, std::string>> expected{
      {"Content-Type", "text/plain; charset=utf-8"},
      {"X-One", "a b"},
      {"Set-Cookie", "a=1"},
      {"Set-Cookie", "b=2"},
      {"X-Empty", ""},
  };
  CHECK(p.head().fields == expected);
}

TEST_CASE("Location decides between local redirect, client redirect and document", "[unit][cgi_response]") {
  struct Case {
    std::string_view input;
    CgiResponseKind kind;
    int status;
    std::string_view location;
  };
  const Case cases[] = {
      // §6.2.2 local redirect: a path, no Status.
      {"Location: /index.html\r\n\r\n", CgiResponseKind::LocalRedirect, 200, "/index.html"},
      {"Location: /cgi-bin/env/x?a=1&b=2\r\n\r\n", CgiResponseKind::LocalRedirect, 200, "/cgi-bin/env/x?a=1&b=2"},
      {"location: /lower\n\n", CgiResponseKind::LocalRedirect, 200, "/lower"},
      // §6.2.3 client redirect: an absolute URI, no Status → 302.
      {"Location: http://example.test/\r\n\r\n", CgiResponseKind::ClientRedirect, 302, "http://example.test/"},
      {"Location: https://example.test/a?b#c\r\n\r\n", CgiResponseKind::ClientRedirect, 302,
       "https://example.test/a?b#c"},
      {"Location: urn:isbn:0451450523\r\n\r\n", CgiResponseKind::ClientRedirect, 302, "urn:isbn:0451450523"},
      {"Location: svn+ssh://host/repo\r\n\r\n", CgiResponseKind::ClientRedirect, 302, "svn+ssh://host/repo"},
      // §6.2.4 client redirect with document: a Status is kept as it is.
      {"Status: 301 Moved Permanently\r\nLocation: http://example.test/new\r\nContent-Type: text/html\r\n\r\n",
       CgiResponseKind::Document, 301, "http://example.test/new"},
      {"Location: http://example.test/new\r\nStatus: 303 See Other\r\n\r\n", CgiResponseKind::Document, 303,
       "http://example.test/new"},
      {"Status: 307\r\nLocation: /relative/but/with/status\r\n\r\n", CgiResponseKind::Document, 307,
       "/relative/but/with/status"},
      {"Status: 200 OK\r\nContent-Type: text/plain\r\nLocation: /x\r\n\r\n", CgiResponseKind::Document, 200, "/x"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.input);
    CgiResponseParser p;
    REQUIRE(p.feed(c.input) == State::Done);
    INFO("kind " << to_string(p.head().kind));
    CHECK(p.head().kind == c.kind);
    CHECK(p.head().status == c.status);
    CHECK(p.head().location == c.location);
    if (c.kind != CgiResponseKind::LocalRedirect) {
      // The client must see the Location of a client redirect.
      auto loc = field(p.head(), "Location");
      if (!loc) loc = field(p.head(), "location");
      REQUIRE(loc.has_value());
      CHECK(*loc == c.location);
    }
  }
}

TEST_CASE("a Location that is neither a path nor an absolute URI is an error without a Status",
          "[unit][cgi_response]") {
  check_errors({
      {"relative path", "Location: foo.html\r\n\r\n"},
      {"dot relative", "Location: ./foo\r\n\r\n"},
      {"scheme starting with a digit", "Location: 1http://x/\r\n\r\n"},
      {"colon first", "Location: :foo\r\n\r\n"},
  });
}

TEST_CASE("a local-redirect Location must be a valid local path-query (RFC 3875 §6.2.2)", "[unit][cgi_response]") {
  check_errors({
      {"fragment", "Location: /page#top\r\n\r\n"},
      {"fragment after a query", "Location: /page?a=1#top\r\n\r\n"},
      {"space", "Location: /a b\r\n\r\n"},
      {"tab", "Location: /a\tb\r\n\r\n"},
      {"NUL", std::string_view("Location: /a\0b\r\n\r\n", 18)},
      {"CTL", "Location: /a\x01\r\n\r\n"},
      {"DEL", "Location: /a\x7f\r\n\r\n"},
      {"non-ASCII byte", "Location: /caf\xc3\xa9\r\n\r\n"},
      {"network-path reference (an authority)", "Location: //evil.example/x\r\n\r\n"},
      {"authority with a query", "Location: //evil.example?x\r\n\r\n"},
      {"backslash", "Location: /a\\b\r\n\r\n"},
      {"double quote", "Location: /a\"b\r\n\r\n"},
      {"angle bracket", "Location: /<script>\r\n\r\n"},
      {"truncated escape", "Location: /a%2\r\n\r\n"},
      {"bad escape", "Location: /a%zz\r\n\r\n"},
  });
  // What must keep working: escapes, sub-delims, ':' and '@', an empty or odd-looking query.
  for (std::string_view location : {"/", "/a/b/c.html", "/cgi-bin/env/x?a=1&b=2", "/a%20b%2Fc", "/~user/it's(1)*!$,;=:@",
                                    "/p?", "/p?q=/?/", "/p?a=%41+b", "/./x/../y"}) {
    CAPTURE(location);
    CHECK(spawnd::is_local_path_query(location));
    CgiResponseParser p;
    REQUIRE(p.feed("Location: " + std::string(location) + "\r\n\r\n") == State::Done);
    CHECK(p.head().kind == CgiResponseKind::LocalRedirect);
    CHECK(p.head().location == location);
  }
}

TEST_CASE("an NPH script's status-line gives its status, anything else is not a status-line", "[unit][cgi_response]") {
  CHECK(spawnd::parse_status_line("HTTP/1.1 200 OK") == std::optional<int>(200));
  CHECK(spawnd::parse_status_line("HTTP/1.0 101 Switching Protocols\r") == std::optional<int>(101));
  CHECK(spawnd::parse_status_line("HTTP/1.1 299") == std::optional<int>(299));
  CHECK(spawnd::parse_status_line("HTTP/1.1 204 ") == std::optional<int>(204));
  for (std::string_view line : {"", "HTTP/1.1", "HTTP/1.1 20", "HTTP/1.1 2000 OK", "HTTP/1.1  200 OK", "http/1.1 200 OK",
                                "HTTP/11 200 OK", "HTTP/1.1 2x0 OK", "Status: 200 OK", "HTTP/1.1 200\tOK"}) {
    CAPTURE(line);
    CHECK_FALSE(spawnd::parse_status_line(line).has_value());
  }
}

TEST_CASE("bare LF line endings are accepted like CRLF", "[unit][cgi_response]") {
  const std::string_view inputs[] = {
      "Content-Type: text/plain\nX-A: 1\n\nbody",
      "Content-Type: text/plain\r\nX-A: 1\n\nbody",    // mixed
      "Content-Type: text/plain\nX-A: 1\r\n\r\nbody",  // mixed the other way
  };
  for (std::string_view in : inputs) {
    for (std::size_t step : {std::size_t{0}, std::size_t{1}}) {
      CAPTURE(in, step);
      CgiResponseParser p;
      REQUIRE(feed(p, in, step) == State::Done);
      CHECK(field(p.head(), "Content-Type") == std::optional<std::string>("text/plain"));
      CHECK(field(p.head(), "X-A") == std::optional<std::string>("1"));
      // Fed in one piece the body came along; fed byte by byte the parser stopped at the blank line.
      CHECK(p.rest_of_input() == (step == 0 ? "body" : ""));
    }
  }
}

TEST_CASE("body bytes that arrive with the header block are in rest_of_input()", "[unit][cgi_response]") {
  using namespace std::string_view_literals;
  struct Case {
    std::string_view input;
    std::string_view rest;
  };
  const Case cases[] = {
      {"Content-Type: text/plain\r\n\r\n", ""},
      {"Content-Type: text/plain\r\n\r\nhello", "hello"},
      {"Content-Type: text/plain\r\n\r\n\r\n\r\nstill body", "\r\n\r\nstill body"},
      {"Content-Type: text/plain\n\nX-Not-A-Header: 1\n\n", "X-Not-A-Header: 1\n\n"},
      {"Content-Type: application/octet-stream\r\n\r\n\0\xff\r\n\0"sv, "\0\xff\r\n\0"sv},
  };
  for (const Case& c : cases) {
    CAPTURE(c.input);
    CgiResponseParser p;
    REQUIRE(p.feed(c.input) == State::Done);
    CHECK(p.rest_of_input() == c.rest);
  }
}

TEST_CASE("feeding after Done changes neither the head nor rest_of_input()", "[unit][cgi_response]") {
  CgiResponseParser p;
  REQUIRE(p.feed("Content-Type: text/plain\r\n\r\nab") == State::Done);
  CHECK(p.feed("cd\r\nStatus: 500\r\n\r\n") == State::Done);
  CHECK(p.head().status == 200);
  CHECK(p.rest_of_input() == "ab");
}

TEST_CASE("a response fed one byte at a time parses exactly as in one piece", "[unit][cgi_response]") {
  const std::string_view inputs[] = {
      "Content-Type: text/plain\r\nX-A: 1\r\n\r\nbody bytes",
      "Status: 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 3\r\n\r\nabc",
      "Location: /index.html\r\n\r\n",
      "Location: http://example.test/\n\n",
      "Status: 301 Moved\r\nLocation: http://example.test/\r\n\r\n",
  };
  for (std::string_view in : inputs) {
    CAPTURE(in);
    CgiResponseParser whole;
    REQUIRE(whole.feed(in) == State::Done);
    for (std::size_t step : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{5}}) {
      CAPTURE(step);
      CgiResponseParser p;
      State s = State::NeedMore;
      std::size_t fed = 0;
      while (fed < in.size() && s == State::NeedMore) {
        const std::size_t n = std::min(step, in.size() - fed);
        s = p.feed(in.substr(fed, n));
        fed += n;
      }
      REQUIRE(s == State::Done);
      CHECK(p.head().kind == whole.head().kind);
      CHECK(p.head().status == whole.head().status);
      CHECK(p.head().reason == whole.head().reason);
      CHECK(p.head().fields == whole.head().fields);
      CHECK(p.head().location == whole.head().location);
      CHECK(p.head().content_length == whole.head().content_length);
      // rest_of_input() holds what came after the block in the pieces fed so far.
      const std::string_view expected_rest = whole.rest_of_input().substr(0, fed - (in.size() - whole.rest_of_input().size()));
      CHECK(p.rest_of_input() == expected_rest);
    }
  }
}

TEST_CASE("an incomplete header block asks for more input", "[unit][cgi_response]") {
  const std::string_view inputs[] = {"", "Content-Type: text/plain", "Content-Type: text/plain\r\n",
                                     "Content-Type: text/plain\r\n\r", "Status: 200 OK\n"};
  for (std::string_view in : inputs) {
    CAPTURE(in);
    CgiResponseParser p;
    CHECK(p.feed(in) == State::NeedMore);
  }
}

TEST_CASE("a header block longer than the limit is an error, however it is fed", "[unit][cgi_response]") {
  constexpr std::size_t kLimit = 256;
  // Never-ending garbage without a blank line must not be buffered forever.
  {
    CgiResponseParser p(kLimit);
    State s = State::NeedMore;
    std::size_t fed = 0;
    while (s == State::NeedMore && fed < 100 * kLimit) {
      s = p.feed("X-Garbage: 0123456789\r\n");
      fed += 23;
    }
    CHECK(s == State::Error);
    CHECK(fed <= kLimit + 23);
  }
  // A complete but over-long block.
  const std::string long_block = "Content-Type: text/plain\r\nX-Long: " + std::string(2 * kLimit, 'a') + "\r\n\r\nbody";
  for (std::size_t step : {std::size_t{1}, std::size_t{64}, std::size_t{0}}) {
    CAPTURE(step);
    CgiResponseParser p(kLimit);
    CHECK(feed(p, long_block, step) == State::Error);
  }
}

TEST_CASE("a header block within the limit is accepted even when a large body follows in the same piece",
          "[unit][cgi_response]") {
  constexpr std::size_t kLimit = 256;
  const std::string input = "Content-Type: text/plain\r\n\r\n" + std::string(10 * kLimit, 'b');
  CgiResponseParser p(kLimit);
  REQUIRE(p.feed(input) == State::Done);
  CHECK(p.rest_of_input().size() == 10 * kLimit);
}

TEST_CASE("Content-Length is parsed and taken out of the fields", "[unit][cgi_response]") {
  struct Case {
    std::string_view input;
    std::uint64_t length;
  };
  const Case cases[] = {
      {"Content-Type: text/plain\r\nContent-Length: 5\r\n\r\n", 5},
      {"Content-Type: text/plain\r\nContent-Length: 0\r\n\r\n", 0},
      {"Content-Type: text/plain\r\ncontent-length:   12  \r\n\r\n", 12},
      {"Content-Type: text/plain\r\nContent-Length: 18446744073709551615\r\n\r\n", 18446744073709551615ULL},
      {"Content-Type: text/plain\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n", 7},
  };
  for (const Case& c : cases) {
    CAPTURE(c.input);
    CgiResponseParser p;
    REQUIRE(p.feed(c.input) == State::Done);
    REQUIRE(p.head().content_length.has_value());
    CHECK(*p.head().content_length == c.length);
    for (const auto& [name, value] : p.head().fields) {
      CAPTURE(name);
      CHECK_FALSE((name == "Content-Length" || name == "content-length"));
    }
  }
}

TEST_CASE("an invalid or conflicting Content-Length is an error", "[unit][cgi_response]") {
  check_errors({
      {"not a number", "Content-Type: text/plain\r\nContent-Length: abc\r\n\r\n"},
      {"empty", "Content-Type: text/plain\r\nContent-Length:\r\n\r\n"},
      {"negative", "Content-Type: text/plain\r\nContent-Length: -1\r\n\r\n"},
      {"trailing junk", "Content-Type: text/plain\r\nContent-Length: 5x\r\n\r\n"},
      {"list", "Content-Type: text/plain\r\nContent-Length: 5, 5\r\n\r\n"},
      {"overflow", "Content-Type: text/plain\r\nContent-Length: 18446744073709551616\r\n\r\n"},
      {"conflicting", "Content-Type: text/plain\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"},
  });
}

TEST_CASE("a field value with a bare CR is never passed on as it is", "[unit][cgi_response]") {
  // A CR inside a value would let a script (or whoever controls what it echoes) split the client's response.
  // RFC 9110 §5.5: a recipient must reject the message or replace CR with SP.
  CgiResponseParser p;
  const State s = p.feed("Content-Type: text/plain\r\nX-Echo: a\rInjected: yes\r\n\r\n");
  INFO("got " << to_string(s));
  if (s == State::Done) {
    for (const auto& [name, value] : p.head().fields) {
      CAPTURE(name, value);
      CHECK(value.find('\r') == std::string::npos);
    }
  } else {
    CHECK(s == State::Error);
  }
}
