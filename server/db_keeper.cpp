// server/db_keeper.cpp — DbKeeper: the front end's connection to --db and its checkpoint thread.
#include "server/db_keeper.h"

#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <filesystem>
#include <future>
#include <optional>
#include <utility>

#include "common/error.h"
#include "common/log.h"
#include "pragmas/presets.h"

namespace spawnd::server {

namespace {

// The -wal file SQLite uses for `conn`'s main database (next to the file a symlink points at, if it is one).
std::string wal_path_of(db::Connection& conn) {
  const char* db_file = sqlite3_db_filename(conn.handle(), "main");
  const char* wal = db_file != nullptr ? sqlite3_filename_wal(db_file) : nullptr;
  return wal != nullptr ? std::string(wal) : conn.path() + "-wal";
}

// The size of `path` in bytes, or -1 if it does not exist (or cannot be stat'ed).
std::int64_t file_bytes(const std::string& path) noexcept {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<std::int64_t>(st.st_size);
}

std::int64_t query_int(db::Connection& conn, std::string_view sql) {
  db::Statement st = conn.prepare(sql);
  return st.step() ? st.column_int64(0) : 0;
}

// The errno that best explains a failed open, for spawnd::Error (whose message ends with strerror of it).
// SQLITE_CANTOPEN says nothing about why, so look at the directory and the file ourselves.
int errno_for(const db::DbError& e, const std::string& path) {
  switch (e.primary_code()) {
    case SQLITE_CANTOPEN: {
      std::string dir = std::filesystem::path(path).parent_path().string();
      if (dir.empty()) dir = ".";
      if (::access(dir.c_str(), X_OK) != 0) return errno;  // no such directory (ENOENT), or not searchable
      if (::access(path.c_str(), F_OK) == 0) return ::access(path.c_str(), R_OK | W_OK) != 0 ? errno : EIO;
      if (::access(dir.c_str(), W_OK) != 0) return errno;  // the file is missing and cannot be created here
      return EIO;
    }
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return EBUSY;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH: return EACCES;
    case SQLITE_FULL: return ENOSPC;
    case SQLITE_IOERR: return EIO;
    default: return EINVAL;
  }
}

}  // namespace

CheckpointRound checkpoint_round(db::Connection& conn, std::int64_t wal_limit_bytes) {
  CheckpointRound round;
  round.passive = db::wal_checkpoint(conn, db::CheckpointMode::Passive);
  const std::string wal = wal_path_of(conn);
  round.wal_bytes = file_bytes(wal);
  round.wal_bytes_after = round.wal_bytes;
  // The PASSIVE checkpoint never shrinks the file: a writer restarts the WAL from its start once every frame is
  // copied and no reader still uses it, and only then (at its commit) cuts the file to journal_size_limit. Readers
  // that always hold some frame prevent that restart, so past the limit we wait for them, briefly, ourselves.
  if (round.wal_bytes > wal_limit_bytes) {
    round.is_truncate_tried = true;
    round.is_truncate_busy = db::wal_checkpoint(conn, db::CheckpointMode::Truncate).busy;
    round.wal_bytes_after = file_bytes(wal);
  }
  return round;
}

DbKeeper::DbKeeper(DbKeeperConfig config) : config_(std::move(config)) {
  using std::chrono::milliseconds;
  if (config_.checkpoint_interval < milliseconds(1)) config_.checkpoint_interval = milliseconds(1);
  // Parsing the preset needs no SQLite, so it happens here; it throws spawnd::Error naming the preset.
  pragmas::Preset preset = pragmas::find_preset(config_.pragmas);

  std::promise<void> opened;
  std::future<void> open_result = opened.get_future();
  auto body = [this, preset = std::move(preset), opened = std::move(opened)]() mutable {
    std::optional<db::Connection> conn;
    try {
      // Opened with the preset's busy_timeout, so that creating the file waits out a moment of contention.
      conn.emplace(db::Connection::open(config_.path, preset));
      // Read the file once. In WAL mode a connection keeps its SHARED lock on the database file and its mapping of
      // the -shm from its first read until it closes: that lock is what makes every handler's close a non-last one.
      (void)query_int(*conn, "PRAGMA schema_version");
      db::Statement mode = conn->prepare("PRAGMA journal_mode");
      is_wal_ = mode.step() && mode.column_text(0) == "wal";
      mode.reset();
      wal_limit_bytes_ = config_.wal_limit_bytes;
      if (wal_limit_bytes_ < 0) wal_limit_bytes_ = query_int(*conn, "PRAGMA journal_size_limit");
      if (wal_limit_bytes_ < 0) wal_limit_bytes_ = kDefaultWalLimitBytes;
      // From now on the connection only checkpoints; a TRUNCATE waits for locks this long, no longer.
      conn->set_busy_timeout(config_.truncate_wait);
    } catch (...) {
      opened.set_exception(std::current_exception());
      return;
    }
    opened.set_value();  // publishes is_wal_ and wal_limit_bytes_ to the constructor
    run(std::move(*conn));
  };

  // The thread inherits the creating thread's signal mask: block everything while creating it, so that no signal
  // meant for the server's signalfd (SIGTERM, SIGINT, SIGHUP) is ever delivered to it, whatever the caller's mask.
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    thread_ = std::thread(std::move(body));
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);

  try {
    open_result.get();
  } catch (const db::DbError& e) {
    thread_.join();
    throw spawnd::Error(errno_for(e, config_.path),
                        "--db " + config_.path + " (preset " + config_.pragmas + "): " + e.what());
  } catch (...) {
    thread_.join();
    throw;
  }
  if (is_wal_) {
    SPAWND_LOG_INFO("db: %s kept open (WAL; preset %s); checkpoint every %lld ms, TRUNCATE beyond %lld bytes",
                    config_.path.c_str(), config_.pragmas.c_str(),
                    static_cast<long long>(config_.checkpoint_interval.count()),
                    static_cast<long long>(wal_limit_bytes_));
  } else {
    SPAWND_LOG_INFO("db: %s kept open (not WAL: no checkpoints needed; preset %s)", config_.path.c_str(),
                    config_.pragmas.c_str());
  }
}

DbKeeper::~DbKeeper() { stop(); }

void DbKeeper::stop() noexcept {
  {
    std::lock_guard lock(mutex_);
    stop_requested_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

DbKeeper::Stats DbKeeper::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void DbKeeper::run(db::Connection conn) {
  std::unique_lock lock(mutex_);
  for (;;) {
    // Not a sleep: stop() wakes us at once. Outside WAL mode there is nothing to do but hold the connection.
    if (is_wal_) {
      wake_.wait_for(lock, config_.checkpoint_interval, [this] { return stop_requested_; });
    } else {
      wake_.wait(lock, [this] { return stop_requested_; });
    }
    if (stop_requested_) break;
    lock.unlock();
    run_round(conn);
    lock.lock();
  }
  lock.unlock();
  // `conn` closes here, on the thread that used it. If it is the last connection, SQLite checkpoints the WAL and
  // removes the -wal and -shm files.
}

void DbKeeper::run_round(db::Connection& conn) {
  CheckpointRound r;
  bool is_error = false;
  try {
    r = checkpoint_round(conn, wal_limit_bytes_);
  } catch (const std::exception& e) {
    // An I/O error, a full disk, ...: nothing the keeper can repair. Say so and try again next round.
    SPAWND_LOG_ERROR("db: checkpoint of %s failed: %s", config_.path.c_str(), e.what());
    is_error = true;
  }
  if (!is_error) {
    if (r.passive.busy) {
      SPAWND_LOG_DEBUG("db: checkpoint: another connection is checkpointing %s", config_.path.c_str());
    } else if (r.passive.checkpointed_frames < r.passive.log_frames) {
      SPAWND_LOG_DEBUG("db: checkpoint: %d of %d WAL frames copied (readers still use the rest)",
                       r.passive.checkpointed_frames, r.passive.log_frames);
    }
    if (r.is_truncate_tried && r.is_truncate_busy) {
      // Warn once per episode: under steady load this can repeat every round until the readers let go.
      if (!is_truncate_failing_) {
        SPAWND_LOG_WARN("db: the WAL of %s is %lld bytes, over its limit of %lld, and a TRUNCATE checkpoint did not "
                        "get past readers and writers within %lld ms; trying again every round",
                        config_.path.c_str(), static_cast<long long>(r.wal_bytes),
                        static_cast<long long>(wal_limit_bytes_),
                        static_cast<long long>(config_.truncate_wait.count()));
      } else {
        SPAWND_LOG_DEBUG("db: TRUNCATE checkpoint still busy (WAL %lld bytes)", static_cast<long long>(r.wal_bytes));
      }
      is_truncate_failing_ = true;
    } else if (r.is_truncate_tried) {
      if (is_truncate_failing_) {
        SPAWND_LOG_INFO("db: the WAL of %s is truncated again", config_.path.c_str());
      } else {
        SPAWND_LOG_DEBUG("db: WAL truncated from %lld bytes", static_cast<long long>(r.wal_bytes));
      }
      is_truncate_failing_ = false;
    }
  }
  std::lock_guard lock(mutex_);
  if (is_error) {
    ++stats_.errors;
    return;
  }
  ++stats_.rounds;
  if (r.passive.busy || r.is_truncate_busy) ++stats_.busy_rounds;
  if (r.is_truncate_tried && !r.is_truncate_busy) ++stats_.truncations;
}

}  // namespace spawnd::server
