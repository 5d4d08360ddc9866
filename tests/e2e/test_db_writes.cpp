// Sustained guestbook writes against a real spawnd in every mode (issue 12): the -wal file stays under
// --wal-max-bytes, every POST answered 303 is a row, a kill -9 of the whole process tree loses no acknowledged write,
// and no connection of ours holds a read transaction between requests. Behaviour, not speed: the databases live in
// /dev/shm, so that a slow disk's fsyncs do not make the runs long, and the bounds are small so that each run
// crosses them many times.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
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

// A directory in /dev/shm (tmpfs), removed at the end.
class ShmDir {
 public:
  ShmDir() {
    char tmpl[] = "/dev/shm/spawnd-writes-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    path_ = tmpl;
  }
  ~ShmDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ShmDir(const ShmDir&) = delete;
  ShmDir& operator=(const ShmDir&) = delete;
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

std::vector<std::string> mode_args(const std::string& mode) {
  if (mode == "fork") return {"--mode", "fork", "--fork-servers", "1"};
  if (mode == "fastcgi" || mode == "inproc") return {"--mode", mode, "--workers", "2"};
  return {"--mode", "cgi"};
}

std::vector<std::string> writer_args(const TempDir& www, const std::string& db, const std::string& mode,
                                     std::vector<std::string> extra) {
  fs::create_directories(www.path() + "/www");
  std::vector<std::string> args{"--root", www.path() + "/www", "--cgi-bin", SPAWND_CGI_BIN_DIR, "--db", db};
  for (auto& a : mode_args(mode)) args.push_back(a);
  for (auto& a : extra) args.push_back(a);
  return args;
}

std::string post(const std::string& name, bool is_close = false) {
  std::string body = "name=" + name + "&message=sustained";
  return std::string("POST /cgi-bin/guestbook HTTP/1.1\r\nHost: 127.0.0.1\r\n") +
         (is_close ? "Connection: close\r\n" : "") +
         "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::int64_t file_bytes(const std::string& path) {
  std::error_code ec;
  auto n = fs::file_size(path, ec);
  return ec ? -1 : static_cast<std::int64_t>(n);
}

// `clients` keep-alive connections POST guestbook entries named c<client>r<n> until `stop`; every name whose POST
// was answered 303 goes into `acked`, any other outcome is counted in `other`.
struct WriteLoad {
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::vector<std::string> acked;
  std::atomic<int> other{0};
  std::vector<std::thread> threads;

  WriteLoad(std::uint16_t port, int clients) {
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([this, port, c] {
        int n = 0;
        while (!stop) {
          try {
            spawnd::Fd fd = connect_to(port);
            std::string leftover;
            while (!stop) {
              const std::string name = "c" + std::to_string(c) + "r" + std::to_string(++n);
              if (!send_all(fd, post(name))) break;
              HttpResponse r = read_response(fd, leftover, false, 20000);
              if (r.status == 303) {
                std::lock_guard lock(mutex);
                acked.push_back(name);
              } else {
                if (!stop) ++other;
                break;
              }
            }
          } catch (const std::exception&) {
            if (!stop) ++other;
          }
        }
      });
    }
  }
  std::size_t acked_count() {
    std::lock_guard lock(mutex);
    return acked.size();
  }
  // Lets the load run until `count` POSTs were acknowledged or `limit` passed (sanitizer builds are slow).
  void run_until(std::size_t count, std::chrono::milliseconds limit) {
    (void)wait_until([&] { return acked_count() >= count; }, limit);
  }
  void join() {
    stop = true;
    for (auto& t : threads) t.join();
  }
};

// The largest size the -wal file reached while the sampler ran (every 1 ms).
struct WalSampler {
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> largest{0};
  std::thread thread;
  explicit WalSampler(std::string wal) {
    thread = std::thread([this, wal] {
      while (!stop) {
        largest = std::max(largest.load(), file_bytes(wal));
        std::this_thread::sleep_for(1ms);
      }
    });
  }
  std::int64_t join() {
    stop = true;
    thread.join();
    return largest;
  }
};

std::set<std::string> guestbook_names(const std::string& db) {
  std::set<std::string> names;
  sqlite3* conn = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &conn, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_busy_timeout(conn, 5000);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(conn, "SELECT name FROM guestbook", -1, &st, nullptr) == SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) names.emplace(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  sqlite3_close(conn);
  return names;
}

// `root` and every process below it (children first seen through /proc's ppid links), as they are now.
std::vector<pid_t> process_tree(pid_t root) {
  std::vector<pid_t> tree{root};
  for (std::size_t i = 0; i < tree.size(); ++i) {
    for (const ProcStat& p : children_of(tree[i])) tree.push_back(p.pid);
  }
  return tree;
}

}  // namespace

TEST_CASE("sustained guestbook POSTs keep the -wal under --wal-max-bytes in every mode, and every 303 is a row",
          "[e2e][db][writes]") {
  const std::string mode = GENERATE("cgi", "fork", "fastcgi", "inproc");
  // "writers only": the keeper polls once an hour, so the handlers' own checkpoints at 3/4 of the bound are all
  // that keeps it (db::Connection::set_wal_max_bytes); "keeper": the normal case, spawnd's poll every 5 ms.
  const std::string who = GENERATE("keeper", "writers only");
  CAPTURE(mode, who);
  TempDir www;
  ShmDir shm;
  const std::string db = shm.path() + "/site.db";
  // 256 KiB: a guestbook POST adds 2 or 3 frames (~8-12 KiB), so 3/4 of the bound is crossed every ~20 POSTs; at
  // most 4 handlers write at once (--max-children 4, 2 workers), so the writes in flight past 3/4 stay under B.
  constexpr std::int64_t kBound = 256 * 1024;
  Spawnd s(writer_args(www, db, mode,
                       {"--wal-max-bytes", std::to_string(kBound), "--max-children", "4", "--checkpoint-interval",
                        who == "keeper" ? "0.005" : "3600"}));
  WalSampler sampler(db + "-wal");
  WriteLoad load(s.port(), 8);
  load.run_until(600, 8s);
  // A sanitizer build's CGI mode beside another test (ctest -j2) may fall short of the writes needed below in 8 s
  // (57 once): it writes on, up to 12 s more, until it has them.
  if (load.acked_count() < 60) load.run_until(60, 12s);
  load.join();
  const std::int64_t largest = sampler.join();
  CAPTURE(largest, load.acked.size());
  CHECK(load.other == 0);
  CHECK(load.acked.size() >= 60);             // enough writes to cross 3/4 of the bound a few times
  CHECK(largest > 0);
  CHECK(largest <= kBound);
  CHECK(s.stop() == 0);
  CHECK(query_text(db, "PRAGMA integrity_check") == "ok");
  const std::set<std::string> names = guestbook_names(db);
  CHECK(names.size() == load.acked.size());  // nothing was in flight: every POST ended before the stop
  for (const std::string& name : load.acked) {
    if (names.count(name) == 0) FAIL_CHECK("acknowledged but missing: " << name);
  }
  // The keeper's account of the run, in its shutdown line.
  CHECK_THAT(s.stderr_text(), Catch::Contains("largest seen") && Catch::Contains("frames backfilled"));
}

TEST_CASE("a kill -9 of spawnd's whole process tree during sustained writes loses no acknowledged write",
          "[e2e][db][writes]") {
  const std::string mode = GENERATE("cgi", "fork", "fastcgi", "inproc");
  CAPTURE(mode);
  TempDir www;
  ShmDir shm;
  const std::string db = shm.path() + "/site.db";
  std::set<std::string> acked;
  std::size_t in_flight_bound = 0;
  {
    Spawnd s(writer_args(www, db, mode, {"--quiet", "--wal-max-bytes", std::to_string(1 << 20)}));
    WriteLoad load(s.port(), 8);
    load.run_until(300, 8s);
    // Every process of the server at once, the handlers' too (CGI children, fork servers and their children,
    // FastCGI workers): nothing gets to finish a commit, close a connection or checkpoint.
    for (int round = 0; round < 3; ++round) {
      for (pid_t pid : process_tree(s.pid())) ::kill(pid, SIGKILL);
    }
    (void)s.stop(10000, 0);  // reaps it
    load.join();
    acked.insert(load.acked.begin(), load.acked.end());
    in_flight_bound = 8;  // at most one POST per client was unanswered at the kill
  }
  REQUIRE(acked.size() >= 20);
  // Recovery: the first connection replays the WAL spawnd's processes left behind.
  CHECK(query_text(db, "PRAGMA integrity_check") == "ok");
  const std::set<std::string> names = guestbook_names(db);
  CAPTURE(acked.size(), names.size());
  for (const std::string& name : acked) {
    if (names.count(name) == 0) FAIL_CHECK("acknowledged but lost: " << name);
  }
  CHECK(names.size() <= acked.size() + in_flight_bound);
}

TEST_CASE("between requests no connection of ours holds a read transaction: a TRUNCATE checkpoint gets through",
          "[e2e][db][writes]") {
  const std::string mode = GENERATE("cgi", "fork", "fastcgi", "inproc");
  CAPTURE(mode);
  TempDir www;
  ShmDir shm;
  const std::string db = shm.path() + "/site.db";
  // The keeper polls once an hour here, so that its own checkpoint lock never gets in the way of ours.
  Spawnd s(writer_args(www, db, mode, {"--quiet", "--checkpoint-interval", "3600"}));
  for (int i = 0; i < 20; ++i) {
    CHECK(request(s.port(), post("idle" + std::to_string(i), true)).status == 303);
    CHECK(get(s.port(), "/cgi-bin/guestbook").status == 200);
  }
  // A TRUNCATE checkpoint waits for every reader to leave the WAL; with busy_timeout 0 it reports busy at once if
  // anyone (a worker's cached statement left un-reset, the keeper) still holds a snapshot. It is retried for a
  // moment: in fork and cgi mode the last request's process may still be closing its connection after its
  // response went out (a close takes a lock for an instant); a snapshot held between requests never goes away.
  std::string checkpoint;
  const bool is_through = wait_until(
      [&] {
        checkpoint = query_text(db, "PRAGMA wal_checkpoint(TRUNCATE)", 0);
        return checkpoint == "0";  // the first column: 0, not busy
      },
      2s);
  INFO("PRAGMA wal_checkpoint(TRUNCATE): " << checkpoint);
  CHECK(is_through);
  CHECK(file_bytes(db + "-wal") == 0);
  CHECK(s.stop() == 0);
}
