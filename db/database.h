// db/database.h — the SQLite layer used by handlers: Connection, Statement, Transaction, retrying writes, migrations.
//
// A handler opens one Connection per request in CGI and fork-server mode (a fresh process each time), so opening is
// kept cheap: the per-connection PRAGMAs of the preset run in ONE sqlite3_exec, and the on-create PRAGMAs (WAL,
// page_size, auto_vacuum, which persist in the file) run only when the file is new or not yet configured. Nothing is
// prepared until the request asks for it. Long-lived modes (FastCGI, in-process) keep their Connection and reuse
// prepared statements through Connection::cached().
//
// Writes go through `BEGIN IMMEDIATE` (TxnKind::Immediate, with_write_transaction): the write lock is taken up front,
// where busy_timeout applies, instead of at the first write of a deferred transaction, where an upgrade fails with
// SQLITE_BUSY at once. A SQLITE_BUSY that survives busy_timeout is retried a bounded number of times with jittered
// back-off by with_write_transaction(), then surfaces as DbError with is_busy() (the SDK answers 503).
//
// Errors: every failure throws spawnd::db::DbError (db/db_error.h) carrying the extended result code, SQLite's message
// and the SQL. Destructors never throw.
//
// Threads: connections are opened with SQLITE_OPEN_NOMUTEX. A Connection and its Statements belong to one thread at
// a time; use one Connection per worker thread.
//
// fork(): NEVER use a connection across fork(). A forked child must not touch (or even close through SQLite) a
// connection its parent opened, since POSIX advisory locks are per process and the child would corrupt the parent's
// lock state; the child opens its own Connection. (SQLite opens its files O_CLOEXEC, so exec'd children are safe.)
//
// Example:
//   auto conn = spawnd::db::open_from_env();                     // SPAWND_DB, SPAWND_PRAGMAS
//   spawnd::db::migrate(conn, kSchemaSteps);
//   spawnd::db::with_write_transaction(conn, [&](spawnd::db::Connection& c) {
//     c.prepare("INSERT INTO guestbook(name, message) VALUES(:name, :msg)")
//         .bind(":name", name).bind(":msg", msg).run();
//   });
//   auto q = conn.prepare("SELECT id, name FROM guestbook ORDER BY id DESC LIMIT ?1");
//   q.bind(1, 20);
//   while (q.step()) use(q.column<std::int64_t>(0), q.column_text(1));
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "db/db_error.h"
#include "pragmas/presets.h"

struct sqlite3;
struct sqlite3_stmt;

namespace spawnd::db {

class Connection;

// The storage class of a column value in the current row; the values are SQLite's SQLITE_INTEGER .. SQLITE_NULL.
enum class ColumnType { Integer = 1, Float = 2, Text = 3, Blob = 4, Null = 5 };

// ---------------------------------------------------------------------------------------------------------------------
// Statement: one prepared statement. Move-only; finalized by the destructor. Must not outlive its Connection.
//
// Parameters are numbered from 1 (`?1`, or the order of `?`) or named with their prefix (":name", "@name", "$name").
// Binding copies text and blobs (SQLITE_TRANSIENT), so the arguments may die right after bind().
// To run a statement again, call reset(): it rewinds it (sqlite3_reset) AND clears all bindings to NULL.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();  // sqlite3_finalize; never throws

  // --- binding. Each returns *this so calls chain. Throws DbError (SQLITE_RANGE) if `index` is out of range or
  // `name` is not a parameter of this statement, or DbError (e.g. SQLITE_MISUSE) if the statement is mid-step
  // (call reset() first).
  Statement& bind(int index, std::nullptr_t);
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view text);           // bound as TEXT (UTF-8), copied
  Statement& bind(int index, const char* text);                // NUL-terminated TEXT; nullptr binds NULL
  Statement& bind(int index, std::span<const std::byte> blob); // bound as BLOB, copied; an empty span is a 0-byte BLOB
  // Any integer type (bool, int, unsigned, size_t, ...) binds as INTEGER. An unsigned value above INT64_MAX throws
  // DbError (SQLITE_RANGE) rather than wrapping.
  template <std::integral T>
  Statement& bind(int index, T value) { return bind_integer(index, value); }
  template <std::floating_point T>
  Statement& bind(int index, T value) { return bind(index, static_cast<double>(value)); }
  // std::nullopt binds NULL, otherwise the contained value.
  template <class T>
  Statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind(index, nullptr);
  }
  // By name: `name` includes its prefix, e.g. ":id". Same types as by index.
  template <class T>
  Statement& bind(std::string_view name, T&& value) { return bind(parameter_index(name), std::forward<T>(value)); }
  // Binds `values` to parameters 1..N in order. Returns *this.
  template <class... Ts>
  Statement& bind_all(Ts&&... values) {
    int index = 0;
    (bind(++index, std::forward<Ts>(values)), ...);
    return *this;
  }
  // The 1-based index of the parameter called `name` (with its prefix). Throws DbError (SQLITE_RANGE) if none.
  [[nodiscard]] int parameter_index(std::string_view name) const;
  // The number of parameters (the largest index).
  [[nodiscard]] int parameter_count() const noexcept;

  // --- running.
  // Advances to the next row. Returns true if a row is available (read it with column*), false when the statement
  // has finished (SQLITE_DONE). Throws DbError on any error; SQLITE_BUSY here (outside BEGIN IMMEDIATE) comes after
  // busy_timeout has expired, or at once when a deferred read transaction tries to upgrade to a write. On an error
  // the statement is rewound (bindings kept), so it holds no lock and can be stepped again.
  bool step();
  // Steps to completion, ignoring any rows (for INSERT/UPDATE/DELETE/DDL). Throws as step().
  void run();
  // Rewinds the statement and clears all bindings to NULL, ready to run again. It also ends the statement's read of
  // the database (an un-reset SELECT keeps its snapshot, which holds back WAL checkpoints). Never throws.
  void reset() noexcept;

  // --- reading the current row (valid after step() returned true). Columns are numbered from 0. Out-of-range columns
  // read as NULL (SQLite's behaviour). Conversions follow SQLite's rules (e.g. TEXT "12" as int64 is 12, NULL is 0/"").
  [[nodiscard]] int column_count() const noexcept;
  [[nodiscard]] std::string_view column_name(int col) const noexcept;
  [[nodiscard]] ColumnType column_type(int col) const noexcept;
  [[nodiscard]] bool is_null(int col) const noexcept { return column_type(col) == ColumnType::Null; }
  [[nodiscard]] std::int64_t column_int64(int col) const noexcept;
  [[nodiscard]] double column_double(int col) const noexcept;
  // The value as UTF-8 text. The view is valid until the next step(), reset() or destruction; copy it to keep it.
  [[nodiscard]] std::string_view column_text(int col) const noexcept;
  // The value as bytes. Same validity as column_text(). NULL and the empty BLOB are an empty span.
  [[nodiscard]] std::span<const std::byte> column_blob(int col) const noexcept;
  // Typed access: T is an integer type, a floating-point type, std::string, std::string_view (valid as column_text),
  // std::vector<std::byte>, std::span<const std::byte> (valid as column_blob), or std::optional of one of these
  // (std::nullopt for NULL). Integer types narrower than int64 are converted with static_cast (no range check).
  template <class T>
  [[nodiscard]] T column(int col) const;

  // The SQL text this statement was prepared from.
  [[nodiscard]] std::string_view sql() const noexcept;
  // The underlying handle, for sqlite3_* calls this wrapper does not cover. Still owned by the Statement.
  [[nodiscard]] sqlite3_stmt* handle() const noexcept { return stmt_.get(); }

 private:
  friend class Connection;
  struct Finalize {
    void operator()(sqlite3_stmt* stmt) const noexcept;
  };
  Statement(sqlite3* db, sqlite3_stmt* stmt) noexcept : db_(db), stmt_(stmt) {}

  template <class T>
  Statement& bind_integer(int index, T value) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
      if (value > static_cast<T>(INT64_MAX)) throw_out_of_range(index);
    }
    return bind(index, static_cast<std::int64_t>(value));
  }
  [[noreturn]] void throw_out_of_range(int index) const;
  [[noreturn]] void throw_error(int rc) const;

  sqlite3* db_ = nullptr;  // not owned: the Connection's handle
  std::unique_ptr<sqlite3_stmt, Finalize> stmt_;
};

// ---------------------------------------------------------------------------------------------------------------------
// CachedStatement: a statement borrowed from Connection::cached(). Use it like a Statement* (`->`, `*`). When it goes
// out of scope the statement is reset (ending its read, keeping its compiled program) and returned to the cache.
// Move-only. Must not outlive its Connection.
class CachedStatement {
 public:
  CachedStatement(CachedStatement&& other) noexcept;
  CachedStatement& operator=(CachedStatement&& other) noexcept;
  CachedStatement(const CachedStatement&) = delete;
  CachedStatement& operator=(const CachedStatement&) = delete;
  ~CachedStatement();  // reset() + return to the cache; never throws

  Statement& operator*() const noexcept { return *stmt_; }
  Statement* operator->() const noexcept { return stmt_; }

 private:
  friend class Connection;
  CachedStatement(Statement* stmt, bool* in_use) noexcept : stmt_(stmt), in_use_(in_use) {}
  explicit CachedStatement(Statement owned);

  Statement* stmt_ = nullptr;
  bool* in_use_ = nullptr;                // the cache entry's flag, or nullptr when the statement is owned
  std::unique_ptr<Statement> owned_;      // set when the cache could not lend one (same SQL already borrowed, or full)
};

// How Connection::open treats the file.
struct OpenOptions {
  // Create the file if it does not exist (SQLITE_OPEN_CREATE). If false, a missing file throws DbError
  // (SQLITE_CANTOPEN).
  bool create = true;
  // Open read-only (SQLITE_OPEN_READONLY). The on-create PRAGMAs are then never run; a file that needs them is
  // used as it is.
  bool read_only = false;
  // Overrides the preset's busy_timeout after its per-connection PRAGMAs ran (sqlite3_busy_timeout). Milliseconds;
  // 0 disables waiting (SQLITE_BUSY at once).
  std::optional<std::chrono::milliseconds> busy_timeout;
  // The WAL bound this connection's writes help to keep (set_wal_max_bytes), in bytes; 0: none. open_from_env
  // takes it from SPAWND_WAL_MAX_BYTES, which spawnd passes to its handlers (--wal-max-bytes).
  std::int64_t wal_max_bytes = 0;
};

// ---------------------------------------------------------------------------------------------------------------------
// Connection: one sqlite3 connection. Move-only; the destructor finalizes cached statements, then closes
// (sqlite3_close_v2). Must not be used across fork() (see the header comment) or by two threads at once.
class Connection {
 public:
  // Opens (creating if allowed) the database at `path` and applies `preset`:
  //  1. sqlite3_open_v2(READWRITE|CREATE|NOMUTEX|EXRESCODE);
  //  2. ONE sqlite3_exec of the preset's per-connection PRAGMAs followed by the query form `PRAGMA journal_mode;`
  //     (plus `PRAGMA page_count;` for non-WAL presets), read in the exec callback; then options.busy_timeout, if
  //     set, overrides the preset's;
  //  3. the on-create PRAGMAs, only if the file is not yet configured: it is empty (page_count 0), or the preset sets
  //     a journal_mode the file is not in. So an existing WAL file opened with a WAL preset costs one sqlite3_exec and
  //     prepares nothing else. If two processes race to create the same file, both may run the on-create PRAGMAs;
  //     that is harmless (they are idempotent, and page_size/auto_vacuum are no-ops once the file has pages), and a
  //     SQLITE_BUSY from switching to WAL is retried as in with_write_transaction.
  // Read-only connections skip step 3 and the probe. Measured on this machine with an existing WAL file that another
  // connection keeps open: ~75 us in a warm process, of which ~50 us is the first read of the file (header, schema,
  // -wal and -shm), which the request's first statement would pay anyway.
  // Throws DbError if the file cannot be opened (SQLITE_CANTOPEN, with the path in the message), a PRAGMA fails, or
  // the on-create journal_mode did not take (e.g. WAL asked for but the file stayed in another mode). Some
  // per-connection PRAGMAs (synchronous, cache_size) read the file's header, so open() can also throw is_busy() when
  // that read waits out busy_timeout: with a rollback-journal file (baseline) under steady writes, where readers
  // starve; with WAL, practically only while another process runs WAL recovery. Callers treat it like any is_busy().
  [[nodiscard]] static Connection open(const std::string& path, const pragmas::Preset& preset,
                                       const OpenOptions& options = {});

  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Runs `sql`, which may hold several statements separated by ';', stepping each to completion and discarding rows.
  // Throws DbError naming the statement that failed; statements before it have run.
  void exec(std::string_view sql);

  // Prepares ONE statement (a trailing ';', whitespace and comments are allowed). Throws DbError for a syntax error,
  // an unknown table/column (the message says which), empty SQL, or more than one statement (SQLITE_MISUSE).
  [[nodiscard]] Statement prepare(std::string_view sql);

  // Returns a prepared statement for `sql` from this connection's cache (keyed by the exact SQL text), preparing and
  // caching it on first use (with SQLITE_PREPARE_PERSISTENT). The statement comes reset with bindings cleared, and is
  // reset and returned when the CachedStatement dies. If the same SQL is already borrowed (nesting), or the cache
  // holds kMaxCachedStatements entries, a fresh uncached statement is returned instead, so it is always safe to call.
  // Throws as prepare(). Meant for long-lived modes (FastCGI, in-process); in CGI mode plain prepare() is as good.
  [[nodiscard]] CachedStatement cached(std::string_view sql);
  static constexpr std::size_t kMaxCachedStatements = 64;
  // Finalizes every cached statement that is not borrowed. Never throws.
  void clear_cache() noexcept;
  // The number of statements in the cache.
  [[nodiscard]] std::size_t cache_size() const noexcept { return cache_.size(); }

  // The rowid of the last successful INSERT on this connection (sqlite3_last_insert_rowid), 0 if none.
  [[nodiscard]] std::int64_t last_insert_rowid() const noexcept;
  // Rows changed by the last INSERT/UPDATE/DELETE on this connection (sqlite3_changes64).
  [[nodiscard]] std::int64_t changes() const noexcept;
  // True while a transaction is open on this connection (not in autocommit mode).
  [[nodiscard]] bool in_transaction() const noexcept;
  // Sets how long a lock wait may last before SQLITE_BUSY. 0 disables waiting. Never throws. Unlike SQLite's own
  // sqlite3_busy_timeout handler, which sleeps 1, 2, 5, 10, ... up to 100 ms between tries (so a writer that waited
  // behind one 20 ms checkpoint wakes up to 100 ms late), ours retries after 100 us, doubling to at most 2 ms: a
  // waiter gets the lock within ~2 ms of its release. open() installs it with the preset's busy_timeout.
  void set_busy_timeout(std::chrono::milliseconds timeout) noexcept;
  [[nodiscard]] std::chrono::milliseconds busy_timeout() const noexcept;

  // Writer backpressure for a bounded WAL (0 turns it off; negative counts as 0). With a bound B in bytes, every
  // commit of this connection that leaves the WAL at kWriterCheckpointShare of B or more (WAL bytes = the 32-byte
  // header + frames x (page size + 24)) runs a RESTART checkpoint itself before the commit returns to the caller
  // (sqlite3_wal_hook): it copies the remaining frames into the database and waits for readers, so that the next
  // writer starts the WAL again from its beginning instead of growing the file. While another connection's
  // checkpoint holds the checkpoint lock (SQLITE_BUSY at once, without the busy handler), it retries every 200 us.
  // It gives up after busy_timeout; the commit has happened whatever the checkpoint does, so nothing is reported as
  // an error (the counter below says how often it ran). A normal site never gets there: the front end's keeper
  // (server/db_keeper.h) checkpoints long before; this is the backstop that makes the bound hard when the keeper
  // falls behind (a slow fsync, a busy round). It replaces SQLite's wal_autocheckpoint on this connection (both use
  // the one WAL hook), and only makes sense in WAL mode. Needs the page size, so it reads PRAGMA page_size once.
  void set_wal_max_bytes(std::int64_t bytes);
  [[nodiscard]] std::int64_t wal_max_bytes() const noexcept;
  static constexpr double kWriterCheckpointShare = 0.75;
  // Checkpoints run by this connection's commits under set_wal_max_bytes, and how many of them finished.
  struct WriterCheckpoints {
    std::uint64_t tried = 0;
    std::uint64_t done = 0;
  };
  [[nodiscard]] WriterCheckpoints writer_checkpoints() const noexcept;

  // The path given to open().
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  // The underlying handle, for sqlite3_* calls this wrapper does not cover. Still owned by the Connection.
  [[nodiscard]] sqlite3* handle() const noexcept { return db_.get(); }

 private:
  struct CloseV2 {
    void operator()(sqlite3* db) const noexcept;
  };
  struct CacheEntry {
    Statement stmt;
    bool in_use = false;
  };
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  Connection(std::unique_ptr<sqlite3, CloseV2> db, std::string path) noexcept;
  Statement prepare_with_flags(std::string_view sql, unsigned flags);

  struct Hooks;  // what the busy handler and the WAL hook read: heap-held, so it stays put when the Connection moves
  struct HooksDelete {
    void operator()(Hooks* hooks) const noexcept;
  };
  // Declared before db_ so it is destroyed after it: SQLite may call the hooks until the handle closes.
  std::unique_ptr<Hooks, HooksDelete> hooks_;
  // Declared before cache_ so it is destroyed after it: statements are finalized before the connection closes.
  std::unique_ptr<sqlite3, CloseV2> db_;
  std::unordered_map<std::string, CacheEntry, StringHash, std::equal_to<>> cache_;
  std::string path_;
};

// Opens the database named by the environment, the way handlers do: SPAWND_DB is the path (required), SPAWND_PRAGMAS
// a built-in preset name or a preset file path (optional, "default" if unset or empty), SPAWND_WAL_MAX_BYTES the WAL
// bound for options.wal_max_bytes when the caller left it 0 (optional; see wal_max_bytes_from_env). Throws spawnd::Error (EINVAL)
// if SPAWND_DB is unset or empty, spawnd::Error as pragmas::find_preset() for a bad SPAWND_PRAGMAS, and DbError as
// Connection::open.
[[nodiscard]] Connection open_from_env(const OpenOptions& options = {});
// SPAWND_WAL_MAX_BYTES as a byte count: 0 if unset, empty, not a whole decimal number, or negative.
[[nodiscard]] std::int64_t wal_max_bytes_from_env() noexcept;

// ---------------------------------------------------------------------------------------------------------------------
// Transaction: BEGIN on construction; ROLLBACK on destruction unless commit() succeeded. Not copyable or movable.
enum class TxnKind {
  Deferred,   // BEGIN DEFERRED: takes locks lazily. For reads: a consistent snapshot across several statements.
              // Do NOT write in one: the upgrade to a write fails with SQLITE_BUSY at once, busy_timeout or not.
  Immediate,  // BEGIN IMMEDIATE: takes the write lock now, waiting up to busy_timeout. For every write.
};

class Transaction {
 public:
  // Issues BEGIN DEFERRED or BEGIN IMMEDIATE. Throws DbError: is_busy() if the write lock was not obtained within
  // busy_timeout; SQLITE_ERROR if a transaction is already open on `conn` (transactions do not nest).
  explicit Transaction(Connection& conn, TxnKind kind = TxnKind::Immediate);
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  // Rolls back if neither commit() succeeded nor rollback() was called. Never throws (a failed ROLLBACK is ignored:
  // SQLite has then already rolled back or will when the connection closes).
  ~Transaction();

  // COMMIT. Throws DbError if it fails (e.g. is_busy() in rollback-journal mode while readers hold the file); the
  // transaction is then still open and the destructor rolls it back. Calling it twice is a bug (assert).
  void commit();
  // ROLLBACK now. Never throws. The destructor then does nothing.
  void rollback() noexcept;

 private:
  Connection& conn_;
  bool done_ = false;
};

// Bounded retries of a transaction whose BEGIN, body or COMMIT failed with is_busy() (after busy_timeout).
struct RetryPolicy {
  int max_attempts = 4;                              // total tries, including the first; >= 1
  std::chrono::milliseconds initial_backoff{5};      // before the 2nd try; doubles each time
  std::chrono::milliseconds max_backoff{100};        // cap of one back-off
  // Each back-off sleeps a uniformly random time in [b/2, b] (b = the doubled, capped value), so that processes that
  // collided once do not collide again in lockstep.
};

namespace detail {
// Sleeps before try number `next_attempt` (2, 3, ...) per `policy`, with jitter. Never throws.
void backoff_sleep(int next_attempt, const RetryPolicy& policy) noexcept;
}  // namespace detail

// Runs `fn(conn)` inside BEGIN IMMEDIATE and commits; returns what `fn` returns. If BEGIN, `fn` or COMMIT throws a
// DbError with is_busy(), the transaction is rolled back and the whole thing retried after a jittered back-off, up to
// policy.max_attempts tries; then that DbError propagates (the SDK answers 503). Any other exception rolls back and
// propagates at once. `fn` may therefore run more than once: its database work is undone between tries, but effects
// outside the database are not, so keep those after the call. `conn` must not already be in a transaction.
template <class F>
auto with_write_transaction(Connection& conn, F&& fn, const RetryPolicy& policy = {})
    -> std::invoke_result_t<F&, Connection&> {
  using R = std::invoke_result_t<F&, Connection&>;
  for (int attempt = 1;; ++attempt) {
    try {
      Transaction txn(conn, TxnKind::Immediate);
      if constexpr (std::is_void_v<R>) {
        fn(conn);
        txn.commit();
        return;
      } else {
        R result = fn(conn);
        txn.commit();
        return result;
      }
    } catch (const DbError& e) {
      if (!e.is_busy() || attempt >= policy.max_attempts) throw;
    }
    detail::backoff_sleep(attempt + 1, policy);
  }
}

// Runs `fn(conn)` inside BEGIN DEFERRED (one consistent snapshot for all its reads), then ends the transaction;
// returns what `fn` returns. No retries: in WAL mode readers do not wait for writers. Throws what `fn` or
// Transaction throws. `fn` must not write (see TxnKind::Deferred).
template <class F>
auto with_read_transaction(Connection& conn, F&& fn) -> std::invoke_result_t<F&, Connection&> {
  Transaction txn(conn, TxnKind::Deferred);
  if constexpr (std::is_void_v<std::invoke_result_t<F&, Connection&>>) {
    fn(conn);
    txn.commit();
  } else {
    auto result = fn(conn);
    txn.commit();
    return result;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Helpers.

// PRAGMA user_version of `conn`'s main database. Throws DbError.
[[nodiscard]] int user_version(Connection& conn);

// Brings the schema up to date: step i (0-based) takes the database from user_version i to i+1. Each step runs with
// `PRAGMA user_version = i+1` in its own BEGIN IMMEDIATE transaction (retried as with_write_transaction), and the
// version is re-read inside that transaction, so two processes racing to migrate the same new file apply every step
// exactly once between them. Steps may hold several statements. Returns the number of steps THIS call applied (0 if
// already current). Throws DbError if a step fails (that step is rolled back; earlier ones stay), or
// DbError (SQLITE_ERROR) if the file's user_version is above steps.size() (a newer program's schema).
int migrate(Connection& conn, std::span<const std::string_view> steps, const RetryPolicy& policy = {});

// PRAGMA integrity_check (or quick_check if `quick`): returns "ok", or the problems found, one per line, at most
// `max_errors` of them. Throws DbError if the check itself cannot run (e.g. SQLITE_CORRUPT on the header, busy).
[[nodiscard]] std::string integrity_check(Connection& conn, bool quick = false, int max_errors = 100);

enum class CheckpointMode {
  Passive,   // copy what it can without waiting for anyone
  Full,      // wait for the writer, then copy everything
  Restart,   // Full, then wait for readers so the next writer restarts the WAL from its start
  Truncate,  // Restart, then truncate the WAL file to 0 bytes
};
struct CheckpointResult {
  bool busy = false;            // the checkpoint could not finish (a reader or writer was in the way)
  int log_frames = -1;          // frames in the WAL, -1 if the database is not in WAL mode
  int checkpointed_frames = -1; // frames copied back into the database, -1 if not in WAL mode
};
// Checkpoints the WAL of the main database (sqlite3_wal_checkpoint_v2), the same as `PRAGMA wal_checkpoint(MODE)`.
// A checkpoint that could not finish for locks is reported as busy=true, not thrown. Throws DbError for other errors.
CheckpointResult wal_checkpoint(Connection& conn, CheckpointMode mode = CheckpointMode::Passive);

// ---------------------------------------------------------------------------------------------------------------------
// Statement::column<T> implementation.

namespace detail {
template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};
}  // namespace detail

template <class T>
T Statement::column(int col) const {
  if constexpr (detail::IsOptional<T>::value) {
    if (is_null(col)) return std::nullopt;
    return column<typename T::value_type>(col);
  } else if constexpr (std::is_same_v<T, bool>) {
    return column_int64(col) != 0;
  } else if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(column_int64(col));
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(column_double(col));
  } else if constexpr (std::is_same_v<T, std::string>) {
    return std::string(column_text(col));
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    return column_text(col);
  } else if constexpr (std::is_same_v<T, std::vector<std::byte>>) {
    auto bytes = column_blob(col);
    return std::vector<std::byte>(bytes.begin(), bytes.end());
  } else if constexpr (std::is_same_v<T, std::span<const std::byte>>) {
    return column_blob(col);
  } else {
    static_assert(sizeof(T) == 0, "Statement::column<T>: unsupported T");
  }
}

}  // namespace spawnd::db
