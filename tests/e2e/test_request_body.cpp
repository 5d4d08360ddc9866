// Request buffering end to end (issue 20, parts 2 and 3): a request body is read whole before a handler slot is
// taken, in every mode, so slow senders hold connections and nothing else; past --body-buffer-bytes it waits in an
// unlinked temporary file and still reaches the handler byte for byte; the bytes held by all connections are
// bounded (--max-buffered-body-bytes → 503 with Retry-After); --request-buffering off streams as before.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "proc.h"

using namespace spawnd::e2e;
using spawnd::Fd;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const std::string kHandlers = SPAWND_CGI_BIN_DIR;

std::string head(std::string_view method, std::string_view target, std::size_t content_length,
                 std::string_view extra = "") {
  return std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
         "Content-Type: application/json\r\nContent-Length: " + std::to_string(content_length) + "\r\n" +
         std::string(extra) + "\r\n";
}

std::string chunked_head(std::string_view target) {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
}

std::string chunk(std::string_view bytes) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
  return size + std::string(bytes) + "\r\n";
}

// Bytes that differ at every offset of a 251-byte cycle, so that a lost or repeated window shows.
std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i % 251);
  return s;
}

// Live processes below `pid`: children, and their children (a fork server's handler children).
std::size_t live_descendants(pid_t pid) {
  std::size_t n = 0;
  for (const auto& c : live_children_of(pid)) n += 1 + live_children_of(c.pid).size();
  return n;
}

struct ModeRow {
  std::string name;
  std::vector<std::string> flags;
};

}  // namespace

TEST_CASE("slow request bodies hold no handler slot in any mode, and each is answered once it is complete",
          "[e2e][body]") {
  // One slot everywhere, a queue of one: before request buffering, the first slow PUT took the slot, the second
  // the queue, and every other request got 503 until the slow ones finished.
  const std::vector<ModeRow> rows = {
      {"cgi", {"--mode", "cgi", "--max-children", "1"}},
      {"fork", {"--mode", "fork", "--fork-servers", "1", "--max-children", "1"}},
      {"fastcgi", {"--mode", "fastcgi", "--workers", "1", "--max-children", "1"}},
      {"inproc", {"--mode", "inproc", "--workers", "1"}},
  };
  for (const auto& row : rows) {
    DYNAMIC_SECTION(row.name << " mode") {
      TempDir dir;
      std::vector<std::string> a{"--root", dir.path(), "--cgi-bin", kHandlers, "--db", dir.path() + "/site.db",
                                 "--queue", "1", "--quiet"};
      a.insert(a.end(), row.flags.begin(), row.flags.end());
      Spawnd s(a);
      REQUIRE(get(s.port(), "/cgi-bin/hello").status == 200);  // warm-up (fork servers, workers, .so loaded)
      std::this_thread::sleep_for(500ms);  // the warm-up's child has exited, a fork server has started
      const std::size_t processes_before = live_descendants(s.pid());

      constexpr int kSlow = 6;
      std::vector<Fd> slow;
      std::vector<std::string> values;
      for (int i = 0; i < kSlow; ++i) {
        values.push_back("\"value number " + std::to_string(i) + "\"");
        slow.push_back(connect_to(s.port()));
        REQUIRE(send_all(slow.back(), head("PUT", "/cgi-bin/kv/slow" + std::to_string(i), values.back().size()) +
                                          values.back().substr(0, 1)));
      }
      std::this_thread::sleep_for(200ms);
      // Nothing started for them: no new handler process, and every other request is served at once.
      CHECK(live_descendants(s.pid()) <= processes_before);
      for (int i = 0; i < 5; ++i) {
        auto r = get(s.port(), "/cgi-bin/hello", 5000);
        INFO("spawnd's stderr:\n" << s.stderr_text());
        CHECK(r.status == 200);
      }
      // The rest of each body arrives (one at a time: one slot and a queue of one serve one at a time): each PUT is
      // answered, and what it stored is what was sent.
      for (int i = 0; i < kSlow; ++i) {
        REQUIRE(send_all(slow[static_cast<std::size_t>(i)], values[static_cast<std::size_t>(i)].substr(1)));
        auto r = read_response(slow[static_cast<std::size_t>(i)]);
        INFO("PUT " << i << ": " << r.status_line << "\n" << r.body << "\nspawnd's stderr:\n" << s.stderr_text());
        CHECK(r.status == 201);
        auto back = get(s.port(), "/cgi-bin/kv/slow" + std::to_string(i));
        CHECK(back.status == 200);
        CHECK(back.body == values[static_cast<std::size_t>(i)]);
      }
      int status = s.stop();
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
    }
  }
}

TEST_CASE("the handler timeout counts from the request's hand-over in every mode: a trickled body gets 504 unbuffered, "
          "200 buffered",
          "[e2e][body][timeout]") {
  // A 4-byte PUT body, one byte a second, with --handler-timeout 2. Unbuffered, the gateway has the request from the
  // end of its head, so the time runs out before the body is complete: 504 in every mode (in-process mode used to
  // start the clock only after the body and answered 200). Buffered, the gateway gets the request once the body is
  // complete: 200 in every mode.
  const std::vector<ModeRow> rows = {
      {"cgi", {"--mode", "cgi"}},
      {"fork", {"--mode", "fork", "--fork-servers", "1"}},
      {"fastcgi", {"--mode", "fastcgi", "--workers", "1"}},
      {"inproc", {"--mode", "inproc", "--workers", "1"}},
  };
  const std::string buffering = GENERATE(as<std::string>{}, "off", "on");
  for (const auto& row : rows) {
    DYNAMIC_SECTION(row.name << " mode, --request-buffering " << buffering) {
      TempDir dir;
      std::vector<std::string> a{"--root", dir.path(), "--cgi-bin", kHandlers, "--db", dir.path() + "/site.db",
                                 "--handler-timeout", "2", "--request-buffering", buffering};
      a.insert(a.end(), row.flags.begin(), row.flags.end());
      Spawnd s(a);
      REQUIRE(get(s.port(), "/cgi-bin/hello").status == 200);  // warm-up (fork servers, workers, .so loaded)
      const std::string value = "\"ab\"";
      Fd c = connect_to(s.port());
      REQUIRE(send_all(c, head("PUT", "/cgi-bin/kv/trickled", value.size())));
      for (char byte : value) {
        std::this_thread::sleep_for(1s);
        if (!send_all(c, std::string_view(&byte, 1))) break;  // answered 504 and closed already
      }
      const HttpResponse r = read_response(c, false, 10000);
      INFO("spawnd's stderr:\n" << s.stderr_text());
      CHECK(r.status == (buffering == "off" ? 504 : 201));
      const int status = s.stop();
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
    }
  }
}

TEST_CASE("with --request-buffering off the handler starts before its body is complete, and reads it as it comes",
          "[e2e][body]") {
  TempDir dir;
  Spawnd s({"--root", dir.path(), "--cgi-bin", kCgiDir, "--request-buffering", "off", "--quiet"});
  const std::string body = pattern(1000);
  Fd c = connect_to(s.port());
  REQUIRE(send_all(c, head("POST", "/cgi-bin/echo.py", body.size()) + body.substr(0, 10)));
  // The CGI child runs already, waiting for the rest of its stdin.
  CHECK(wait_until([&] { return !live_children_of(s.pid()).empty(); }, 5s));
  REQUIRE(send_all(c, body.substr(10)));
  auto r = read_response(c);
  CHECK(r.status == 200);
  CHECK(r.body == body);
}

TEST_CASE("a body past --body-buffer-bytes waits in an unlinked temporary file and reaches the handler whole",
          "[e2e][body]") {
  TempDir dir;
  const std::string temp = dir.path() + "/bodies";
  fs::create_directories(temp);
  Spawnd s({"--root", dir.path(), "--cgi-bin", kCgiDir, "--body-buffer-bytes", "1000", "--body-temp-dir", temp,
            "--quiet"});
  const std::string body = pattern(3 * 1024 * 1024 + 17);

  SECTION("with a Content-Length") {
    Fd c = connect_to(s.port());
    REQUIRE(send_all(c, head("POST", "/cgi-bin/echo.py", body.size()) + body.substr(0, body.size() / 2)));
    std::this_thread::sleep_for(100ms);
    CHECK(fs::is_empty(temp));  // O_TMPFILE: nothing to clean up, even after a crash
    CHECK(live_children_of(s.pid()).empty());  // the handler starts when the body is complete
    REQUIRE(send_all(c, body.substr(body.size() / 2)));
    auto r = read_response(c);
    CHECK(r.status == 200);
    CHECK(r.field("X-Content-Length") == std::to_string(body.size()));
    CHECK(r.body.size() == body.size());
    CHECK(r.body == body);
  }
  SECTION("chunked: the handler gets CONTENT_LENGTH, as before") {
    Fd c = connect_to(s.port());
    std::string raw = chunked_head("/cgi-bin/echo.py");
    for (std::size_t i = 0; i < body.size(); i += 100'000) raw += chunk(std::string_view(body).substr(i, 100'000));
    raw += "0\r\n\r\n";
    REQUIRE(send_all(c, raw));
    auto r = read_response(c);
    CHECK(r.status == 200);
    CHECK(r.field("X-Content-Length") == std::to_string(body.size()));
    CHECK(r.body == body);
  }
  CHECK(fs::is_empty(temp));
}

TEST_CASE("request bodies past --max-buffered-body-bytes get 503 with Retry-After and the server keeps serving",
          "[e2e][body]") {
  TempDir dir;
  dir.write("index.html", "home\n");
  Spawnd s({"--root", dir.path(), "--cgi-bin", kCgiDir, "--body-buffer-bytes", "4096", "--max-buffered-body-bytes",
            "100000", "--quiet"});

  SECTION("a Content-Length that cannot fit is refused before its body is read") {
    auto r = request(s.port(), head("POST", "/cgi-bin/echo.py", 200'000));
    CHECK(r.status == 503);
    CHECK(r.field("Retry-After") == "1");
  }
  SECTION("a chunked body that grows past the limit is cut off with 503") {
    Fd c = connect_to(s.port());
    std::string raw = chunked_head("/cgi-bin/echo.py");
    for (int i = 0; i < 15; ++i) raw += chunk(pattern(10'000));
    (void)send_all(c, raw);  // spawnd may close before it has everything
    auto r = read_response(c);
    CHECK(r.status == 503);
    CHECK(r.field("Retry-After") == "1");
  }
  SECTION("bodies held by other connections count: the one that would pass the limit is refused") {
    Fd a = connect_to(s.port());
    REQUIRE(send_all(a, head("POST", "/cgi-bin/echo.py", 90'000) + pattern(80'000)));
    std::this_thread::sleep_for(200ms);
    auto r = request(s.port(), head("POST", "/cgi-bin/echo.py", 30'000) + pattern(30'000));
    CHECK(r.status == 503);
    // Once the first completes and is answered, its bytes are free again.
    REQUIRE(send_all(a, pattern(10'000)));
    CHECK(read_response(a).status == 200);
    auto again = request(s.port(), head("POST", "/cgi-bin/echo.py", 30'000) + pattern(30'000));
    CHECK(again.status == 200);
  }
  auto home = get(s.port(), "/");
  CHECK(home.status == 200);
  CHECK(home.body == "home\n");
}

TEST_CASE("a flood of unfinished chunked bodies keeps spawnd's memory bounded and a concurrent request is answered",
          "[e2e][body]") {
  TempDir dir;
  dir.write("index.html", "home\n");
  Spawnd s({"--root", dir.path(), "--cgi-bin", kCgiDir, "--quiet"});
  REQUIRE(get(s.port(), "/").status == 200);
  const long rss_before = vm_rss_kib(s.pid());
  // 20 connections × 4 MiB of chunked body, never the last chunk. Before request buffering, a chunked body for a
  // CGI was held in memory up to --max-body-bytes: 80 MiB here.
  constexpr int kConnections = 20;
  constexpr std::size_t kBytesEach = 4 << 20;
  std::vector<Fd> flood;
  const std::string piece = chunk(pattern(64 * 1024));
  for (int i = 0; i < kConnections; ++i) {
    flood.push_back(connect_to(s.port(), 10'000));
    REQUIRE(send_all(flood.back(), chunked_head("/cgi-bin/echo.py")));
  }
  for (std::size_t sent = 0; sent < kBytesEach; sent += 64 * 1024)
    for (auto& c : flood) REQUIRE(send_all(c, piece));
  auto home = get(s.port(), "/", 5000);
  CHECK(home.status == 200);
  const long rss_after = vm_rss_kib(s.pid());
  INFO("VmRSS before " << rss_before << " KiB, with the flood " << rss_after << " KiB");
#ifndef __SANITIZE_ADDRESS__  // ASan's shadow memory and quarantine make RSS meaningless here
  CHECK(rss_after - rss_before < 32 * 1024);
#endif
  CHECK(rss_after > 0);
}

TEST_CASE("a --body-temp-dir where no file can be created stops spawnd at start-up with exit status 2",
          "[e2e][body]") {
  TempDir dir;
  auto r = run_spawnd({"--listen", "127.0.0.1:0", "--root", dir.path(), "--body-temp-dir", "/proc"});
  CHECK(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 2);
  CHECK(r.stderr_text.find("--body-temp-dir /proc") != std::string::npos);
}

TEST_CASE("a request body that cannot be written to its temporary file gets 500 and the server keeps serving",
          "[e2e][body]") {
  TempDir dir;
  dir.write("index.html", "home\n");
  const std::string temp = dir.path() + "/bodies";
  fs::create_directories(temp);
  Spawnd s({"--root", dir.path(), "--cgi-bin", kCgiDir, "--body-buffer-bytes", "1000", "--body-temp-dir", temp});
  fs::remove(temp);  // checked at start-up; gone when the first body spills
  auto r = request(s.port(), head("POST", "/cgi-bin/echo.py", 5000) + pattern(5000));
  CHECK(r.status == 500);
  // stderr is collected by a reader thread: wait (bounded) for the line.
  CHECK(wait_until([&] { return s.stderr_text().find("cannot create a temporary file in " + temp) != std::string::npos; },
                   5s));
  // A body that fits in memory still goes through, and so does everything else.
  auto small = request(s.port(), head("POST", "/cgi-bin/echo.py", 500) + pattern(500));
  CHECK(small.status == 200);
  CHECK(small.body == pattern(500));
  CHECK(get(s.port(), "/").body == "home\n");
}
