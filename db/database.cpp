// db/database.cpp — Connection, Statement, Transaction and the helpers of db/database.h.
#include "db/database.h"

#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include <cassert>
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

#include "common/error.h"

namespace spawnd::db {
namespace {

// SQLITE_TRANSIENT is `((sqlite3_destructor_type)-1)`, an old-style cast our warnings reject; this is the same value.
sqlite3_destructor_type transient() noexcept {
  return reinterpret_cast<sqlite3_destructor_type>(static_cast<std::intptr_t>(-1));
}

std::string errmsg(sqlite3* db, int rc) { return db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc); }

[[noreturn]] void throw_db(sqlite3* db, int rc, std::string_view sql) {
  throw DbError(rc, errmsg(db, rc), std::string(sql));
}

// True if [p, end) holds only what may follow the one statement prepare() accepts: whitespace, ';' and comments.
bool only_trivia(const char* p, const char* end) noexcept {
  while (p < end) {
    char c = *p;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == ';') {
      ++p;
    } else if (c == '-' && end - p >= 2 && p[1] == '-') {
      while (p < end && *p != '\n') ++p;
    } else if (c == '/' && end - p >= 2 && p[1] == '*') {
      p += 2;
      while (p < end && !(*p == '*' && end - p >= 2 && p[1] == '/')) ++p;
      p = p < end ? p + 2 : end;
    } else {
      return false;
    }
  }
  return true;
}

int checked_length(std::string_view sql) {
  if (sql.size() > static_cast<std::size_t>(INT_MAX)) {
    throw DbError(SQLITE_TOOBIG, "SQL text longer than INT_MAX bytes", std::string(sql.substr(0, 200)));
  }
  return static_cast<int>(sql.size());
}

// Reads the first column of the first row of `sql` as text ("" if there is no row).
std::string query_text(Connection& conn, std::string_view sql) {
  Statement st = conn.prepare(sql);
  return st.step() ? std::string(st.column_text(0)) : std::string();
}

std::int64_t query_int(Connection& conn, std::string_view sql) {
  Statement st = conn.prepare(sql);
  return st.step() ? st.column_int64(0) : 0;
}

// What the open-time probe appended to the per-connection PRAGMAs saw: the file's journal mode and page count.
struct FileState {
  std::string journal_mode;
  std::int64_t page_count = -1;
  std::int64_t busy_timeout_ms = -1;  // from the preset's `PRAGMA busy_timeout = N;` (its row is named "timeout")
};

// sqlite3_exec callback: records the last `journal_mode` and `page_count` result rows. Earlier PRAGMAs of the preset
// may return rows too (busy_timeout, mmap_size, ...); they are ignored. Never throws (it runs inside SQLite).
int record_file_state(void* out, int columns, char** values, char** names) noexcept {
  auto* state = static_cast<FileState*>(out);
  for (int i = 0; i < columns; ++i) {
    if (values[i] == nullptr || names[i] == nullptr) continue;
    if (std::strcmp(names[i], "journal_mode") == 0) {
      state->journal_mode.assign(values[i]);  // a few bytes: short-string storage, no allocation
    } else if (std::strcmp(names[i], "page_count") == 0) {
      state->page_count = std::strtoll(values[i], nullptr, 10);
    } else if (std::strcmp(names[i], "timeout") == 0) {
      state->busy_timeout_ms = std::strtoll(values[i], nullptr, 10);
    }
  }
  return 0;
}

// Appended to the per-connection block, so that one sqlite3_exec both configures the connection and tells whether the
// file needs its on-create PRAGMAs. The query forms change nothing. The first statement to touch the file pays for
// reading its header and schema, which the request's first statement would pay otherwise. page_count costs ~3 us more
// and is only needed when the mode is not WAL (a WAL file always has pages), so WAL presets probe journal_mode alone.
constexpr std::string_view kProbeJournalMode = "PRAGMA journal_mode;";
constexpr std::string_view kProbeJournalModeAndPages = "PRAGMA journal_mode;PRAGMA page_count;";

std::string_view probe_sql(const pragmas::Preset& preset) noexcept {
  return preset.journal_mode == "wal" ? kProbeJournalMode : kProbeJournalModeAndPages;
}

// Whether the on-create PRAGMAs must run: the file is not in the journal mode the preset asks for, or it is empty.
bool needs_on_create(const FileState& state, const pragmas::Preset& preset) {
  if (preset.journal_mode && state.journal_mode != *preset.journal_mode) return true;
  if (state.journal_mode == "wal") return false;  // WAL is recorded in the file header, so the file has pages
  return state.page_count == 0;
}

void apply_on_create(Connection& conn, const pragmas::Preset& preset) {
  // In one sqlite3_exec. Not in a transaction: journal_mode cannot change inside one. Switching to WAL needs an
  // exclusive lock for a moment; when several processes create the file at once, busy_timeout covers that, and a
  // SQLITE_BUSY that outlives it is retried like a write transaction.
  RetryPolicy policy;
  for (int attempt = 1;; ++attempt) {
    char* msg = nullptr;
    int rc = sqlite3_exec(conn.handle(), preset.on_create_sql.c_str(), nullptr, nullptr, &msg);
    if (rc == SQLITE_OK) break;
    std::string text = msg != nullptr ? msg : sqlite3_errstr(rc);
    sqlite3_free(msg);
    DbError error(rc, text + " (preset " + preset.name + ", on-create)", preset.on_create_sql);
    if (!error.is_busy() || attempt >= policy.max_attempts) throw error;
    detail::backoff_sleep(attempt + 1, policy);
  }
  if (preset.journal_mode) {
    std::string mode = query_text(conn, "PRAGMA journal_mode");
    if (mode != *preset.journal_mode) {
      throw DbError(SQLITE_ERROR,
                    "journal_mode is " + mode + ", preset " + preset.name + " asks for " + *preset.journal_mode +
                        " (another connection in another mode holds the file, or the file cannot use that mode)",
                    preset.on_create_sql);
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------------
// Statement

void Statement::Finalize::operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }

Statement::Statement(Statement&& other) noexcept = default;
Statement& Statement::operator=(Statement&& other) noexcept = default;
Statement::~Statement() = default;

void Statement::throw_error(int rc) const { throw_db(db_, rc, sql()); }

void Statement::throw_out_of_range(int index) const {
  throw DbError(SQLITE_RANGE, "integer for parameter " + std::to_string(index) + " does not fit in int64",
                std::string(sql()));
}

Statement& Statement::bind(int index, std::nullptr_t) {
  if (int rc = sqlite3_bind_null(stmt_.get(), index); rc != SQLITE_OK) throw_error(rc);
  return *this;
}

Statement& Statement::bind(int index, std::int64_t value) {
  if (int rc = sqlite3_bind_int64(stmt_.get(), index, value); rc != SQLITE_OK) throw_error(rc);
  return *this;
}

Statement& Statement::bind(int index, double value) {
  if (int rc = sqlite3_bind_double(stmt_.get(), index, value); rc != SQLITE_OK) throw_error(rc);
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  // A null data() would bind NULL; an empty string_view must still be the empty TEXT.
  const char* data = text.data() != nullptr ? text.data() : "";
  int rc = sqlite3_bind_text64(stmt_.get(), index, data, text.size(), transient(), SQLITE_UTF8);
  if (rc != SQLITE_OK) throw_error(rc);
  return *this;
}

Statement& Statement::bind(int index, const char* text) {
  return text == nullptr ? bind(index, nullptr) : bind(index, std::string_view(text));
}

Statement& Statement::bind(int index, std::span<const std::byte> blob) {
  // sqlite3_bind_blob64 with a null pointer binds NULL, so the empty BLOB goes through zeroblob.
  int rc = blob.empty() ? sqlite3_bind_zeroblob(stmt_.get(), index, 0)
                        : sqlite3_bind_blob64(stmt_.get(), index, blob.data(), blob.size(), transient());
  if (rc != SQLITE_OK) throw_error(rc);
  return *this;
}

int Statement::parameter_index(std::string_view name) const {
  std::string nul_terminated(name);
  int index = sqlite3_bind_parameter_index(stmt_.get(), nul_terminated.c_str());
  if (index == 0) {
    throw DbError(SQLITE_RANGE, "no parameter named " + nul_terminated + " (names include their :, @ or $)",
                  std::string(sql()));
  }
  return index;
}

int Statement::parameter_count() const noexcept { return sqlite3_bind_parameter_count(stmt_.get()); }

bool Statement::step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // Take the message before rewinding, then rewind so a failed statement does not hold its read of the database.
  DbError error(rc, errmsg(db_, rc), std::string(sql()));
  sqlite3_reset(stmt_.get());
  throw error;
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() noexcept {
  sqlite3_reset(stmt_.get());  // returns the last step's error, which step() already reported
  sqlite3_clear_bindings(stmt_.get());
}

int Statement::column_count() const noexcept { return sqlite3_column_count(stmt_.get()); }

std::string_view Statement::column_name(int col) const noexcept {
  const char* name = sqlite3_column_name(stmt_.get(), col);
  return name != nullptr ? std::string_view(name) : std::string_view();
}

ColumnType Statement::column_type(int col) const noexcept {
  return static_cast<ColumnType>(sqlite3_column_type(stmt_.get(), col));
}

std::int64_t Statement::column_int64(int col) const noexcept { return sqlite3_column_int64(stmt_.get(), col); }

double Statement::column_double(int col) const noexcept { return sqlite3_column_double(stmt_.get(), col); }

std::string_view Statement::column_text(int col) const noexcept {
  // _text before _bytes: the order SQLite documents, so the length is that of the converted value.
  const unsigned char* text = sqlite3_column_text(stmt_.get(), col);
  if (text == nullptr) return {};
  auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), col));
  return {reinterpret_cast<const char*>(text), size};
}

std::span<const std::byte> Statement::column_blob(int col) const noexcept {
  const void* blob = sqlite3_column_blob(stmt_.get(), col);
  if (blob == nullptr) return {};
  auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), col));
  return {static_cast<const std::byte*>(blob), size};
}

std::string_view Statement::sql() const noexcept {
  const char* text = stmt_ ? sqlite3_sql(stmt_.get()) : nullptr;
  return text != nullptr ? std::string_view(text) : std::string_view();
}

// ---------------------------------------------------------------------------------------------------------------------
// CachedStatement

CachedStatement::CachedStatement(Statement owned)
    : owned_(std::make_unique<Statement>(std::move(owned))) {
  stmt_ = owned_.get();
}

CachedStatement::CachedStatement(CachedStatement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      in_use_(std::exchange(other.in_use_, nullptr)),
      owned_(std::move(other.owned_)) {}

CachedStatement& CachedStatement::operator=(CachedStatement&& other) noexcept {
  if (this != &other) {
    CachedStatement old(std::move(*this));  // returns what we held
    stmt_ = std::exchange(other.stmt_, nullptr);
    in_use_ = std::exchange(other.in_use_, nullptr);
    owned_ = std::move(other.owned_);
  }
  return *this;
}

CachedStatement::~CachedStatement() {
  if (stmt_ == nullptr) return;
  stmt_->reset();
  if (in_use_ != nullptr) *in_use_ = false;
}

// ---------------------------------------------------------------------------------------------------------------------
// Connection

void Connection::CloseV2::operator()(sqlite3* db) const noexcept {
  // close_v2: if a Statement is still alive somewhere, the connection becomes a zombie and closes when it is finalized,
  // instead of failing with SQLITE_BUSY and leaking.
  sqlite3_close_v2(db);
}

struct Connection::Hooks {
  std::chrono::milliseconds busy_timeout{0};
  std::chrono::steady_clock::time_point busy_since{};
  std::int64_t wal_max_bytes = 0;
  int writer_checkpoint_frames = INT_MAX;  // a commit that leaves this many WAL frames or more checkpoints
  WriterCheckpoints writer;
};

void Connection::HooksDelete::operator()(Hooks* hooks) const noexcept { delete hooks; }

Connection::Connection(std::unique_ptr<sqlite3, CloseV2> db, std::string path) noexcept
    : db_(std::move(db)), path_(std::move(path)) {}

Connection::Connection(Connection&& other) noexcept = default;

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    cache_.clear();  // finalize our statements before our handle goes
    db_ = std::move(other.db_);  // closes our handle, the last user of our hooks
    hooks_ = std::move(other.hooks_);
    cache_ = std::move(other.cache_);
    path_ = std::move(other.path_);
  }
  return *this;
}

Connection::~Connection() = default;

Connection Connection::open(const std::string& path, const pragmas::Preset& preset, const OpenOptions& options) {
  // NOMUTEX: a connection is never shared between threads, so SQLite's per-connection mutex is pure cost.
  // EXRESCODE: every call reports extended result codes (SQLITE_BUSY_SNAPSHOT, SQLITE_CONSTRAINT_UNIQUE, ...).
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (options.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE | (options.create ? SQLITE_OPEN_CREATE : 0);
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  std::unique_ptr<sqlite3, CloseV2> db(raw);  // a handle comes back even on failure, and must be closed
  if (rc != SQLITE_OK) throw DbError(rc, errmsg(raw, rc) + ": " + path, "");

  Connection conn(std::move(db), path);
  conn.hooks_.reset(new Hooks);
  // busy_timeout first, so that the PRAGMAs below already wait for locks as the caller asked.
  if (options.busy_timeout) conn.set_busy_timeout(*options.busy_timeout);
  const bool may_create = !options.read_only && !preset.on_create_sql.empty();
  std::string sql;  // the per-connection PRAGMAs, plus the probe when on-create may be needed
  sql.reserve(preset.per_connection_sql.size() + kProbeJournalModeAndPages.size());
  sql += preset.per_connection_sql;
  if (may_create) sql += probe_sql(preset);
  FileState state;
  if (!sql.empty()) {
    // ONE sqlite3_exec: one call, nothing kept prepared.
    char* msg = nullptr;
    rc = sqlite3_exec(raw, sql.c_str(), record_file_state, &state, &msg);
    if (rc != SQLITE_OK) {
      std::string text = msg != nullptr ? msg : sqlite3_errstr(rc);
      sqlite3_free(msg);
      throw DbError(rc, text + " (preset " + preset.name + ", per-connection)", preset.per_connection_sql);
    }
  }
  // The preset's own busy_timeout ran in the block above (installing SQLite's handler); ours replaces it with the same
  // timeout, and the caller's override wins.
  if (options.busy_timeout) {
    conn.set_busy_timeout(*options.busy_timeout);
  } else if (state.busy_timeout_ms >= 0) {
    conn.set_busy_timeout(std::chrono::milliseconds(state.busy_timeout_ms));
  }
  if (may_create && needs_on_create(state, preset)) apply_on_create(conn, preset);
  if (options.wal_max_bytes > 0) conn.set_wal_max_bytes(options.wal_max_bytes);
  return conn;
}

void Connection::exec(std::string_view sql) {
  const char* p = sql.data();
  const char* end = p + checked_length(sql);
  while (p < end) {
    // Skip the whitespace between statements, so that an error quotes the failing statement from its first word.
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
    if (p == end) break;
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_.get(), p, static_cast<int>(end - p), 0, &raw, &tail);
    if (rc != SQLITE_OK) throw_db(db_.get(), rc, std::string_view(p, static_cast<std::size_t>(end - p)));
    if (raw == nullptr) break;  // only whitespace or comments left
    Statement st(db_.get(), raw);
    st.run();
    p = tail;
  }
}

Statement Connection::prepare_with_flags(std::string_view sql, unsigned flags) {
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql.data(), checked_length(sql), flags, &raw, &tail);
  if (rc != SQLITE_OK) throw_db(db_.get(), rc, sql);
  if (raw == nullptr) throw DbError(SQLITE_MISUSE, "empty SQL: nothing to prepare", std::string(sql));
  Statement st(db_.get(), raw);
  if (!only_trivia(tail, sql.data() + sql.size())) {
    throw DbError(SQLITE_MISUSE, "prepare() takes one statement; use exec() for several", std::string(sql));
  }
  return st;
}

Statement Connection::prepare(std::string_view sql) { return prepare_with_flags(sql, 0); }

CachedStatement Connection::cached(std::string_view sql) {
  if (auto it = cache_.find(sql); it != cache_.end()) {
    if (it->second.in_use) return CachedStatement(prepare(sql));  // nested use of the same SQL
    it->second.in_use = true;
    return CachedStatement(&it->second.stmt, &it->second.in_use);
  }
  // PERSISTENT: a hint that the statement lives long, so SQLite keeps it out of its short-lived lookaside memory.
  Statement st = prepare_with_flags(sql, SQLITE_PREPARE_PERSISTENT);
  if (cache_.size() >= kMaxCachedStatements) return CachedStatement(std::move(st));
  auto [it, inserted] = cache_.emplace(std::string(sql), CacheEntry{std::move(st), true});
  assert(inserted);
  return CachedStatement(&it->second.stmt, &it->second.in_use);
}

void Connection::clear_cache() noexcept {
  std::erase_if(cache_, [](const auto& entry) { return !entry.second.in_use; });
}

std::int64_t Connection::last_insert_rowid() const noexcept { return sqlite3_last_insert_rowid(db_.get()); }

std::int64_t Connection::changes() const noexcept { return sqlite3_changes64(db_.get()); }

bool Connection::in_transaction() const noexcept { return sqlite3_get_autocommit(db_.get()) == 0; }

void Connection::set_busy_timeout(std::chrono::milliseconds timeout) noexcept {
  if (timeout.count() <= 0) {
    hooks_->busy_timeout = std::chrono::milliseconds(0);
    sqlite3_busy_handler(db_.get(), nullptr, nullptr);  // SQLITE_BUSY at once
    return;
  }
  hooks_->busy_timeout = timeout;
  // `count` is 0 at the first retry of each lock wait and grows by one per retry.
  sqlite3_busy_handler(db_.get(), [](void* arg, int count) noexcept -> int {
    auto* hooks = static_cast<Hooks*>(arg);
    const auto now = std::chrono::steady_clock::now();
    if (count == 0) hooks->busy_since = now;
    const auto left = hooks->busy_timeout - (now - hooks->busy_since);
    if (left <= std::chrono::steady_clock::duration::zero()) return 0;  // give up: SQLITE_BUSY
    std::chrono::steady_clock::duration delay = std::chrono::microseconds(100) * (1 << std::min(count, 4));
    delay = std::min({delay, std::chrono::steady_clock::duration(std::chrono::milliseconds(2)), left});
    std::this_thread::sleep_for(delay);
    return 1;
  }, hooks_.get());
}

std::chrono::milliseconds Connection::busy_timeout() const noexcept { return hooks_->busy_timeout; }

void Connection::set_wal_max_bytes(std::int64_t bytes) {
  if (bytes <= 0) {
    hooks_->wal_max_bytes = 0;
    hooks_->writer_checkpoint_frames = INT_MAX;
    sqlite3_wal_hook(db_.get(), nullptr, nullptr);
    return;
  }
  // A WAL is a 32-byte header and, per frame, a 24-byte frame header and one page (sqlite.org/fileformat.html#wal).
  const std::int64_t page_bytes = query_int(*this, "PRAGMA page_size");
  const auto share = static_cast<std::int64_t>(static_cast<double>(bytes) * kWriterCheckpointShare);
  const std::int64_t frames = std::max<std::int64_t>(1, (share - 32) / (page_bytes + 24));
  hooks_->wal_max_bytes = bytes;
  hooks_->writer_checkpoint_frames = static_cast<int>(std::min<std::int64_t>(frames, INT_MAX));
  // Runs after every commit of this connection, with the WAL's frame count; the write lock is already released.
  sqlite3_wal_hook(db_.get(), [](void* arg, sqlite3* db, const char* schema, int frames_now) noexcept -> int {
    auto* hooks = static_cast<Hooks*>(arg);
    if (frames_now < hooks->writer_checkpoint_frames) return SQLITE_OK;
    ++hooks->writer.tried;
    const auto deadline = std::chrono::steady_clock::now() + hooks->busy_timeout;
    for (;;) {
      // RESTART waits (busy handler) for the writer and then for readers; the checkpoint lock it does not wait for.
      const int rc = sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
      if (rc == SQLITE_OK) {
        ++hooks->writer.done;
        break;
      }
      if ((rc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    // Always OK: the commit has happened, and an error here would make the caller think it had not (and retry it).
    return SQLITE_OK;
  }, hooks_.get());
}

std::int64_t Connection::wal_max_bytes() const noexcept { return hooks_->wal_max_bytes; }

Connection::WriterCheckpoints Connection::writer_checkpoints() const noexcept { return hooks_->writer; }

Connection open_from_env(const OpenOptions& options) {
  const char* path = std::getenv("SPAWND_DB");
  if (path == nullptr || *path == '\0') {
    throw spawnd::Error(EINVAL, "SPAWND_DB is not set: it must name the handler's database file");
  }
  const char* pragmas_env = std::getenv("SPAWND_PRAGMAS");
  pragmas::Preset preset = pragmas::find_preset(pragmas_env != nullptr ? pragmas_env : "");
  OpenOptions with_bound = options;
  if (with_bound.wal_max_bytes == 0) with_bound.wal_max_bytes = wal_max_bytes_from_env();
  return Connection::open(path, preset, with_bound);
}

std::int64_t wal_max_bytes_from_env() noexcept {
  const char* text = std::getenv("SPAWND_WAL_MAX_BYTES");
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < 0) return 0;
  return value;
}

// ---------------------------------------------------------------------------------------------------------------------
// Transaction

Transaction::Transaction(Connection& conn, TxnKind kind) : conn_(conn) {
  conn_.exec(kind == TxnKind::Immediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
}

Transaction::~Transaction() { rollback(); }

void Transaction::commit() {
  assert(!done_ && "Transaction::commit() called twice or after rollback()");
  conn_.exec("COMMIT");
  done_ = true;
}

void Transaction::rollback() noexcept {
  if (done_) return;
  done_ = true;
  // SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR, ...); ROLLBACK would then fail with
  // "no transaction is active", so only issue it while a transaction is open. Its own failure is ignored: the
  // transaction is then rolled back when the connection closes.
  if (conn_.in_transaction()) sqlite3_exec(conn_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

// ---------------------------------------------------------------------------------------------------------------------
// Retry back-off

void detail::backoff_sleep(int next_attempt, const RetryPolicy& policy) noexcept {
  // One generator per thread, reseeded in a forked child (its pid changed), so that processes forked from one parent
  // do not draw the same back-offs and collide again in lockstep.
  thread_local std::minstd_rand rng;
  thread_local pid_t seeded_for = 0;
  pid_t pid = getpid();
  if (seeded_for != pid) {
    auto now = static_cast<unsigned long long>(std::chrono::steady_clock::now().time_since_epoch().count());
    rng.seed(static_cast<std::minstd_rand::result_type>((now ^ (static_cast<unsigned long long>(pid) << 20)) %
                                                        2147483646ULL) + 1);
    seeded_for = pid;
  }
  auto backoff = policy.initial_backoff;
  for (int i = 2; i < next_attempt && backoff < policy.max_backoff; ++i) backoff *= 2;
  if (backoff > policy.max_backoff) backoff = policy.max_backoff;
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(backoff).count();
  if (us <= 0) return;
  std::uniform_int_distribution<long long> pick(us / 2, us);
  long long sleep_us = pick(rng);
  timespec ts{static_cast<time_t>(sleep_us / 1000000), static_cast<long>((sleep_us % 1000000) * 1000)};
  nanosleep(&ts, nullptr);  // EINTR just shortens the back-off
}

// ---------------------------------------------------------------------------------------------------------------------
// Helpers

int user_version(Connection& conn) { return static_cast<int>(query_int(conn, "PRAGMA user_version")); }

int migrate(Connection& conn, std::span<const std::string_view> steps, const RetryPolicy& policy) {
  const auto target = static_cast<int>(steps.size());
  auto check_not_newer = [&](int version) {
    if (version > target) {
      throw DbError(SQLITE_ERROR,
                    "database schema version " + std::to_string(version) + " is newer than this program's " +
                        std::to_string(target) + " migration steps",
                    "PRAGMA user_version");
    }
  };
  // Fast path, outside any transaction and without the write lock: already current.
  int version = user_version(conn);
  check_not_newer(version);
  if (version == target) return 0;

  int applied = 0;
  for (;;) {
    // Re-read the version under the write lock: another process may have migrated since we looked.
    bool current = with_write_transaction(
        conn,
        [&](Connection& c) {
          int now = user_version(c);
          check_not_newer(now);
          if (now == target) return true;
          c.exec(steps[static_cast<std::size_t>(now)]);
          c.exec("PRAGMA user_version = " + std::to_string(now + 1));
          return false;
        },
        policy);
    if (current) return applied;
    ++applied;
  }
}

std::string integrity_check(Connection& conn, bool quick, int max_errors) {
  std::string sql = quick ? "PRAGMA quick_check(" : "PRAGMA integrity_check(";
  sql += std::to_string(max_errors > 0 ? max_errors : 1);
  sql += ')';
  Statement st = conn.prepare(sql);
  std::string result;
  while (st.step()) {
    if (!result.empty()) result += '\n';
    result += st.column_text(0);
  }
  return result;
}

CheckpointResult wal_checkpoint(Connection& conn, CheckpointMode mode) {
  int sqlite_mode = SQLITE_CHECKPOINT_PASSIVE;
  switch (mode) {
    case CheckpointMode::Passive: sqlite_mode = SQLITE_CHECKPOINT_PASSIVE; break;
    case CheckpointMode::Full: sqlite_mode = SQLITE_CHECKPOINT_FULL; break;
    case CheckpointMode::Restart: sqlite_mode = SQLITE_CHECKPOINT_RESTART; break;
    case CheckpointMode::Truncate: sqlite_mode = SQLITE_CHECKPOINT_TRUNCATE; break;
  }
  CheckpointResult result;
  int rc = sqlite3_wal_checkpoint_v2(conn.handle(), "main", sqlite_mode, &result.log_frames,
                                     &result.checkpointed_frames);
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    result.busy = true;
  } else if (rc != SQLITE_OK) {
    throw_db(conn.handle(), rc, "PRAGMA wal_checkpoint");
  }
  return result;
}

}  // namespace spawnd::db
