// The front end's own connection to --db (server/db_keeper.h) end to end: a real spawnd in CGI mode, the built
// guestbook handler, a temp SQLite file inspected with the sqlite3 API from outside.
//
// How "checkpointed" is seen from outside without checkpointing ourselves (any wal_checkpoint call we made would do
// the keeper's job for it): a checkpoint is what copies committed pages from the -wal into the database file, so a
// COPY of the database file alone, without its -wal, holds a row only once a checkpoint has copied it.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "proc.h"

using namespace spawnd::e2e;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> keeper_args(const TempDir& dir, const std::string& db, std::vector<std::string> extra) {
  fs::create_directories(dir.path() + "/www");
  std::vector<std::string> args{"--root", dir.path() + "/www", "--cgi-bin", SPAWND_CGI_BIN_DIR, "--db", db,
                                "--quiet"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string sign(int i) {
  std::string body = "name=visitor" + std::to_string(i) + "&message=entry+" + std::to_string(i);
  return "POST /cgi-bin/guestbook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
         "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// POSTs one guestbook entry and returns the status once spawnd has closed the connection. With Connection: close it
// does so only after the handler's stdout reached EOF, that is after the handler closed its database and exited; so
// whatever that close did to the -wal has happened. (A client that hangs up as soon as it has the response can get
// the handler SIGTERMed before its close, since the gateway then cancels the exchange.)
int sign_and_wait(std::uint16_t port, int i) {
  spawnd::Fd fd = connect_to(port);
  REQUIRE(send_all(fd, sign(i)));
  std::string leftover;
  HttpResponse r = read_response(fd, leftover);
  CHECK(wait_closed(fd, 10000));
  return r.status;
}

std::int64_t file_bytes(const std::string& path) {
  std::error_code ec;
  auto n = fs::file_size(path, ec);
  return ec ? -1 : static_cast<std::int64_t>(n);
}

// Rows of `table` in the database FILE ALONE: copies the file (not its -wal or -shm) and counts in the copy.
// "error: ..." while the table has not reached the file (or a checkpoint was writing the file as we copied it).
std::string rows_in_file_alone(const TempDir& dir, const std::string& db, const std::string& table = "guestbook") {
  std::string copy = dir.path() + "/copy.db";
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(copy + suffix);
  fs::copy_file(db, copy);
  return query_text(copy, "SELECT count(*) FROM " + table);
}

// The value of the status page's sample `series` (metric_sample); 0 if it is absent.
double status_sample(std::uint16_t port, const std::string& series) {
  const HttpResponse r = get(port, "/server-status");
  REQUIRE(r.status == 200);
  return metric_sample(r.body, series);
}

// Runs spawnd with `args` on an ephemeral port to its exit, for start-up failures a running Spawnd cannot show.
ExitResult run_to_exit(const std::vector<std::string>& args) {
  std::vector<std::string> with_listen{"--listen", "127.0.0.1:0"};
  with_listen.insert(with_listen.end(), args.begin(), args.end());
  return run_spawnd(with_listen);
}

}  // namespace

TEST_CASE("spawnd creates the --db file in WAL mode at start-up, before any request", "[e2e][db]") {
  TempDir dir;
  std::string db = dir.path() + "/site.db";
  Spawnd s(keeper_args(dir, db, {}));
  // No request yet: the file exists because spawnd opened it, with the preset's on-create PRAGMAs.
  REQUIRE(fs::exists(db));
  CHECK(query_text(db, "PRAGMA journal_mode") == "wal");
  CHECK(query_text(db, "PRAGMA page_size") == "4096");
  int status = s.stop();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("with --pragmas baseline the file is created as a rollback-journal file, and left so", "[e2e][db]") {
  TempDir dir;
  std::string db = dir.path() + "/site.db";
  Spawnd s(keeper_args(dir, db, {"--pragmas", "baseline"}));
  REQUIRE(fs::exists(db));
  CHECK(query_text(db, "PRAGMA journal_mode") == "delete");
  CHECK(sign_and_wait(s.port(), 1) == 303);
  CHECK_FALSE(fs::exists(db + "-wal"));
  CHECK(s.stop() == 0);  // exited with status 0
  CHECK(query_text(db, "SELECT count(*) FROM guestbook") == "1");
}

TEST_CASE("guestbook POSTs keep the -wal between requests, and spawnd checkpoints it every interval", "[e2e][db]") {
  const std::string mode = GENERATE("cgi", "fork");  // the keeper belongs to the server, whatever the mode
  CAPTURE(mode);
  TempDir dir;
  std::string db = dir.path() + "/site.db";
  Spawnd s(keeper_args(dir, db, {"--checkpoint-interval", "0.2", "--mode", mode}));
  constexpr int kRows = 300;
  int see_other = 0;
  bool is_wal_kept = true;
  for (int i = 1; i <= kRows; ++i) {
    see_other += sign_and_wait(s.port(), i) == 303 ? 1 : 0;
    is_wal_kept = is_wal_kept && fs::exists(db + "-wal");
  }
  CHECK(see_other == kRows);
  // Every handler has exited by now, and its close was not the last one: spawnd's connection keeps the WAL.
  std::this_thread::sleep_for(300ms);
  CHECK(is_wal_kept);
  CHECK(fs::exists(db + "-wal"));
  CHECK(fs::exists(db + "-shm"));
  // Handlers do not checkpoint (wal_autocheckpoint=0); within a few intervals spawnd has copied every row into
  // the database file itself.
  std::string alone;
  CHECK(wait_until([&] { return (alone = rows_in_file_alone(dir, db)) == std::to_string(kRows); }, 5s));
  CAPTURE(alone);
  // Bounded: once a checkpoint has copied the whole WAL, the next writer starts it again from its beginning, so
  // later commits reuse the file instead of growing it. (During the back-to-back burst above, commits kept landing
  // while each PASSIVE checkpoint ran, so the WAL only caught up when the burst ended; a -wal past
  // journal_size_limit is truncated, see the test below.)
  std::int64_t wal_bytes = file_bytes(db + "-wal");
  CAPTURE(wal_bytes);
  const std::int64_t frames = (wal_bytes - 32) / (24 + 4096);  // WAL header, then frames of header + page
  REQUIRE(frames >= 6);
  const int extra = static_cast<int>(std::min<std::int64_t>(20, frames / 3));  // a commit here writes 1 to 3 pages
  for (int i = kRows + 1; i <= kRows + extra; ++i) CHECK(sign_and_wait(s.port(), i) == 303);
  CHECK(file_bytes(db + "-wal") == wal_bytes);

  CHECK(query_text(db, "SELECT count(*) FROM guestbook") == std::to_string(kRows + extra));
  int status = s.stop();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // spawnd's connection closed last: SQLite checkpointed and removed the WAL, and the file is sound.
  CHECK_FALSE(fs::exists(db + "-wal"));
  CHECK(query_text(db, "PRAGMA integrity_check") == "ok");
  CHECK(query_text(db, "SELECT count(*) FROM guestbook") == std::to_string(kRows + extra));
}

TEST_CASE("handlers never checkpoint: with a long interval the rows reach the file only at shutdown", "[e2e][db]") {
  const std::string mode = GENERATE("cgi", "fork");
  CAPTURE(mode);
  TempDir dir;
  std::string db = dir.path() + "/site.db";
  Spawnd s(keeper_args(dir, db, {"--checkpoint-interval", "3600", "--mode", mode}));
  for (int i = 1; i <= 20; ++i) REQUIRE(sign_and_wait(s.port(), i) == 303);
  std::this_thread::sleep_for(300ms);
  // Not one handler checkpointed, not even the guestbook table's creation: it is all still in the WAL.
  CHECK_THAT(rows_in_file_alone(dir, db), Catch::StartsWith("error: no such table"));
  CHECK(query_text(db, "SELECT count(*) FROM guestbook") == "20");
  auto started = std::chrono::steady_clock::now();
  int status = s.stop();
  // The keeper thread waits on a condition variable, not in a sleep: shutdown does not wait for the interval.
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(rows_in_file_alone(dir, db) == "20");
}

TEST_CASE("a -wal file past 3/4 of --wal-max-bytes is truncated by spawnd's keeper", "[e2e][db]") {
  TempDir dir;
  std::string db = dir.path() + "/site.db";
  // A WAL of ~1.2 MiB that nobody checkpoints, left by a connection that stays open (so its close does not
  // checkpoint and remove it): what a burst of writes by a program without the bound leaves behind.
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other,
                       "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE big(x);"
                       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<300)"
                       "  INSERT INTO big SELECT randomblob(3000) FROM n;",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  REQUIRE(file_bytes(db + "-wal") > 1000000);
  Spawnd s(keeper_args(dir, db, {"--wal-max-bytes", "65536"}));
  CHECK(wait_until([&] { return file_bytes(db + "-wal") == 0; }, 5s));
  CHECK(fs::exists(db + "-wal"));  // truncated, not removed: spawnd's connection still has it open
  CHECK(query_text(db, "SELECT count(*) FROM big") == "300");
  sqlite3_close(other);
  CHECK(s.stop() == 0);
  CHECK(query_text(db, "PRAGMA integrity_check") == "ok");
}

TEST_CASE("a --db in a directory that does not exist stops spawnd at start-up with a message", "[e2e][db]") {
  TempDir dir;
  std::string db = dir.path() + "/no/such/dir/site.db";
  ExitResult e = run_to_exit(keeper_args(dir, db, {}));
  CAPTURE(e.stderr_text);
  REQUIRE(WIFEXITED(e.status));
  CHECK(WEXITSTATUS(e.status) == 1);
  CHECK_THAT(e.stderr_text, Catch::Contains("--db " + db) && Catch::Contains("No such file or directory"));
  CHECK_THAT(e.stderr_text, !Catch::Contains("listening on"));
  CHECK_FALSE(fs::exists(dir.path() + "/no"));
}

TEST_CASE("a --checkpoint-interval that is not a positive number is a usage error", "[e2e][db]") {
  TempDir dir;
  ExitResult e = run_to_exit(keeper_args(dir, dir.path() + "/site.db", {"--checkpoint-interval", "0"}));
  REQUIRE(WIFEXITED(e.status));
  CHECK(WEXITSTATUS(e.status) == 2);
  CHECK_THAT(e.stderr_text, Catch::Contains("--checkpoint-interval"));
}

TEST_CASE("an idle spawnd's keeper backs off to a poll a second, and polls fast again once requests write",
          "[e2e][db]") {
  TempDir dir;
  std::string db = dir.path() + "/site.db";
  constexpr std::int64_t kBound = 256 * 1024;  // a guestbook POST adds ~8-12 KiB of frames
  Spawnd s(keeper_args(dir, db, {"--wal-max-bytes", std::to_string(kBound)}));
  pid_t keeper = 0;
  REQUIRE(wait_until([&] { return (keeper = thread_named(s.pid(), "db-keeper")) != 0; }, 5s));
  // Nothing happens: after a moment at the 5 ms poll the keeper doubles its wait up to a second. At 5 ms it would
  // sleep and wake ~200 times a second.
  std::this_thread::sleep_for(2500ms);
  const long idle_start = voluntary_switches(s.pid(), keeper);
  std::this_thread::sleep_for(1s);
  const long idle_wakeups = voluntary_switches(s.pid(), keeper) - idle_start;
  CAPTURE(idle_wakeups);
  CHECK(idle_start >= 0);
  CHECK(idle_wakeups <= 5);

  // A commit from outside spawnd (no request tells the keeper): the idle poll still sees the WAL grow.
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "PRAGMA wal_autocheckpoint=0; CREATE TABLE outside(x); INSERT INTO outside VALUES (1);",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  CHECK(wait_until([&] { return rows_in_file_alone(dir, db, "outside") == "1"; }, 5s));
  sqlite3_close(other);

  // Idle again, then a burst of writes through the handlers: the first request to a handler brings the 5 ms poll
  // back, and the keeper checkpoints the burst as it runs, under the bound.
  std::this_thread::sleep_for(2500ms);
  const std::string rounds_series = "spawnd_db_checkpoint_rounds_total{site=\"default\"}";
  const double rounds_before = status_sample(s.port(), rounds_series);
  const auto burst_start = std::chrono::steady_clock::now();
  constexpr int kRows = 100;
  for (int i = 1; i <= kRows; ++i) REQUIRE(sign_and_wait(s.port(), i) == 303);
  const auto burst_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - burst_start).count();
  const double burst_rounds = status_sample(s.port(), rounds_series) - rounds_before;
  CAPTURE(burst_ms, burst_rounds);
  // At a poll a second there would be one or two; at 5 ms, burst_ms / 5. A tenth of that leaves room for a slow
  // machine (and sanitizer builds).
  CHECK(burst_rounds >= std::max<double>(10, static_cast<double>(burst_ms) / 50));
  CHECK(wait_until([&] { return rows_in_file_alone(dir, db) == std::to_string(kRows); }, 5s));
  const double wal_max = status_sample(s.port(), "spawnd_db_wal_bytes_max{site=\"default\"}");
  CAPTURE(wal_max);
  CHECK(wal_max > 0);
  CHECK(wal_max <= static_cast<double>(kBound));
  check_clean_end(s);
  CHECK(query_text(db, "SELECT count(*) FROM guestbook") == std::to_string(kRows));
}
