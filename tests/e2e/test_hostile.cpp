// Hostile and edge-case requests end to end: request framing that could desynchronise a connection (RFC 9112 §6),
// malformed field lines, clients that trickle or stall, a client that pipelines without reading, special files in
// the document root, and the rarer corners of ranges and preconditions. What test_http.cpp and test_static.cpp
// cover is not repeated here. Every test runs its own spawnd on port 0 over its own temp document root.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <tuple>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

using namespace spawnd::e2e;
using spawnd::Fd;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kAlpha = "alpha";

std::vector<std::string> args_for(const TempDir& root, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--root", root.path(), "--quiet"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string get_close(std::string_view target, std::string_view extra_fields = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
         std::string(extra_fields) + "\r\n";
}

// The server's resident set in KiB, from /proc.
long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

long elapsed_ms(Clock::time_point since) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

}  // namespace

// ---- framing: the request after a body must start exactly where the body ends ----

TEST_CASE("A GET with a Content-Length body is served and the request pipelined after the body is answered",
          "[e2e][hostile]") {
  TempDir root;
  root.write("a.txt", kAlpha);
  root.write("b.txt", "bravo");
  Spawnd s(args_for(root));
  Fd c = connect_to(s.port());
  // If the server ignored the body, "GET /b.txt..." would be misread after the five bytes "hello".
  REQUIRE(send_all(c, "GET /a.txt HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello" + get_close("/b.txt")));
  std::string leftover;
  auto first = read_response(c, leftover);
  auto second = read_response(c, leftover);
  CHECK(first.status == 200);
  CHECK(first.body == kAlpha);
  CHECK(second.status == 200);
  CHECK(second.body == "bravo");
  CHECK(wait_closed(c, 5000));
}

TEST_CASE("A chunked body with chunk extensions and trailer fields is consumed and the next request answered",
          "[e2e][hostile]") {
  TempDir root;
  root.write("a.txt", kAlpha);
  Spawnd s(args_for(root));
  Fd c = connect_to(s.port());
  REQUIRE(send_all(c,
                   "POST /a.txt HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "3;name=value\r\nabc\r\n"
                   "A;x=\"quoted\"\r\n0123456789\r\n"
                   "0\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n" +
                       get_close("/a.txt")));
  std::string leftover;
  auto first = read_response(c, leftover);
  auto second = read_response(c, leftover);
  CHECK(first.status == 405);
  CHECK(second.status == 200);
  CHECK(second.body == kAlpha);
}

TEST_CASE("Transfer-Encoding in an HTTP/1.0 request is answered, then the connection is closed", "[e2e][hostile]") {
  // RFC 9112 §6.1: a server receiving Transfer-Encoding in an HTTP/1.0 request must treat the framing as faulty
  // and close the connection after responding, so that no second request can be smuggled behind the body.
  TempDir root;
  root.write("a.txt", kAlpha);
  // A keep-alive timeout far beyond the wait below: the close must come from the rule, not from idling.
  Spawnd s(args_for(root, {"--keepalive-timeout", "30"}));
  Fd c = connect_to(s.port());
  REQUIRE(send_all(c,
                   "POST /a.txt HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                   "GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  std::string leftover;
  auto r = read_response(c, leftover);
  CHECK(r.status == 405);
  CHECK(r.field("Connection") != std::optional<std::string>("keep-alive"));
  bool is_closed = false;
  const std::string after = read_until_close(c, leftover, 5000, &is_closed);
  CHECK(is_closed);
  CHECK(after.empty());  // the GET behind the faulty framing was never answered
}

TEST_CASE("Ambiguous or invalid message framing yields 400 and the connection is closed", "[e2e][hostile]") {
  TempDir root;
  root.write("a.txt", kAlpha);
  Spawnd s(args_for(root));
  const std::string head = "POST /a.txt HTTP/1.1\r\nHost: h\r\n";
  const std::vector<std::pair<std::string, std::string>> cases{
      // RFC 9112 §6.3: chunked must be the final transfer coding of a request.
      {"unknown transfer coding", head + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
      {"chunked not last", head + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"},
      {"gzip alone", head + "Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n"},
      // RFC 9110 §8.6: Content-Length = 1*DIGIT.
      {"signed Content-Length", head + "Content-Length: +5\r\n\r\nhello"},
      {"negative Content-Length", head + "Content-Length: -1\r\n\r\n"},
      {"Content-Length with letters", head + "Content-Length: 5x\r\n\r\nhello"},
      {"Content-Length beyond 64 bits", head + "Content-Length: 99999999999999999999999\r\n\r\n"},
      {"chunk size beyond 64 bits", head + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nx\r\n"},
      {"chunk size not hex", head + "Transfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n"},
      // RFC 9112 §5.1: no whitespace between field name and colon (a request smuggling vector).
      {"space before colon", "GET /a.txt HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\nhello"},
      {"field line without colon", "GET /a.txt HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n"},
      // RFC 9110 §5.5: CR, LF and NUL are never valid in a field value.
      {"bare CR in a field value", "GET /a.txt HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n"},
      {"NUL in a field value", std::string("GET /a.txt HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n", 43)},
      {"lower-case method", "get /a.txt HTTP/1.1\r\nHost: h\r\n\r\n"},
      {"whitespace after the version", "GET /a.txt HTTP/1.1 \r\nHost: h\r\n\r\n"},
  };
  for (const auto& [what, raw] : cases) {
    INFO(what);
    Fd c = connect_to(s.port());
    REQUIRE(send_all(c, raw));
    auto r = read_response(c);
    CHECK(r.status == 400);
    CHECK(wait_closed(c, 5000));
  }
  CHECK(get(s.port(), "/a.txt").status == 200);
}

TEST_CASE("A transfer coding other than chunked yields 501, chunked twice 400, and the connection is closed",
          "[e2e][hostile]") {
  // RFC 9112 §6.1: a server that receives a transfer coding it does not understand SHOULD answer 501 (nginx does);
  // spawnd implements only chunked. Its body cannot be read, so nothing after it on the connection is either.
  TempDir root;
  root.write("a.txt", kAlpha);
  Spawnd s(args_for(root));
  const std::string head = "POST /a.txt HTTP/1.1\r\nHost: h\r\n";
  const std::string next = "GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::vector<std::tuple<std::string, std::string, int>> cases{
      {"gzip, then chunked", head + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + next, 501},
      {"two field lines", head + "Transfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next,
       501},
      {"chunked twice", head + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n" + next, 400},
  };
  for (const auto& [what, raw, status] : cases) {
    INFO(what);
    Fd c = connect_to(s.port());
    REQUIRE(send_all(c, raw));
    std::string leftover;
    auto r = read_response(c, leftover);
    CHECK(r.status == status);
    CHECK(r.field("Connection") == std::optional<std::string>("close"));
    bool is_closed = false;
    CHECK(read_until_close(c, leftover, 5000, &is_closed).empty());  // the GET behind it is never answered
    CHECK(is_closed);
  }
  // Empty list members are allowed (RFC 9110 §5.6.1), and codings are case-insensitive.
  auto r = request(s.port(), head + "Transfer-Encoding: , Chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  CHECK(r.status == 405);  // read whole and answered: a static file takes no POST
}

TEST_CASE("An invalid Host field value yields 400", "[e2e][hostile]") {
  // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request message
  // that ... contains ... a Host header field with an invalid field value." Host = uri-host [ ":" port ]
  // (RFC 9110 §7.2). The value also becomes a handler's SERVER_NAME, so it must not carry arbitrary text.
  TempDir root;
  root.write("a.txt", kAlpha);
  Spawnd s(args_for(root));
  const std::vector<std::string> hosts{"a b", "<script>", "user@example.com", "example.com/path", "example.com:80x",
                                       "a\tb"};
  for (const auto& host : hosts) {
    INFO("Host: " << host);
    auto r = request(s.port(), "GET /a.txt HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");
    CHECK(r.status == 400);
  }
  // Valid forms are served.
  for (const std::string host : {"example.com", "example.com:8080", "127.0.0.1:1", "[::1]:8080", "xn--bcher-kva.example"}) {
    INFO("Host: " << host);
    CHECK(request(s.port(), "GET /a.txt HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n").status == 200);
  }
}

// ---- slow, stalled and greedy clients ----

TEST_CASE("A client that trickles its head byte by byte is still cut off at --header-timeout", "[e2e][hostile]") {
  // The header timeout runs from the first byte of the request, not from the last one received: otherwise one byte
  // every few seconds would hold a connection forever (slowloris).
  TempDir root;
  root.write("a.txt", kAlpha);
  Spawnd s(args_for(root, {"--header-timeout", "0.5"}));
  Fd c = connect_to(s.port());
  const std::string head = "GET /a.txt HTTP/1.1\r\nHost: h\r\nX-Slow: " + std::string(100, 'x');
  const auto start = Clock::now();
  bool is_closed = false;
  for (char ch : head) {
    if (!send_all(c, std::string(1, ch))) {
      is_closed = true;
      break;
    }
    pollfd p{c.get(), POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {  // a 408 or the close
      is_closed = wait_closed(c, 2000);
      break;
    }
    if (elapsed_ms(start) > 4000) break;
  }
  CHECK(is_closed);
  CHECK(elapsed_ms(start) < 3000);
}

TEST_CASE("A request body that stops arriving is dropped after --io-timeout", "[e2e][hostile]") {
  TempDir root;
  root.write("a.txt", kAlpha);
  Spawnd s(args_for(root, {"--io-timeout", "0.5"}));
  Fd c = connect_to(s.port());
  REQUIRE(send_all(c, "PUT /a.txt HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc"));
  const auto start = Clock::now();
  CHECK(wait_closed(c, 5000));  // a 405 may come first; the close must follow although 97 bytes never arrive
  CHECK(elapsed_ms(start) >= 300);
  CHECK(get(s.port(), "/a.txt").status == 200);
}

TEST_CASE("A client that pipelines requests without reading makes spawnd stop reading, not buffer",
          "[e2e][hostile]") {
  TempDir root;
  root.write("big.bin", std::string(1 << 20, 'b'));
  root.write("a.txt", kAlpha);
  Spawnd s(args_for(root));
  const long rss_before = rss_kib(s.pid());
  REQUIRE(rss_before > 0);

  Fd greedy = connect_to(s.port());
  int small_buffer = 4096;
  REQUIRE(::setsockopt(greedy.get(), SOL_SOCKET, SO_RCVBUF, &small_buffer, sizeof small_buffer) == 0);
  std::string batch;
  for (int i = 0; i < 100; ++i) batch += "GET /big.bin HTTP/1.1\r\nHost: h\r\n\r\n";
  // Write until the kernel buffers are full (the server has stopped reading), for at most 3 s.
  const auto start = Clock::now();
  std::size_t sent = 0;
  while (elapsed_ms(start) < 3000) {
    ssize_t n = ::send(greedy.get(), batch.data(), batch.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  INFO("request bytes the kernel and server took: " << sent);
  // Each request asks for 1 MiB: had spawnd queued responses for all it read, its memory would be gigabytes.
  const long rss_after = rss_kib(s.pid());
  CHECK(rss_after - rss_before < 32 * 1024);
  // And another client is served meanwhile.
  auto other = get(s.port(), "/a.txt");
  CHECK(other.status == 200);
  CHECK(other.body == kAlpha);
}

// ---- special files ----

TEST_CASE("A FIFO in the document root is not opened for reading and does not block the server", "[e2e][hostile]") {
  // Opening a FIFO for reading blocks until a writer appears; a server that did that on its event loop would hang.
  TempDir root;
  root.write("a.txt", kAlpha);
  REQUIRE(::mkfifo((root.path() + "/pipe").c_str(), 0644) == 0);
  Spawnd s(args_for(root));
  auto r = get(s.port(), "/pipe", 5000);
  CHECK((r.status == 404 || r.status == 403));
  CHECK(get(s.port(), "/a.txt", 5000).status == 200);
}

TEST_CASE("A directory without index.html is not listed", "[e2e][hostile]") {
  TempDir root;
  root.write("dir/secret-name.txt", "x");
  Spawnd s(args_for(root));
  auto r = get(s.port(), "/dir/");
  CHECK((r.status == 404 || r.status == 403));
  CHECK(r.body.find("secret-name") == std::string::npos);
}

// ---- the rarer corners of ranges and preconditions ----

TEST_CASE("Ranges that are not served as 206 fall back to 200 or 416 as RFC 9110 section 14 says", "[e2e][hostile]") {
  TempDir root;
  root.write("data.bin", "0123456789");
  root.write("empty.bin", "");
  Spawnd s(args_for(root));
  struct Case {
    std::string target;
    std::string range;
    int status;
    std::string content_range;  // expected Content-Range, or empty for none
  };
  const std::vector<Case> cases{
      {"/data.bin", "bytes=0-1,4-5", 200, ""},  // multiple ranges: the whole representation
      {"/data.bin", "bytes=5-2", 200, ""},      // last < first: invalid, ignored
      {"/data.bin", "items=0-1", 200, ""},      // another unit
      {"/data.bin", "bytes=", 200, ""},
      {"/data.bin", "bytes=-0", 416, "bytes */10"},
      {"/data.bin", "bytes=10-", 416, "bytes */10"},
      {"/data.bin", "bytes=99999999999999999999999-", 416, "bytes */10"},
      {"/data.bin", "bytes=8-99999999999999999999999", 206, "bytes 8-9/10"},
      {"/data.bin", "bytes=-99999999999999999999999", 206, "bytes 0-9/10"},
      {"/empty.bin", "bytes=0-", 416, "bytes */0"},
  };
  for (const auto& c : cases) {
    INFO(c.target << " Range: " << c.range);
    auto r = request(s.port(), get_close(c.target, "Range: " + c.range + "\r\n"));
    CHECK(r.status == c.status);
    if (c.content_range.empty()) {
      CHECK_FALSE(r.field("Content-Range").has_value());
    } else {
      CHECK(r.field("Content-Range") == std::optional<std::string>(c.content_range));
    }
    if (c.status == 200) CHECK(r.body == read_file(root.path() + c.target));
  }
}

TEST_CASE("Preconditions are evaluated before Range", "[e2e][hostile]") {
  // RFC 9110 §13.2.2: a failed If-Match is 412 and a matching If-None-Match is 304, whatever the Range says.
  TempDir root;
  root.write("data.bin", "0123456789");
  Spawnd s(args_for(root));
  auto failed = request(s.port(), get_close("/data.bin", "If-Match: \"nope\"\r\nRange: bytes=0-1\r\n"));
  CHECK(failed.status == 412);
  auto not_modified = request(s.port(), get_close("/data.bin", "If-None-Match: *\r\nRange: bytes=0-1\r\n"));
  CHECK(not_modified.status == 304);
  CHECK(not_modified.body.empty());
}

TEST_CASE("If-Range with the exact Last-Modified date honours the Range, another date does not", "[e2e][hostile]") {
  TempDir root;
  root.write("data.bin", "0123456789");
  Spawnd s(args_for(root));
  auto last_modified = get(s.port(), "/data.bin").field("Last-Modified");
  REQUIRE(last_modified.has_value());
  auto same = request(s.port(), get_close("/data.bin", "Range: bytes=2-3\r\nIf-Range: " + *last_modified + "\r\n"));
  CHECK(same.status == 206);
  CHECK(same.body == "23");
  auto other = request(s.port(),
                       get_close("/data.bin", "Range: bytes=2-3\r\nIf-Range: Thu, 01 Jan 1970 00:00:00 GMT\r\n"));
  CHECK(other.status == 200);
  CHECK(other.body == "0123456789");
}

// ---- the access log stays one line per request ----

TEST_CASE("Control characters and backslashes are escaped in the access log", "[e2e][hostile]") {
  TempDir root;
  root.write("a.txt", kAlpha);
  TempDir logs;
  const std::string log = logs.path() + "/access.log";
  Spawnd s({"--root", root.path(), "--access-log", log});
  CHECK(request(s.port(), get_close("/a.txt", "User-Agent: tab\there\r\nReferer: back\\slash\r\n")).status == 200);
  CHECK(s.stop() == 0);  // spawnd flushes its log on the way out
  const std::string text = read_file(log);
  INFO(text);
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK(text.find('\t') == std::string::npos);
  CHECK(std::regex_search(text, std::regex(R"re("back\\\\slash" "tab\\x09here"\n$)re")));
}
