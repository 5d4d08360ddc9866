// tests/unit/test_db.cpp — the SQLite layer (db/database.h): statements, presets applied, transactions, busy
// handling across processes, migrations, the statement cache and the maintenance helpers.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "db/database.h"
#include "pragmas/presets.h"

using spawnd::db::CheckpointMode;
using spawnd::db::ColumnType;
using spawnd::db::Connection;
using spawnd::db::DbError;
using spawnd::db::OpenOptions;
using spawnd::db::RetryPolicy;
using spawnd::db::Statement;
using spawnd::db::Transaction;
using spawnd::db::TxnKind;
using spawnd::pragmas::builtin_preset;
using spawnd::pragmas::parse_preset;
using namespace std::chrono_literals;

namespace {

// A fresh directory under /tmp (mkdtemp), removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/spawnd-db-test-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string pragma_text(Connection& conn, const std::string& name) {
  Statement st = conn.prepare("PRAGMA " + name);
  REQUIRE(st.step());
  return std::string(st.column_text(0));
}

std::int64_t pragma_int(Connection& conn, const std::string& name) {
  Statement st = conn.prepare("PRAGMA " + name);
  REQUIRE(st.step());
  return st.column_int64(0);
}

std::int64_t count_rows(Connection& conn, const std::string& table) {
  Statement st = conn.prepare("SELECT count(*) FROM " + table);
  REQUIRE(st.step());
  return st.column_int64(0);
}

std::vector<std::byte> bytes_0_to_255() {
  std::vector<std::byte> out;
  for (int i = 0; i < 256; ++i) out.push_back(static_cast<std::byte>(i));
  return out;
}

// Runs `fn` and returns the DbError it throws; fails the test if it throws nothing.
template <class F>
DbError db_error_of(F&& fn) {
  try {
    fn();
  } catch (const DbError& e) {
    return e;
  }
  FAIL("expected a DbError");
  throw std::logic_error("unreachable");
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------------
// Statements

TEST_CASE("Statement round-trips NULL, int64, double, text and blob by index", "[unit][db]") {
  TempDir dir;
  Connection conn = Connection::open(dir.file("t.db"), builtin_preset("default"));
  conn.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v ANY) STRICT");

  const std::string text_with_nul("a\0b\xc3\xa9", 5);  // an embedded NUL and UTF-8 survive: lengths are explicit
  const std::vector<std::byte> blob = bytes_0_to_255();
  Statement ins = conn.prepare("INSERT INTO t(id, v) VALUES(?1, ?2)");
  ins.bind(1, 1).bind(2, nullptr).run();
  ins.reset();
  ins.bind(1, 2).bind(2, std::numeric_limits<std::int64_t>::max()).run();
  ins.reset();
  ins.bind(1, 3).bind(2, std::numeric_limits<std::int64_t>::min()).run();
  ins.reset();
  ins.bind(1, 4).bind(2, 3.25).run();
  ins.reset();
  ins.bind(1, 5).bind(2, std::string_view(text_with_nul)).run();
  ins.reset();
  ins.bind(1, 6).bind(2, std::span<const std::byte>(blob)).run();
  ins.reset();
  ins.bind(1, 7).bind(2, std::span<const std::byte>()).run();  // the empty BLOB, not NULL
  ins.reset();
  ins.bind(1, 8).bind(2, std::string_view()).run();  // the empty TEXT, not NULL
  ins.reset();
  ins.bind(1, 9).bind(2, "literal").run();
  CHECK(conn.last_insert_rowid() == 9);
  CHECK(conn.changes() == 1);

  Statement q = conn.prepare("SELECT v FROM t ORDER BY id");
  REQUIRE(q.step());
  CHECK(q.column_type(0) == ColumnType::Null);
  CHECK(q.is_null(0));
  CHECK(q.column_name(0) == "v");
  REQUIRE(q.step());
  CHECK(q.column_type(0) == ColumnType::Integer);
  CHECK(q.column_int64(0) == std::numeric_limits<std::int64_t>::max());
  REQUIRE(q.step());
  CHECK(q.column_int64(0) == std::numeric_limits<std::int64_t>::min());
  REQUIRE(q.step());
  CHECK(q.column_type(0) == ColumnType::Float);
  CHECK(q.column_double(0) == 3.25);
  REQUIRE(q.step());
  CHECK(q.column_type(0) == ColumnType::Text);
  CHECK(q.column_text(0) == text_with_nul);
  REQUIRE(q.step());
  CHECK(q.column_type(0) == ColumnType::Blob);
  auto got = q.column_blob(0);
  CHECK(std::vector<std::byte>(got.begin(), got.end()) == blob);
  REQUIRE(q.step());
  CHECK(q.column_type(0) == ColumnType::Blob);
  CHECK(q.column_blob(0).empty());
  REQUIRE(q.step());
  CHECK(q.column_type(0) == ColumnType::Text);
  CHECK(q.column_text(0).empty());
  REQUIRE(q.step());
  CHECK(q.column_text(0) == "literal");
  CHECK_FALSE(q.step());
}

TEST_CASE("Statement binds by name with :, @ and $ prefixes", "[unit][db]") {
  TempDir dir;
  Connection conn = Connection::open(dir.file("t.db"), builtin_preset("default"));
  conn.exec("CREATE TABLE t(a, b, c)");
  Statement ins = conn.prepare("INSERT INTO t VALUES(:a, @b, $c)");
  CHECK(ins.parameter_count() == 3);
  CHECK(ins.parameter_index("@b") == 2);
  ins.bind(":a", 1).bind("@b", std::string("two")).bind("$c", 3.5).run();

  SECTION("and reads them back with typed column<T>") {
    Statement q = conn.prepare("SELECT a, b, c, NULL FROM t");
    REQUIRE(q.step());
    CHECK(q.column<int>(0) == 1);
    CHECK(q.column<std::string>(1) == "two");
    CHECK(q.column<double>(2) == 3.5);
    CHECK(q.column<std::optional<std::int64_t>>(0) == std::optional<std::int64_t>(1));
    CHECK(q.column<std::optional<std::string>>(3) == std::nullopt);
    CHECK(q.column<bool>(0));
  }
  SECTION("an unknown name throws SQLITE_RANGE naming it and the SQL") {
    DbError e = db_error_of([&] { ins.bind(":nope", 1); });
    CHECK(e.extended_code() == SQLITE_RANGE);
    CHECK_THAT(e.what(), Catch::Contains(":nope") && Catch::Contains("INSERT INTO t VALUES"));
  }
  SECTION("an index out of range throws SQLITE_RANGE") {
    ins.reset();
    CHECK(db_error_of([&] { ins.bind(4, 1); }).extended_code() == SQLITE_RANGE);
  }
  SECTION("bind_all binds in order and optional binds NULL") {
    Statement more = conn.prepare("INSERT INTO t VALUES(?, ?, ?)");
    more.bind_all(7, std::optional<std::string>(), "x").run();
    Statement q = conn.prepare("SELECT a, b IS NULL, c FROM t WHERE a = 7");
    REQUIRE(q.step());
    CHECK(q.column<int>(1) == 1);
    CHECK(q.column_text(2) == "x");
  }
  SECTION("an unsigned value above INT64_MAX is refused, not wrapped") {
    ins.reset();
    CHECK(db_error_of([&] { ins.bind(1, std::numeric_limits<std::uint64_t>::max()); }).extended_code() ==
          SQLITE_RANGE);
  }
}

TEST_CASE("reset() rewinds and clears bindings to NULL", "[unit][db]") {
  TempDir dir;
  Connection conn = Connection::open(dir.file("t.db"), builtin_preset("default"));
  conn.exec("CREATE TABLE t(a)");
  Statement ins = conn.prepare("INSERT INTO t VALUES(?1)");
  ins.bind(1, 42).run();
  ins.reset();
  ins.run();  // no bind after reset: NULL
  Statement q = conn.prepare("SELECT a FROM t ORDER BY rowid");
  REQUIRE(q.step());
  CHECK(q.column_int64(0) == 42);
  REQUIRE(q.step());
  CHECK(q.is_null(0));
}

TEST_CASE("DbError carries the extended result code, SQLite's message and the SQL", "[unit][db]") {
  TempDir dir;
  Connection conn = Connection::open(dir.file("t.db"), builtin_preset("default"));
  conn.exec("CREATE TABLE t(k TEXT PRIMARY KEY, parent TEXT REFERENCES t(k))");
  conn.exec("INSERT INTO t(k) VALUES('a')");

  SECTION("UNIQUE violation: SQLITE_CONSTRAINT_PRIMARYKEY, not just SQLITE_CONSTRAINT") {
    DbError e = db_error_of([&] { conn.prepare("INSERT INTO t(k) VALUES('a')").run(); });
    CHECK(e.extended_code() == SQLITE_CONSTRAINT_PRIMARYKEY);
    CHECK(e.primary_code() == SQLITE_CONSTRAINT);
    CHECK(e.is_constraint());
    CHECK_FALSE(e.is_busy());
    CHECK(e.sql() == "INSERT INTO t(k) VALUES('a')");
    CHECK_THAT(e.message(), Catch::Contains("UNIQUE constraint failed: t.k"));
    CHECK_THAT(e.what(), Catch::Contains("(sqlite code 1555)") && Catch::Contains("in SQL: INSERT INTO t(k)"));
    CHECK(e.code().category().name() == std::string("sqlite"));
  }
  SECTION("foreign_keys=ON from the default preset is enforced") {
    DbError e = db_error_of([&] { conn.exec("INSERT INTO t(k, parent) VALUES('b', 'nope')"); });
    CHECK(e.extended_code() == SQLITE_CONSTRAINT_FOREIGNKEY);
    CHECK(e.sql() == "INSERT INTO t(k, parent) VALUES('b', 'nope')");
  }
  SECTION("a syntax error at prepare") {
    DbError e = db_error_of([&] { (void)conn.prepare("SELEC 1"); });
    CHECK(e.extended_code() == SQLITE_ERROR);
    CHECK(e.sql() == "SELEC 1");
    CHECK_THAT(e.message(), Catch::Contains("syntax error"));
  }
  SECTION("prepare() takes one statement; trailing ';' and comments are fine") {
    CHECK_NOTHROW(conn.prepare("SELECT 1;  -- one\n /* two */ ;"));
    CHECK(db_error_of([&] { (void)conn.prepare("SELECT 1; SELECT 2"); }).extended_code() == SQLITE_MISUSE);
    CHECK(db_error_of([&] { (void)conn.prepare("  -- nothing\n"); }).extended_code() == SQLITE_MISUSE);
  }
  SECTION("exec() names the failing statement of several, after running the ones before it") {
    DbError e = db_error_of([&] { conn.exec("INSERT INTO t(k) VALUES('x'); INSERT INTO t(k) VALUES('a');"); });
    CHECK(e.is_constraint());
    CHECK_THAT(e.sql(), Catch::StartsWith("INSERT INTO t(k) VALUES('a')"));
    CHECK(count_rows(conn, "t") == 2);
  }
}

TEST_CASE("open() of a missing file without create throws SQLITE_CANTOPEN naming the path", "[unit][db]") {
  TempDir dir;
  OpenOptions options;
  options.create = false;
  std::string path = dir.file("absent.db");
  DbError e = db_error_of([&] { (void)Connection::open(path, builtin_preset("default"), options); });
  CHECK(e.primary_code() == SQLITE_CANTOPEN);
  CHECK_THAT(e.what(), Catch::Contains(path));
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("A preset whose PRAGMA SQLite rejects fails open() with the preset's SQL", "[unit][db]") {
  TempDir dir;
  auto bad = parse_preset("-- @per-connection\nPRAGMA busy_timeout = 10;\nPRAGMA cache_size = (SELECT 1);\n", "bad.sql");
  DbError e = db_error_of([&] { (void)Connection::open(dir.file("t.db"), bad); });
  CHECK(e.extended_code() == SQLITE_ERROR);
  CHECK_THAT(e.what(), Catch::Contains("bad.sql") && Catch::Contains("per-connection"));
  CHECK_THAT(e.sql(), Catch::Contains("PRAGMA cache_size = (SELECT 1);"));
}

// ---------------------------------------------------------------------------------------------------------------------
// Presets applied

TEST_CASE("Each preset's PRAGMAs read back from a connection", "[unit][db][pragmas]") {
  struct Expect {
    std::string preset, journal_mode;
    std::int64_t synchronous, busy_timeout, foreign_keys, temp_store, cache_size, mmap_size, wal_autocheckpoint,
        journal_size_limit;
  };
  auto e = GENERATE(values<Expect>({
      {"default", "wal", 1, 5000, 1, 2, -8192, 134217728, 0, 67108864},
      {"durable", "wal", 2, 5000, 1, 2, -8192, 134217728, 0, 67108864},
      {"baseline", "delete", 2, 5000, 0, 0, -2000, 0, 1000, -1},
  }));
  CAPTURE(e.preset);
  TempDir dir;
  std::string path = dir.file("t.db");
  for (int open_no = 1; open_no <= 2; ++open_no) {  // the new file, then the existing one
    CAPTURE(open_no);
    Connection conn = Connection::open(path, builtin_preset(e.preset));
    if (open_no == 1) conn.exec("CREATE TABLE t(x)");
    CHECK(pragma_text(conn, "journal_mode") == e.journal_mode);
    CHECK(pragma_int(conn, "synchronous") == e.synchronous);
    CHECK(conn.busy_timeout() == std::chrono::milliseconds(e.busy_timeout));  // our handler; PRAGMA busy_timeout reads 0
    CHECK(pragma_int(conn, "foreign_keys") == e.foreign_keys);
    CHECK(pragma_int(conn, "temp_store") == e.temp_store);
    CHECK(pragma_int(conn, "cache_size") == e.cache_size);
    CHECK(pragma_int(conn, "mmap_size") == e.mmap_size);
    CHECK(pragma_int(conn, "wal_autocheckpoint") == e.wal_autocheckpoint);
    CHECK(pragma_int(conn, "journal_size_limit") == e.journal_size_limit);
    CHECK(pragma_int(conn, "page_size") == 4096);
    CHECK(pragma_int(conn, "auto_vacuum") == 0);
  }
}

TEST_CASE("OpenOptions::busy_timeout overrides the preset's", "[unit][db]") {
  TempDir dir;
  OpenOptions options;
  options.busy_timeout = 25ms;
  Connection conn = Connection::open(dir.file("t.db"), builtin_preset("default"), options);
  CHECK(conn.busy_timeout() == 25ms);
  conn.set_busy_timeout(40ms);
  CHECK(conn.busy_timeout() == 40ms);
  // Our handler replaces SQLite's, whose timeout is all `PRAGMA busy_timeout` reads back.
  CHECK(pragma_int(conn, "busy_timeout") == 0);
}

TEST_CASE("On-create PRAGMAs run when the file is new, not at later opens", "[unit][db][pragmas]") {
  TempDir dir;
  std::string path = dir.file("t.db");
  // user_version in the on-create block makes a re-run visible: it would reset the version to 7.
  auto marked = parse_preset(
      "-- @on-create\n"
      "PRAGMA page_size = 8192;\n"
      "PRAGMA journal_mode = WAL;\n"
      "PRAGMA user_version = 7;\n"
      "-- @per-connection\n"
      "PRAGMA busy_timeout = 1000;\n",
      "marked");
  {
    Connection conn = Connection::open(path, marked);
    CHECK(pragma_int(conn, "page_size") == 8192);
    CHECK(spawnd::db::user_version(conn) == 7);
    conn.exec("CREATE TABLE t(x); PRAGMA user_version = 9;");
  }
  {
    Connection conn = Connection::open(path, marked);
    CHECK(spawnd::db::user_version(conn) == 9);  // on-create did not run again
    CHECK(pragma_text(conn, "journal_mode") == "wal");
  }
  {
    // Another WAL preset with another page_size: the file keeps the one it was created with.
    Connection conn = Connection::open(path, builtin_preset("default"));
    CHECK(pragma_int(conn, "page_size") == 8192);
    CHECK(spawnd::db::user_version(conn) == 9);
  }
}

TEST_CASE("An existing file in another journal mode is configured by the preset", "[unit][db][pragmas]") {
  TempDir dir;
  std::string path = dir.file("t.db");
  {
    Connection conn = Connection::open(path, builtin_preset("baseline"));
    conn.exec("CREATE TABLE t(x); INSERT INTO t VALUES(1);");
    CHECK(pragma_text(conn, "journal_mode") == "delete");
  }
  {
    Connection conn = Connection::open(path, builtin_preset("default"));  // a rollback-journal file becomes WAL
    CHECK(pragma_text(conn, "journal_mode") == "wal");
    CHECK(count_rows(conn, "t") == 1);
  }
  {
    Connection conn = Connection::open(path, builtin_preset("baseline"));  // and back, for the benchmark's "before"
    CHECK(pragma_text(conn, "journal_mode") == "delete");
  }
}

TEST_CASE("open_from_env reads SPAWND_DB and SPAWND_PRAGMAS", "[unit][db]") {
  TempDir dir;
  std::string path = dir.file("env.db");
  unsetenv("SPAWND_DB");
  unsetenv("SPAWND_PRAGMAS");
  CHECK_THROWS_AS(spawnd::db::open_from_env(), spawnd::Error);

  setenv("SPAWND_DB", path.c_str(), 1);
  {
    Connection conn = spawnd::db::open_from_env();
    CHECK(conn.path() == path);
    CHECK(pragma_int(conn, "synchronous") == 1);  // "default" when SPAWND_PRAGMAS is unset
  }
  setenv("SPAWND_PRAGMAS", "durable", 1);
  {
    Connection conn = spawnd::db::open_from_env();
    CHECK(pragma_int(conn, "synchronous") == 2);
  }
  setenv("SPAWND_PRAGMAS", "/nonexistent/preset.sql", 1);
  CHECK_THROWS_AS(spawnd::db::open_from_env(), spawnd::Error);
  unsetenv("SPAWND_DB");
  unsetenv("SPAWND_PRAGMAS");
}

// ---------------------------------------------------------------------------------------------------------------------
// Transactions

TEST_CASE("Transaction rolls back at scope exit unless committed", "[unit][db]") {
  TempDir dir;
  Connection conn = Connection::open(dir.file("t.db"), builtin_preset("default"));
  conn.exec("CREATE TABLE t(x)");
  {
    Transaction txn(conn);
    conn.exec("INSERT INTO t VALUES(1)");
    CHECK(conn.in_transaction());
  }
  CHECK_FALSE(conn.in_transaction());
  CHECK(count_rows(conn, "t") == 0);
  {
    Transaction txn(conn);
    conn.exec("INSERT INTO t VALUES(2)");
    txn.commit();
  }
  CHECK(count_rows(conn, "t") == 1);

  SECTION("an exception out of with_write_transaction rolls back and propagates") {
    CHECK_THROWS_AS(spawnd::db::with_write_transaction(conn,
                                                       [](Connection& c) {
                                                         c.exec("INSERT INTO t VALUES(3)");
                                                         throw std::runtime_error("handler failed");
                                                       }),
                    std::runtime_error);
    CHECK(count_rows(conn, "t") == 1);
    CHECK_FALSE(conn.in_transaction());
  }
  SECTION("with_write_transaction commits and returns the body's value") {
    std::int64_t id = spawnd::db::with_write_transaction(conn, [](Connection& c) {
      c.exec("INSERT INTO t VALUES(4)");
      return c.last_insert_rowid();
    });
    CHECK(id == 2);
    CHECK(count_rows(conn, "t") == 2);
  }
  SECTION("transactions do not nest") {
    Transaction outer(conn);
    DbError e = db_error_of([&] { Transaction inner(conn, TxnKind::Deferred); });
    CHECK(e.extended_code() == SQLITE_ERROR);
    CHECK(e.sql() == "BEGIN DEFERRED");
  }
  SECTION("explicit rollback() makes the destructor a no-op") {
    Transaction txn(conn);
    conn.exec("INSERT INTO t VALUES(5)");
    txn.rollback();
    CHECK_FALSE(conn.in_transaction());
    conn.exec("INSERT INTO t VALUES(6)");  // autocommit: persists despite txn's destructor below
  }
}

TEST_CASE("A deferred transaction that upgrades to a write fails at once: why writes use BEGIN IMMEDIATE",
          "[unit][db]") {
  TempDir dir;
  std::string path = dir.file("t.db");
  Connection a = Connection::open(path, builtin_preset("default"));
  Connection b = Connection::open(path, builtin_preset("default"));
  a.exec("CREATE TABLE t(x)");

  Transaction read(a, TxnKind::Deferred);
  CHECK(count_rows(a, "t") == 0);     // a now holds a read snapshot
  b.exec("INSERT INTO t VALUES(1)");  // b commits a write after it
  auto start = std::chrono::steady_clock::now();
  DbError e = db_error_of([&] { a.exec("INSERT INTO t VALUES(2)"); });
  auto waited = std::chrono::steady_clock::now() - start;
  CHECK(e.extended_code() == SQLITE_BUSY_SNAPSHOT);
  CHECK(e.is_busy());
  CHECK(waited < 1000ms);  // busy_timeout (5000 ms) does not apply: waiting could never help
}

TEST_CASE("BEGIN IMMEDIATE waits out busy_timeout, then the bounded retries surface is_busy()", "[unit][db]") {
  TempDir dir;
  std::string path = dir.file("t.db");
  Connection holder = Connection::open(path, builtin_preset("default"));
  holder.exec("CREATE TABLE t(x)");
  Transaction lock(holder);  // holds the write lock
  holder.exec("INSERT INTO t VALUES(1)");

  OpenOptions options;
  options.busy_timeout = 20ms;
  Connection other = Connection::open(path, builtin_preset("default"), options);
  RetryPolicy policy;
  policy.max_attempts = 3;
  policy.initial_backoff = 1ms;
  int body_runs = 0;
  auto start = std::chrono::steady_clock::now();
  DbError e = db_error_of([&] {
    spawnd::db::with_write_transaction(
        other, [&](Connection& c) { ++body_runs; c.exec("INSERT INTO t VALUES(2)"); }, policy);
  });
  auto waited = std::chrono::steady_clock::now() - start;
  CHECK(e.is_busy());
  CHECK(e.primary_code() == SQLITE_BUSY);
  CHECK(e.sql() == "BEGIN IMMEDIATE");
  CHECK(body_runs == 0);          // the lock was never obtained, so the body never ran
  CHECK(waited >= 3 * 20ms);      // every one of the 3 tries waited out busy_timeout
  CHECK_FALSE(other.in_transaction());
  // Reads are not blocked by the writer in WAL mode.
  CHECK(count_rows(other, "t") == 0);
}

TEST_CASE("A write retried while another connection holds the lock succeeds once it is released", "[unit][db]") {
  TempDir dir;
  std::string path = dir.file("t.db");
  Connection holder = Connection::open(path, builtin_preset("default"));
  holder.exec("CREATE TABLE t(x)");
  auto lock = std::make_unique<Transaction>(holder);

  std::atomic<bool> ok{false};
  std::string failure;
  int body_runs = 0;
  std::thread writer([&] {
    try {
      OpenOptions options;
      options.busy_timeout = 10ms;
      Connection conn = Connection::open(path, builtin_preset("default"), options);  // opened on its own thread
      RetryPolicy policy;
      policy.max_attempts = 100;
      policy.initial_backoff = 1ms;
      policy.max_backoff = 5ms;
      spawnd::db::with_write_transaction(
          conn, [&](Connection& c) { ++body_runs; c.exec("INSERT INTO t VALUES(1)"); }, policy);
      ok = true;
    } catch (const std::exception& e) {
      failure = e.what();
    }
  });
  std::this_thread::sleep_for(100ms);
  lock->commit();
  writer.join();
  CHECK(failure.empty());
  CHECK(ok);
  CHECK(body_runs == 1);
  CHECK(count_rows(holder, "t") == 1);
}

TEST_CASE("8 processes x 500 BEGIN IMMEDIATE inserts on one new file: every row lands, no error surfaces",
          "[unit][db]") {
  constexpr int kProcesses = 8;
  constexpr int kInsertsEach = 500;
  TempDir dir;
  const std::string path = dir.file("contended.db");
  static constexpr std::array<std::string_view, 1> kSchema = {
      "CREATE TABLE rows(id INTEGER PRIMARY KEY, child INTEGER NOT NULL, n INTEGER NOT NULL)"};

  // A start gate: every child blocks reading this pipe until the parent closes its write end after the last fork,
  // so that all 8 run at once instead of each finishing before the next has started.
  int gate[2];
  REQUIRE(pipe2(gate, O_CLOEXEC) == 0);
  std::vector<pid_t> children;
  for (int child = 0; child < kProcesses; ++child) {
    // fork() before any connection exists in this process: each child opens its own. The file does not exist yet,
    // so the children also race to create it, apply the on-create PRAGMAs and migrate it.
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(gate[1]);
      char byte = 0;
      while (read(gate[0], &byte, 1) < 0 && errno == EINTR) {
      }
      close(gate[0]);
      int status = 0;
      try {
        Connection conn = Connection::open(path, builtin_preset("default"));
        spawnd::db::migrate(conn, kSchema);
        for (int n = 0; n < kInsertsEach; ++n) {
          spawnd::db::with_write_transaction(conn, [&](Connection& c) {
            c.cached("INSERT INTO rows(child, n) VALUES(?1, ?2)")->bind(1, child).bind(2, n).run();
          });
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", child, e.what());
        status = 1;
      }
      _exit(status);  // not exit(): no Catch2 teardown or atexit handlers in the child
    }
    children.push_back(pid);
  }
  close(gate[0]);
  close(gate[1]);  // opens the gate: every child's read() returns 0
  int failed_children = 0;
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed_children;
  }
  CHECK(failed_children == 0);

  Connection conn = Connection::open(path, builtin_preset("default"));
  CHECK(count_rows(conn, "rows") == kProcesses * kInsertsEach);
  Statement per_child = conn.prepare("SELECT count(*), count(DISTINCT n) FROM rows GROUP BY child ORDER BY child");
  int groups = 0;
  while (per_child.step()) {
    ++groups;
    CHECK(per_child.column_int64(0) == kInsertsEach);
    CHECK(per_child.column_int64(1) == kInsertsEach);
  }
  CHECK(groups == kProcesses);
  CHECK(spawnd::db::user_version(conn) == 1);  // the schema step ran once among the 8 racers
  CHECK(pragma_text(conn, "journal_mode") == "wal");
  CHECK(spawnd::db::integrity_check(conn) == "ok");
}

// ---------------------------------------------------------------------------------------------------------------------
// Migrations

TEST_CASE("migrate applies each step once and records user_version", "[unit][db]") {
  TempDir dir;
  std::string path = dir.file("t.db");
  std::vector<std::string_view> steps = {
      "CREATE TABLE a(x)",
      "CREATE TABLE b(y); INSERT INTO a VALUES(1);",
  };
  Connection conn = Connection::open(path, builtin_preset("default"));
  CHECK(spawnd::db::user_version(conn) == 0);
  CHECK(spawnd::db::migrate(conn, steps) == 2);
  CHECK(spawnd::db::user_version(conn) == 2);
  CHECK(count_rows(conn, "a") == 1);

  SECTION("a second run is a no-op") {
    CHECK(spawnd::db::migrate(conn, steps) == 0);
    CHECK(count_rows(conn, "a") == 1);
    Connection again = Connection::open(path, builtin_preset("default"));
    CHECK(spawnd::db::migrate(again, steps) == 0);
  }
  SECTION("a new step applies only that step") {
    steps.push_back("ALTER TABLE b ADD COLUMN z");
    CHECK(spawnd::db::migrate(conn, steps) == 1);
    CHECK(spawnd::db::user_version(conn) == 3);
  }
  SECTION("a failing step is rolled back alone, and the error names it") {
    steps.push_back("CREATE TABLE c(z); INSERT INTO nowhere VALUES(1);");
    DbError e = db_error_of([&] { spawnd::db::migrate(conn, steps); });
    CHECK_THAT(e.message(), Catch::Contains("no such table: nowhere"));
    CHECK(spawnd::db::user_version(conn) == 2);
    CHECK(db_error_of([&] { (void)count_rows(conn, "c"); }).extended_code() == SQLITE_ERROR);  // c rolled back
  }
  SECTION("a file from a newer program (more steps than we know) is refused") {
    std::vector<std::string_view> fewer = {"CREATE TABLE a(x)"};
    DbError e = db_error_of([&] { spawnd::db::migrate(conn, fewer); });
    CHECK_THAT(e.message(), Catch::Contains("newer"));
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Statement cache

TEST_CASE("cached() reuses one prepared statement, reset and cleared on each reuse", "[unit][db]") {
  TempDir dir;
  Connection conn = Connection::open(dir.file("t.db"), builtin_preset("default"));
  conn.exec("CREATE TABLE t(a)");
  const char* sql = "INSERT INTO t VALUES(?1)";
  sqlite3_stmt* first = nullptr;
  {
    auto st = conn.cached(sql);
    first = st->handle();
    st->bind(1, 5).run();
  }
  {
    auto st = conn.cached(sql);
    CHECK(st->handle() == first);  // the same compiled statement
    st->run();                     // bindings were cleared: inserts NULL
  }
  CHECK(conn.cache_size() == 1);
  Statement q = conn.prepare("SELECT count(*), count(a) FROM t");
  REQUIRE(q.step());
  CHECK(q.column_int64(0) == 2);
  CHECK(q.column_int64(1) == 1);

  SECTION("a borrowed SELECT is reset when the lease dies, releasing its read") {
    sqlite3_stmt* handle = nullptr;
    {
      auto sel = conn.cached("SELECT a FROM t");
      REQUIRE(sel->step());  // mid-result
      handle = sel->handle();
      CHECK(sqlite3_stmt_busy(handle) != 0);
    }
    CHECK(sqlite3_stmt_busy(handle) == 0);
  }
  SECTION("nested use of the same SQL gets a separate statement") {
    auto outer = conn.cached("SELECT a FROM t");
    auto inner = conn.cached("SELECT a FROM t");
    CHECK(outer->handle() != inner->handle());
    REQUIRE(outer->step());
    REQUIRE(inner->step());
    CHECK(conn.cache_size() == 2);
  }
  SECTION("clear_cache() drops unborrowed statements") {
    conn.clear_cache();
    CHECK(conn.cache_size() == 0);
  }
  SECTION("a moved-to lease still returns the statement") {
    auto a = conn.cached(sql);
    auto b = std::move(a);
    b->bind(1, 1);
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Maintenance helpers

TEST_CASE("integrity_check returns ok on a healthy file", "[unit][db]") {
  TempDir dir;
  Connection conn = Connection::open(dir.file("t.db"), builtin_preset("default"));
  conn.exec("CREATE TABLE t(x UNIQUE); INSERT INTO t VALUES(1), (2);");
  CHECK(spawnd::db::integrity_check(conn) == "ok");
  CHECK(spawnd::db::integrity_check(conn, true) == "ok");
}

TEST_CASE("wal_checkpoint reports WAL frames, and -1 outside WAL mode", "[unit][db]") {
  TempDir dir;
  {
    Connection conn = Connection::open(dir.file("wal.db"), builtin_preset("default"));
    conn.exec("CREATE TABLE t(x); INSERT INTO t VALUES(randomblob(10000));");
    auto r = spawnd::db::wal_checkpoint(conn, CheckpointMode::Passive);
    CHECK_FALSE(r.busy);
    CHECK(r.log_frames > 0);
    CHECK(r.checkpointed_frames == r.log_frames);
    auto t = spawnd::db::wal_checkpoint(conn, CheckpointMode::Truncate);
    CHECK_FALSE(t.busy);
    CHECK(t.log_frames == 0);
    CHECK(std::filesystem::file_size(dir.file("wal.db-wal")) == 0);
  }
  {
    Connection conn = Connection::open(dir.file("delete.db"), builtin_preset("baseline"));
    conn.exec("CREATE TABLE t(x)");
    auto r = spawnd::db::wal_checkpoint(conn);
    CHECK_FALSE(r.busy);
    CHECK(r.log_frames == -1);
    CHECK(r.checkpointed_frames == -1);
  }
}

TEST_CASE("wal_checkpoint(Full) reports busy, without throwing, while a writer holds the lock", "[unit][db]") {
  TempDir dir;
  std::string path = dir.file("t.db");
  Connection writer = Connection::open(path, builtin_preset("default"));
  writer.exec("CREATE TABLE t(x)");
  Transaction txn(writer);
  writer.exec("INSERT INTO t VALUES(1)");
  OpenOptions options;
  options.busy_timeout = 0ms;
  Connection checkpointer = Connection::open(path, builtin_preset("default"), options);
  auto r = spawnd::db::wal_checkpoint(checkpointer, CheckpointMode::Full);
  CHECK(r.busy);
}

// ---------------------------------------------------------------------------------------------------------------------
// Busy handler and the writers' WAL bound

TEST_CASE("A writer waiting for the lock gets it within a few ms of its release, not SQLite's 100 ms steps",
          "[unit][db]") {
  TempDir dir;
  std::string path = dir.file("t.db");
  Connection holder = Connection::open(path, builtin_preset("default"));
  holder.exec("CREATE TABLE t(x)");
  auto lock = std::make_unique<Transaction>(holder);
  std::atomic<std::int64_t> acquired_ns{0};
  std::thread writer([&] {
    Connection conn = Connection::open(path, builtin_preset("default"));  // the preset's busy_timeout: 5000 ms
    CHECK(conn.busy_timeout() == 5000ms);
    spawnd::db::with_write_transaction(conn, [](Connection& c) { c.exec("INSERT INTO t VALUES(1)"); });
    acquired_ns = std::chrono::steady_clock::now().time_since_epoch().count();
  });
  // Long enough that SQLite's own handler would be sleeping 100 ms at a time by now.
  std::this_thread::sleep_for(300ms);
  lock->commit();
  const std::int64_t released_ns = std::chrono::steady_clock::now().time_since_epoch().count();
  writer.join();
  const auto late = std::chrono::nanoseconds(acquired_ns - released_ns);
  CAPTURE(late.count());
  CHECK(late < 20ms);  // ours retries at most 2 ms apart; the rest is scheduling on a loaded machine
  CHECK(count_rows(holder, "t") == 1);
}

TEST_CASE("set_wal_max_bytes: commits restart the WAL themselves, so the -wal never outgrows the bound",
          "[unit][db]") {
  TempDir dir;
  std::string path = dir.file("t.db");
  constexpr std::int64_t kBound = 256 * 1024;
  Connection keeper = Connection::open(path, builtin_preset("default"));  // holds the WAL open, checkpoints nothing
  keeper.exec("CREATE TABLE t(x)");
  const bool is_bounded = GENERATE(true, false);
  CAPTURE(is_bounded);
  OpenOptions options;
  options.wal_max_bytes = is_bounded ? kBound : 0;
  Connection writer = Connection::open(path, builtin_preset("default"), options);
  CHECK(writer.wal_max_bytes() == (is_bounded ? kBound : 0));
  std::int64_t largest = 0;
  for (int i = 0; i < 400; ++i) {
    spawnd::db::with_write_transaction(writer, [](Connection& c) { c.exec("INSERT INTO t VALUES(randomblob(3000))"); });
    largest = std::max<std::int64_t>(largest, static_cast<std::int64_t>(std::filesystem::file_size(path + "-wal")));
  }
  CAPTURE(largest);
  CHECK(count_rows(keeper, "t") == 400);
  if (is_bounded) {
    CHECK(largest <= kBound);
    CHECK(writer.writer_checkpoints().done >= 1);
    CHECK(writer.writer_checkpoints().done == writer.writer_checkpoints().tried);
  } else {
    CHECK(largest > 3 * kBound);  // 400 commits of ~2 pages, nobody checkpointing: what the bound prevents
    CHECK(writer.writer_checkpoints().tried == 0);
  }
  CHECK(spawnd::db::integrity_check(keeper) == "ok");
}

TEST_CASE("set_wal_max_bytes: a reader that outlasts busy_timeout makes the writer's checkpoint give up, and the "
          "commit stands", "[unit][db]") {
  TempDir dir;
  std::string path = dir.file("t.db");
  Connection keeper = Connection::open(path, builtin_preset("default"));
  keeper.exec("CREATE TABLE t(x)");
  OpenOptions options;
  options.wal_max_bytes = 64 * 1024;
  options.busy_timeout = 50ms;
  Connection writer = Connection::open(path, builtin_preset("default"), options);
  // A reader holds its snapshot: RESTART cannot finish while it lasts.
  Connection reader = Connection::open(path, builtin_preset("default"));
  Transaction snapshot(reader, TxnKind::Deferred);
  CHECK(count_rows(reader, "t") == 0);
  auto start = std::chrono::steady_clock::now();
  // One commit of ~20 pages (~80 KiB of WAL): past 3/4 of the bound at once. No throw.
  spawnd::db::with_write_transaction(writer, [](Connection& c) {
    for (int i = 0; i < 20; ++i) c.exec("INSERT INTO t VALUES(randomblob(3000))");
  });
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= 50ms);                                      // it waited for the reader, as long as busy_timeout
  CHECK(took < 2s);                                         // and then gave up
  CHECK(writer.writer_checkpoints().tried == 1);
  CHECK(writer.writer_checkpoints().done == 0);             // the checkpoint did not finish...
  snapshot.commit();
  CHECK(count_rows(keeper, "t") == 20);                     // ... but the rows are committed, once, not retried
}

TEST_CASE("open_from_env reads the WAL bound from SPAWND_WAL_MAX_BYTES, junk means none", "[unit][db]") {
  struct Case {
    const char* value;
    std::int64_t bytes;
  } cases[] = {{"1048576", 1048576}, {"", 0}, {"12k", 0}, {"-5", 0}, {"99999999999999999999", 0}};
  for (const Case& c : cases) {
    CAPTURE(c.value);
    ::setenv("SPAWND_WAL_MAX_BYTES", c.value, 1);
    CHECK(spawnd::db::wal_max_bytes_from_env() == c.bytes);
  }
  TempDir dir;
  ::setenv("SPAWND_DB", dir.file("t.db").c_str(), 1);
  ::setenv("SPAWND_WAL_MAX_BYTES", "1048576", 1);
  CHECK(spawnd::db::open_from_env().wal_max_bytes() == 1048576);
  ::unsetenv("SPAWND_WAL_MAX_BYTES");
  CHECK(spawnd::db::open_from_env().wal_max_bytes() == 0);
  ::unsetenv("SPAWND_DB");
}
