// The one relay of CGI-format handler output (server/gateway/cgi_relay.h), fed as a CGI child's stdout, FastCGI
// FCGI_STDOUT and an in-process handler's whole output would be. The sink records the calls the relay makes.
#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/gateway/cgi_relay.h"

using spawnd::Io;
using spawnd::server::CgiOutputRelay;
using spawnd::server::GatewayError;
using spawnd::server::ResponseHead;
using spawnd::server::ResponseSink;
using spawnd::server::StderrLines;
using Step = CgiOutputRelay::Step;

namespace {

struct RecordingSink final : ResponseSink {
  std::optional<ResponseHead> head;
  std::string body;
  std::string raw;
  std::optional<std::string> redirect;
  int ends = 0;
  Io answer = Io::Done;  // what on_body/on_raw return

  void on_head(ResponseHead h) override { head = std::move(h); }
  Io on_body(std::string_view bytes) override {
    body.append(bytes);
    return answer;
  }
  void on_end(std::optional<GatewayError>) override { ++ends; }
  void on_local_redirect(std::string location) override { redirect = std::move(location); }
  Io on_raw(std::string_view bytes) override {
    raw.append(bytes);
    return answer;
  }
};

}  // namespace

TEST_CASE("cgi relay: a document response's head goes to on_head and its body to on_body", "[unit][cgi_relay]") {
  RecordingSink sink;
  CgiOutputRelay relay(sink, 64 * 1024, false);
  CHECK(relay.feed("Status: 201 Made\r\nContent-Type: text/plain\r\n") == Step::More);
  CHECK_FALSE(relay.has_head());
  CHECK(relay.feed("X-A: 1\r\n\r\nhello, ") == Step::More);
  REQUIRE(sink.head);
  CHECK(relay.has_head());
  CHECK(sink.head->status == 201);
  CHECK(sink.head->reason == "Made");
  CHECK(sink.head->content_length == std::nullopt);
  CHECK(relay.feed("world") == Step::More);
  CHECK(sink.body == "hello, world");
  CHECK(relay.end() == Step::Complete);
  CHECK(sink.ends == 0);  // on_end is the exchange's
}

TEST_CASE("cgi relay: the body is capped at Content-Length and complete when it is all there", "[unit][cgi_relay]") {
  RecordingSink sink;
  CgiOutputRelay relay(sink, 64 * 1024, false);
  CHECK(relay.feed("Content-Type: text/plain\nContent-Length: 5\n\nabc") == Step::More);
  CHECK(relay.feed("defgh") == Step::Complete);
  CHECK(sink.body == "abcde");
  CHECK(relay.feed("more") == Step::Complete);  // ignored
  CHECK(sink.body == "abcde");
  CHECK(relay.end() == Step::Complete);
}

TEST_CASE("cgi relay: a body shorter than its Content-Length is a 502 after the head", "[unit][cgi_relay]") {
  RecordingSink sink;
  CgiOutputRelay relay(sink, 64 * 1024, false);
  CHECK(relay.feed("Content-Type: text/plain\nContent-Length: 10\n\nabc") == Step::More);
  CHECK(relay.end() == Step::BadGateway);
  CHECK(relay.has_head());
  CHECK(relay.error() == "sent 3 of the 10 body bytes it announced");
}

TEST_CASE("cgi relay: a whole output with a short body is refused before the head is sent", "[unit][cgi_relay]") {
  RecordingSink sink;
  CgiOutputRelay relay(sink, 64 * 1024, false);
  CHECK(relay.relay_whole("Content-Type: text/plain\nContent-Length: 10\n\nabc") == Step::BadGateway);
  CHECK_FALSE(sink.head);
  CHECK_FALSE(relay.has_head());
  CHECK(relay.error() == "sent 3 of the 10 body bytes it announced");

  RecordingSink ok;
  CgiOutputRelay whole(ok, 64 * 1024, false);
  CHECK(whole.relay_whole("Content-Type: text/plain\nContent-Length: 3\n\nabcdef") == Step::Complete);
  CHECK(ok.body == "abc");
}

TEST_CASE("cgi relay: a large whole output is relayed in full past the header chunking", "[unit][cgi_relay]") {
  RecordingSink sink;
  CgiOutputRelay relay(sink, 64 * 1024, false);
  const std::string body(100'000, 'x');
  CHECK(relay.relay_whole("Content-Type: text/plain\n\n" + body) == Step::Complete);
  CHECK(sink.body == body);
}

TEST_CASE("cgi relay: a HEAD request's Content-Length caps nothing", "[unit][cgi_relay]") {
  RecordingSink sink;
  CgiOutputRelay relay(sink, 64 * 1024, true);
  CHECK(relay.feed("Content-Type: text/plain\nContent-Length: 5\n\n") == Step::More);
  REQUIRE(sink.head);
  CHECK(sink.head->content_length == std::optional<std::uint64_t>(5));
  CHECK(relay.end() == Step::Complete);  // no body follows a HEAD response; that is not short
}

TEST_CASE("cgi relay: an invalid header block is a 502 with the parser's reason", "[unit][cgi_relay]") {
  RecordingSink sink;
  CgiOutputRelay relay(sink, 64 * 1024, false);
  CHECK(relay.feed("Status: 101 Switching\nContent-Type: text/plain\n\n") == Step::BadGateway);
  CHECK(relay.error().starts_with("bad response header: Status 101"));
  CHECK_FALSE(sink.head);
  CHECK(relay.feed("more") == Step::BadGateway);  // stays failed

  RecordingSink eof;
  CgiOutputRelay early(eof, 64 * 1024, false);
  CHECK(early.feed("Content-Type: text/plain\n") == Step::More);
  CHECK(early.end() == Step::BadGateway);
  CHECK(early.error() == "its output ended before a complete header block");
}

TEST_CASE("cgi relay: a header block over the limit is a 502", "[unit][cgi_relay]") {
  RecordingSink sink;
  CgiOutputRelay relay(sink, 100, false);
  CHECK(relay.feed("X-Long: " + std::string(200, 'a') + "\n") == Step::BadGateway);
  CHECK_FALSE(sink.head);
}

TEST_CASE("cgi relay: a local redirect goes to on_local_redirect and ends the response", "[unit][cgi_relay]") {
  RecordingSink sink;
  CgiOutputRelay relay(sink, 64 * 1024, false);
  CHECK(relay.feed("Location: /other?x=1\n\nignored") == Step::Complete);
  CHECK(relay.is_redirected());
  CHECK(sink.redirect == std::optional<std::string>("/other?x=1"));
  CHECK_FALSE(sink.head);
  CHECK(sink.body.empty());
}

TEST_CASE("cgi relay: a full sink pauses the relay but loses no bytes already read", "[unit][cgi_relay]") {
  RecordingSink sink;
  sink.answer = Io::Again;
  CgiOutputRelay relay(sink, 64 * 1024, false);
  // More than one header chunk (4 KiB) of body in the same feed as the head.
  const std::string body(10'000, 'b');
  CHECK(relay.feed("Content-Type: text/plain\n\n" + body) == Step::Paused);
  CHECK(sink.body == body);
  sink.answer = Io::Error;
  CHECK(relay.feed("x") == Step::SinkClosed);
}

TEST_CASE("cgi relay: an NPH script's output goes through raw once its status-line is final", "[unit][cgi_relay]") {
  RecordingSink sink;
  CgiOutputRelay relay(sink, 64 * 1024, false, true);
  CHECK(relay.feed("HTTP/1.1 200 ") == Step::More);
  CHECK(sink.raw.empty());
  CHECK(relay.feed("OK\r\nContent-Length: 2\r\n\r\nhi") == Step::More);
  CHECK(sink.raw == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
  CHECK(relay.end() == Step::Complete);

  RecordingSink interim;
  CgiOutputRelay upgrade(interim, 64 * 1024, false, true);
  CHECK(upgrade.feed("HTTP/1.1 101 Switching Protocols\r\n") == Step::BadGateway);
  CHECK(upgrade.error() == "NPH script's first line: Status 101, not a final status (only 200-599 are relayed)");
  CHECK(interim.raw.empty());

  RecordingSink garbage;
  CgiOutputRelay no_line(garbage, 16, false, true);
  CHECK(no_line.feed(std::string(17, 'x')) == Step::BadGateway);
  CHECK(no_line.error() == "NPH script sent no status-line in its first 16 bytes");
}

TEST_CASE("stderr lines: split at LF, CR dropped, long and last partial lines emitted", "[unit][cgi_relay]") {
  std::vector<std::string> lines;
  auto emit = [&](std::string_view line) { lines.emplace_back(line); };
  StderrLines split(8);
  split.append("one\r\ntw", emit);
  CHECK(lines == std::vector<std::string>{"one"});
  split.append("o\n\nthree", emit);
  CHECK(lines == std::vector<std::string>{"one", "two", "", });
  split.append("-and-more", emit);  // "three-and-more" is over 8 bytes: emitted as it is
  CHECK(lines.back() == "three-and-more");
  split.append("tail", emit);
  split.flush(emit);
  CHECK(lines.back() == "tail");
  const std::size_t count = lines.size();
  split.flush(emit);
  CHECK(lines.size() == count);
}
