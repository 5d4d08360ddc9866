// `spawnd --mode fastcgi` end to end: SDK handlers run as persistent FastCGI workers (children of spawnd, a
// listening socket as fd 0), the same process serves request after request, a worker killed with SIGKILL in the
// middle of a load is replaced and later requests succeed, a crash is a 502 and a restart, a hang is a 504 and a
// replaced worker, --max-requests recycles workers, a request pipelined behind a busy worker's running one is served
// right after it (and survives that one's crash, or its own client leaving), a handler replaced on disk is served in its new version from the
// next request, scripts that are not SDK handlers still run as CGI, and on
// SIGTERM spawnd stops every worker and exits 0. Fixtures: tests/fixtures/ (whoami, crash, hang, leak). Every wait is
// bounded.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "proc.h"

using namespace spawnd::e2e;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr auto kSettle = 5s;
const std::string kFixtures = SPAWND_TEST_CGI_BIN_DIR;
const std::string kHandlers = SPAWND_CGI_BIN_DIR;

std::string read_link(const std::string& path) {
  std::error_code ec;
  auto target = fs::read_symlink(path, ec);
  return ec ? std::string() : target.string();
}

// The FastCGI workers of executable `exe`: live children of spawnd running it with a listening socket on fd 0.
std::set<pid_t> workers(pid_t spawnd, const std::string& exe) {
  std::set<pid_t> out;
  for (const auto& p : live_children_of(spawnd)) {
    const std::string base = "/proc/" + std::to_string(p.pid);
    if (read_link(base + "/exe") != exe) continue;
    if (read_link(base + "/fd/0").rfind("socket:", 0) != 0) continue;
    out.insert(p.pid);
  }
  return out;
}

// "pid=N ppid=N pgid=N version=V" from the whoami fixture.
pid_t served_by(const HttpResponse& r) {
  std::smatch m;
  static const std::regex re("pid=([0-9]+)");
  return std::regex_search(r.body, m, re) ? static_cast<pid_t>(std::stol(m[1])) : -1;
}

std::vector<std::string> args(const TempDir& dir, const std::string& cgi_bin, std::vector<std::string> more = {}) {
  std::vector<std::string> a{"--root", dir.path(), "--cgi-bin", cgi_bin, "--mode", "fastcgi", "--quiet"};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

// Waits until none of `pids` is running any more (gone, or a zombie); false after kSettle.
bool wait_all_exited(const std::set<pid_t>& pids) {
  return wait_until(
      [&] {
        for (pid_t p : pids)
          if (auto st = proc_stat(p); st && st->state != 'Z') return false;
        return true;
      },
      kSettle);
}

// SIGTERM: exit 0, and not one worker left behind (they were spawnd's children, now nobody's).
void stop_cleanly(Spawnd& server, const std::set<pid_t>& watched) {
  CHECK(server.stop() == 0);
  CHECK(wait_all_exited(watched));
}

}  // namespace

TEST_CASE("fastcgi mode: each SDK handler runs as --workers persistent processes, reused across requests",
          "[e2e][fastcgi]") {
  TempDir dir;
  Spawnd server(args(dir, kFixtures, {"--workers", "2"}));
  const std::string whoami = kFixtures + "/whoami";
  REQUIRE(wait_until([&] { return workers(server.pid(), whoami).size() == 2; }, kSettle));
  const std::set<pid_t> started = workers(server.pid(), whoami);

  std::set<pid_t> seen;
  for (int i = 0; i < 20; ++i) {
    HttpResponse r = get(server.port(), "/cgi-bin/whoami");
    REQUIRE(r.status == 200);
    CHECK(r.body.find("ppid=" + std::to_string(server.pid())) != std::string::npos);
    seen.insert(served_by(r));
  }
  // Every answer came from one of the two workers: no process was started per request.
  for (pid_t p : seen) CHECK(started.count(p) == 1);
  CHECK(workers(server.pid(), whoami) == started);

  // The leak fixture's static counter grows: globals outlive requests in this mode (what it does not isolate).
  HttpResponse first = get(server.port(), "/cgi-bin/leak");
  HttpResponse second = get(server.port(), "/cgi-bin/leak");
  REQUIRE(first.status == 200);
  REQUIRE(second.status == 200);
  INFO(first.body << " / " << second.body);
  stop_cleanly(server, started);
}

TEST_CASE("fastcgi mode: a worker killed with SIGKILL under load is replaced and later requests succeed",
          "[e2e][fastcgi]") {
  TempDir dir;
  Spawnd server(args(dir, kHandlers, {"--workers", "2", "--db", dir.path() + "/site.db"}));
  const std::string hello = kHandlers + "/hello";
  REQUIRE(wait_until([&] { return workers(server.pid(), hello).size() == 2; }, kSettle));
  const std::set<pid_t> before = workers(server.pid(), hello);

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      while (!stop) {
        HttpResponse r = get(server.port(), "/cgi-bin/hello");
        (r.status == 200 ? ok : failed)++;
      }
    });
  }
  REQUIRE(wait_until([&] { return ok.load() > 50; }, kSettle));
  const pid_t victim = *before.begin();
  REQUIRE(::kill(victim, SIGKILL) == 0);
  // A new worker takes its place.
  CHECK(wait_until(
      [&] {
        auto now = workers(server.pid(), hello);
        return now.size() == 2 && now.count(victim) == 0;
      },
      kSettle));
  const int ok_at_kill = ok.load();
  REQUIRE(wait_until([&] { return ok.load() > ok_at_kill + 50; }, kSettle));
  stop = true;
  for (auto& t : clients) t.join();
  // At most the requests in flight on the killed worker failed (502); everything after the restart succeeded.
  CHECK(failed.load() <= 2);
  for (int i = 0; i < 5; ++i) CHECK(get(server.port(), "/cgi-bin/hello").status == 200);
  CHECK(server.stderr_text().find("restarting") != std::string::npos);
  stop_cleanly(server, workers(server.pid(), hello));
}

TEST_CASE("fastcgi mode: a crash is a 502, the worker is restarted and serves again", "[e2e][fastcgi]") {
  TempDir dir;
  Spawnd server(args(dir, kFixtures, {"--workers", "1"}));
  HttpResponse crashed = get(server.port(), "/cgi-bin/crash");
  CHECK(crashed.status == 502);
  HttpResponse alive;
  CHECK(wait_until(
      [&] {
        alive = get(server.port(), "/cgi-bin/crash?ok");
        return alive.status == 200;
      },
      kSettle));
  CHECK(alive.body == "alive\n");
  // The log line is written before the restart, but reaches us through the harness's reader thread: wait for it.
  const bool is_logged =
      wait_until([&] { return server.stderr_text().find("signal") != std::string::npos; }, kSettle);
  INFO("spawnd's stderr:\n" << server.stderr_text());
  CHECK(is_logged);
  stop_cleanly(server, workers(server.pid(), kFixtures + "/crash"));
}

TEST_CASE("fastcgi mode: a hung worker gets 504 after --cgi-timeout and is replaced", "[e2e][fastcgi]") {
  TempDir dir;
  Spawnd server(args(dir, kFixtures, {"--workers", "1", "--cgi-timeout", "1", "--kill-grace", "0.5"}));
  const std::string hang = kFixtures + "/hang";
  REQUIRE(wait_until([&] { return workers(server.pid(), hang).size() == 1; }, kSettle));
  const pid_t hung = *workers(server.pid(), hang).begin();
  HttpResponse r = get(server.port(), "/cgi-bin/hang");
  CHECK(r.status == 504);
  CHECK(wait_until(
      [&] {
        auto now = workers(server.pid(), hang);
        return now.size() == 1 && now.count(hung) == 0;
      },
      kSettle));
  // The other handlers never noticed.
  CHECK(get(server.port(), "/cgi-bin/whoami").status == 200);
  stop_cleanly(server, workers(server.pid(), hang));
}

TEST_CASE("fastcgi mode: --max-requests replaces a worker after that many requests, without a failed request",
          "[e2e][fastcgi]") {
  TempDir dir;
  Spawnd server(args(dir, kFixtures, {"--workers", "1", "--max-requests", "3"}));
  std::vector<pid_t> served;
  for (int i = 0; i < 9; ++i) {
    HttpResponse r = get(server.port(), "/cgi-bin/whoami");
    REQUIRE(r.status == 200);
    served.push_back(served_by(r));
  }
  // Three requests per process: 9 requests, three processes, in runs of three.
  CHECK(std::set<pid_t>(served.begin(), served.end()).size() == 3);
  for (int i = 0; i < 9; ++i) CHECK(served[static_cast<std::size_t>(i)] == served[static_cast<std::size_t>(i / 3 * 3)]);
  stop_cleanly(server, workers(server.pid(), kFixtures + "/whoami"));
}

TEST_CASE("fastcgi mode: a handler replaced on disk is served in its new version from the next request, by new "
          "workers",
          "[e2e][fastcgi]") {
  TempDir dir;
  const std::string bin = dir.path() + "/cgi-bin";
  const std::string app = dir.install("cgi-bin/app", kFixtures + "/whoami");
  Spawnd server(args(dir, bin, {"--workers", "2"}));
  HttpResponse before = get(server.port(), "/cgi-bin/app");
  REQUIRE(before.status == 200);
  CHECK(before.body.find("version=1") != std::string::npos);
  std::set<pid_t> old_workers;
  REQUIRE(wait_until([&] { return (old_workers = workers(server.pid(), app)).size() == 2; }, kSettle));

  dir.deploy("cgi-bin/app", kFixtures + "/whoami2");

  // The very next request, and every one after it, is served by the new version, by a process that is not an old
  // worker.
  for (int i = 0; i < 6; ++i) {
    HttpResponse r = get(server.port(), "/cgi-bin/app");
    INFO("request " << i << ": " << r.status_line << "\n" << r.body << "\nspawnd's stderr:\n" << server.stderr_text());
    REQUIRE(r.status == 200);
    CHECK(r.body.find("version=2") != std::string::npos);
    CHECK(old_workers.count(served_by(r)) == 0);
  }
  // The old workers exit; two new ones serve.
  CHECK(wait_all_exited(old_workers));
  std::set<pid_t> new_workers;
  CHECK(wait_until([&] { return (new_workers = workers(server.pid(), app)).size() == 2; }, kSettle));
  stop_cleanly(server, new_workers);
}

TEST_CASE("fastcgi mode: programs that are not SDK handlers run as CGI", "[e2e][fastcgi]") {
  TempDir dir;
  TempDir bin;
  bin.write("hello.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nshell %s\\n' \"$GATEWAY_INTERFACE\"\n", true);
  fs::copy_file(kHandlers + "/hello", bin.path() + "/hello");
  Spawnd server(args(dir, bin.path(), {"--workers", "1"}));
  HttpResponse sh = get(server.port(), "/cgi-bin/hello.sh");
  CHECK(sh.status == 200);
  CHECK(sh.body == "shell CGI/1.1\n");
  HttpResponse sdk = get(server.port(), "/cgi-bin/hello");
  CHECK(sdk.status == 200);
  CHECK(workers(server.pid(), bin.path() + "/hello").size() == 1);
  CHECK(get(server.port(), "/cgi-bin/missing").status == 404);
  stop_cleanly(server, workers(server.pid(), bin.path() + "/hello"));
}

TEST_CASE("fastcgi mode: guestbook POSTs through persistent workers all land in the database", "[e2e][fastcgi]") {
  TempDir dir;
  const std::string db = dir.path() + "/site.db";
  Spawnd server(args(dir, kHandlers, {"--workers", "2", "--db", db}));
  constexpr int kClients = 4;
  constexpr int kPerClient = 25;
  std::atomic<int> see_other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kPerClient; ++i) {
        const std::string body = "name=c" + std::to_string(c) + "&message=m" + std::to_string(i);
        HttpResponse r = request(server.port(), "POST /cgi-bin/guestbook HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                                                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
                                                    std::to_string(body.size()) + "\r\n\r\n" + body);
        if (r.status == 303) ++see_other;
      }
    });
  }
  for (auto& t : clients) t.join();
  CHECK(see_other.load() == kClients * kPerClient);
  CHECK(count_rows(db, "guestbook") == kClients * kPerClient);
  HttpResponse page = get(server.port(), "/cgi-bin/guestbook");
  CHECK(page.status == 200);
  CHECK(page.body.find("m24") != std::string::npos);
  stop_cleanly(server, workers(server.pid(), kHandlers + "/guestbook"));
}

// Pipelining (fastcgi_client.h, FastCgiApp::pipeline): with every worker busy, a request that can be sent whole goes
// out behind a running one on the same connection, and the worker reads it as soon as it has ended that one.
TEST_CASE("fastcgi mode: a request sent behind a busy worker's running one is served by it right after",
          "[e2e][fastcgi]") {
  TempDir dir;
  Spawnd server(args(dir, kFixtures, {"--workers", "1"}));
  REQUIRE(get(server.port(), "/cgi-bin/slow?ms=0").status == 200);  // the worker is up
  HttpResponse first;
  std::thread slow([&] { first = get(server.port(), "/cgi-bin/slow?ms=400"); });
  std::this_thread::sleep_for(100ms);
  const auto start = std::chrono::steady_clock::now();
  const HttpResponse second = get(server.port(), "/cgi-bin/slow?ms=0");
  const auto waited = std::chrono::steady_clock::now() - start;
  slow.join();
  CHECK(first.status == 200);
  CHECK(second.status == 200);
  CHECK(second.body == "slept 0 ms\n");
  CHECK(waited >= 200ms);  // it ran after the first one, on the one worker
  CHECK(get(server.port(), "/cgi-bin/slow?ms=0").status == 200);  // the connection is in step afterwards
  stop_cleanly(server, workers(server.pid(), kFixtures + "/slow"));
}

TEST_CASE("fastcgi mode: a POST sent behind a request whose worker crashes runs on the restarted worker, once",
          "[e2e][fastcgi]") {
  TempDir dir;
  Spawnd server(args(dir, kFixtures, {"--workers", "1"}));
  REQUIRE(get(server.port(), "/cgi-bin/crash?ok").status == 200);
  HttpResponse crashed;
  std::thread crashing([&] { crashed = get(server.port(), "/cgi-bin/crash?ms=400"); });
  std::this_thread::sleep_for(100ms);
  // Not idempotent, so never retried once it may have run: here it provably had not (the worker died in the request
  // before it, and spawnd read its end of the connection to the last byte), so it runs once, and succeeds.
  const HttpResponse behind = request(server.port(),
                                      "POST /cgi-bin/crash?ok HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                      "Content-Type: text/plain\r\nConnection: close\r\n\r\nabc");
  crashing.join();
  CHECK(crashed.status == 502);
  INFO(server.stderr_text());
  CHECK(behind.status == 200);
  CHECK(behind.body == "alive\n");
  stop_cleanly(server, workers(server.pid(), kFixtures + "/crash"));
}

TEST_CASE("fastcgi mode: a request whose client leaves while it waits behind a running one leaves the worker serving",
          "[e2e][fastcgi]") {
  TempDir dir;
  Spawnd server(args(dir, kFixtures, {"--workers", "1"}));
  REQUIRE(get(server.port(), "/cgi-bin/slow?ms=0").status == 200);
  const std::set<pid_t> before = workers(server.pid(), kFixtures + "/slow");
  REQUIRE(before.size() == 1);
  HttpResponse first;
  std::thread slow([&] { first = get(server.port(), "/cgi-bin/slow?ms=300"); });
  std::this_thread::sleep_for(100ms);
  {
    // Sent, queued behind the slow one on its worker (the slow fixture's app), then abandoned.
    const auto fd = connect_to(server.port());
    const std::string raw = "GET /cgi-bin/slow?ms=0 HTTP/1.1\r\nHost: x\r\n\r\n";
    REQUIRE(::send(fd.get(), raw.data(), raw.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(raw.size()));
    std::this_thread::sleep_for(50ms);
  }
  slow.join();
  CHECK(first.status == 200);
  // The abandoned request's output was discarded and the connection stays in step: the next ones are served.
  for (int i = 0; i < 3; ++i) CHECK(get(server.port(), "/cgi-bin/slow?ms=0").status == 200);
  CHECK(workers(server.pid(), kFixtures + "/slow") == before);  // not stopped, not replaced
  stop_cleanly(server, workers(server.pid(), kFixtures + "/slow"));
}
