// server/db_keeper.cpp — DbKeeper: the front end's connection to --db and its checkpoint thread.
#include "server/db_keeper.h"

#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

// The WAL file format (sqlite.org/fileformat.html#the_write_ahead_log): a 32-byte header, then frames of a 24-byte
// header and one page each.
constexpr std::int64_t kWalHeaderBytes = 32;
constexpr std::int64_t kWalFrameHeaderBytes = 24;

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

CheckpointRound checkpoint_round(db::Connection& conn, std::int64_t page_bytes, CheckpointPolicy& policy) {
  CheckpointRound round;
  round.passive = db::wal_checkpoint(conn, db::CheckpointMode::Passive);
  if (round.passive.log_frames > 0) {
    round.wal_frame_bytes =
        kWalHeaderBytes + std::int64_t{round.passive.log_frames} * (page_bytes + kWalFrameHeaderBytes);
  }
  const std::string wal = wal_path_of(conn);
  round.wal_bytes = file_bytes(wal);
  round.wal_bytes_after = round.wal_bytes;
  const CheckpointDecision next = policy.after_passive(round.wal_frame_bytes, round.wal_bytes);
  if (next.escalation == Escalation::None) return round;
  round.escalation = next.escalation;
  // Both escalations hold the write lock while they wait for readers, so writers wait too: keep it short.
  const std::chrono::milliseconds saved = conn.busy_timeout();
  conn.set_busy_timeout(next.busy_wait);
  try {
    round.is_escalation_busy = db::wal_checkpoint(conn, next.escalation == Escalation::Restart
                                                            ? db::CheckpointMode::Restart
                                                            : db::CheckpointMode::Truncate)
                                   .busy;
  } catch (...) {
    conn.set_busy_timeout(saved);
    throw;
  }
  conn.set_busy_timeout(saved);
  policy.on_escalation(next.escalation, round.is_escalation_busy);
  round.wal_bytes_after = file_bytes(wal);
  return round;
}

DbKeeper::DbKeeper(DbKeeperConfig config) : config_(std::move(config)) {
  using std::chrono::milliseconds;
  if (config_.checkpoint_interval < milliseconds(1)) config_.checkpoint_interval = milliseconds(1);
  if (config_.policy.wal_max_bytes < 1) config_.policy.wal_max_bytes = CheckpointPolicyConfig{}.wal_max_bytes;
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
      if (is_wal_) page_bytes_ = query_int(*conn, "PRAGMA page_size");
    } catch (...) {
      opened.set_exception(std::current_exception());
      return;
    }
    opened.set_value();  // publishes is_wal_ and page_bytes_ to the constructor
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
  // Named for top -H, perf and /proc/PID/task/TID/comm (the idle-poll test finds it so); a failure changes nothing.
  (void)::pthread_setname_np(thread_.native_handle(), "db-keeper");

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
    SPAWND_LOG_INFO("db: %s kept open (WAL; preset %s); checkpoint poll every %lld ms (up to %lld ms while the WAL "
                    "is idle), WAL bound %lld bytes",
                    config_.path.c_str(), config_.pragmas.c_str(),
                    static_cast<long long>(config_.checkpoint_interval.count()),
                    static_cast<long long>(std::max(config_.checkpoint_interval, kIdleCheckpointInterval).count()),
                    static_cast<long long>(config_.policy.wal_max_bytes));
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

void DbKeeper::note_request() noexcept {
  // Only the first request of an idle spell signals; the keeper clears is_idle_ itself when it speeds up.
  if (!is_idle_.load(std::memory_order_relaxed) || !is_idle_.exchange(false)) return;
  {
    std::lock_guard lock(mutex_);
    has_request_ = true;
  }
  wake_.notify_one();
}

void DbKeeper::run(db::Connection conn) {
  using std::chrono::steady_clock;
  CheckpointPolicy policy(config_.policy);
  const std::chrono::milliseconds fast = config_.checkpoint_interval;
  std::chrono::milliseconds wait = fast;  // until the next poll
  steady_clock::time_point quiet_since = steady_clock::now();
  std::unique_lock lock(mutex_);
  for (;;) {
    // Not a sleep: stop() and note_request() wake us at once. Outside WAL mode there is nothing to do but hold the
    // connection.
    if (is_wal_) {
      wake_.wait_for(lock, wait, [this] { return stop_requested_ || has_request_; });
    } else {
      wake_.wait(lock, [this] { return stop_requested_; });
    }
    if (stop_requested_) break;
    if (std::exchange(has_request_, false)) {
      // A handler is about to run and may write: poll fast again, the first time one interval from now (its commit
      // comes later than this).
      wait = fast;
      quiet_since = steady_clock::now();
      is_idle_.store(false, std::memory_order_relaxed);
      continue;
    }
    lock.unlock();
    const WalActivity activity = run_round(conn, policy);
    lock.lock();
    const steady_clock::time_point now = steady_clock::now();
    if (activity == WalActivity::Changed) {
      wait = fast;
      quiet_since = now;
    } else if (activity == WalActivity::Quiet && now - quiet_since >= kQuietBeforeIdle) {
      wait = std::max(fast, std::min(wait * 2, kIdleCheckpointInterval));
    }
    is_idle_.store(wait > fast, std::memory_order_relaxed);
  }
  lock.unlock();
  if (!is_wal_) return;  // `conn` closes here, on the thread that used it
  log_stats();
  const std::string wal = wal_path_of(conn);
  // Closing here, on the thread that used it. If it is the last connection, SQLite checkpoints the WAL and removes
  // the -wal and -shm files.
  { db::Connection closing = std::move(conn); }
  // It was not the last if a handler process was still attached: a fork-mode child is not spawnd's, so its request
  // can end (the response complete) while the child is still closing its connection and exiting. Give such
  // stragglers a moment and close once more: a connection that opens, reads and closes as the last one does the
  // final checkpoint and removes the WAL. A process that really stays (an sqlite3 shell) keeps it, as it must.
  constexpr int kLastCloseTries = 20;
  for (int i = 0; i < kLastCloseTries && file_bytes(wal) >= 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    try {
      db::Connection again = db::Connection::open(config_.path, pragmas::find_preset(config_.pragmas));
      (void)query_int(again, "PRAGMA schema_version");
    } catch (const std::exception& e) {
      SPAWND_LOG_DEBUG("db: closing %s once more: %s", config_.path.c_str(), e.what());
      break;
    }
  }
}

void DbKeeper::log_stats() const {
  const Stats s = stats();
  SPAWND_LOG_INFO("db: %s: WAL %lld bytes (largest seen %lld, bound %lld); %llu checkpoints (%llu RESTART, %llu "
                  "TRUNCATE), %llu frames backfilled, %llu busy rounds, %llu errors in %llu polls",
                  config_.path.c_str(), static_cast<long long>(s.wal_bytes), static_cast<long long>(s.wal_bytes_max),
                  static_cast<long long>(config_.policy.wal_max_bytes), static_cast<unsigned long long>(s.checkpoints),
                  static_cast<unsigned long long>(s.restarts), static_cast<unsigned long long>(s.truncations),
                  static_cast<unsigned long long>(s.frames_backfilled),
                  static_cast<unsigned long long>(s.busy_rounds), static_cast<unsigned long long>(s.errors),
                  static_cast<unsigned long long>(s.rounds));
}

DbKeeper::WalActivity DbKeeper::run_round(db::Connection& conn, CheckpointPolicy& policy) {
  CheckpointRound r;
  bool is_error = false;
  const int previous_log_frames = last_log_frames_;
  try {
    r = checkpoint_round(conn, page_bytes_, policy);
  } catch (const std::exception& e) {
    // An I/O error, a full disk, ...: nothing the keeper can repair. Say so and try again next round.
    SPAWND_LOG_ERROR("db: checkpoint of %s failed: %s", config_.path.c_str(), e.what());
    is_error = true;
  }
  std::uint64_t copied = 0;
  if (!is_error) {
    if (r.passive.busy) {
      SPAWND_LOG_DEBUG("db: checkpoint: another connection is checkpointing %s", config_.path.c_str());
    } else {
      // pnCkpt counts from the WAL's first frame; a WAL restarted since the last poll counts from 0 again.
      const int before = r.passive.log_frames < last_log_frames_ ? 0 : last_checkpointed_frames_;
      if (r.passive.checkpointed_frames > before) copied = static_cast<std::uint64_t>(r.passive.checkpointed_frames - before);
      last_log_frames_ = r.passive.log_frames;
      last_checkpointed_frames_ = r.passive.checkpointed_frames;
    }
    if (r.escalation != Escalation::None) {
      const char* what = r.escalation == Escalation::Restart ? "RESTART" : "TRUNCATE";
      if (r.is_escalation_busy) {
        // Warn once per episode: a reader that keeps its snapshot can make this repeat for a while.
        if (!is_failing_ && ++busy_streak_ >= 20) {
          SPAWND_LOG_WARN("db: the WAL of %s is %lld bytes (bound %lld) and %s checkpoints keep meeting readers or "
                          "the writer; writers now wait for it at 3/4 of the bound",
                          config_.path.c_str(), static_cast<long long>(r.wal_bytes),
                          static_cast<long long>(config_.policy.wal_max_bytes), what);
          is_failing_ = true;
        }
        SPAWND_LOG_DEBUG("db: %s checkpoint busy (WAL %lld bytes)", what, static_cast<long long>(r.wal_bytes));
      } else {
        if (is_failing_) SPAWND_LOG_INFO("db: the WAL of %s is checkpointed again", config_.path.c_str());
        is_failing_ = false;
        busy_streak_ = 0;
        // The escalation backfilled the rest and the next writer starts the WAL from frame 1.
        last_log_frames_ = 0;
        last_checkpointed_frames_ = 0;
      }
    }
  }
  // Quiet: the WAL is as the previous round left it, and nobody else is checkpointing it.
  WalActivity activity = WalActivity::Unknown;
  if (!is_error) {
    const bool is_quiet = !r.passive.busy && r.escalation == Escalation::None &&
                          r.passive.log_frames == previous_log_frames && r.wal_bytes == last_wal_bytes_;
    activity = is_quiet ? WalActivity::Quiet : WalActivity::Changed;
    last_wal_bytes_ = r.wal_bytes_after;
  }
  std::lock_guard lock(mutex_);
  if (is_error) {
    ++stats_.errors;
    return activity;
  }
  ++stats_.rounds;
  stats_.frames_backfilled += copied;
  const bool is_escalated = r.escalation != Escalation::None && !r.is_escalation_busy;
  if (copied > 0 || is_escalated) ++stats_.checkpoints;
  if (is_escalated && r.escalation == Escalation::Restart) ++stats_.restarts;
  if (is_escalated && r.escalation == Escalation::Truncate) ++stats_.truncations;
  if (r.passive.busy || r.is_escalation_busy) ++stats_.busy_rounds;
  stats_.wal_bytes = r.wal_bytes_after;
  stats_.wal_bytes_max = std::max({stats_.wal_bytes_max, r.wal_bytes, r.wal_bytes_after});
  return activity;
}

std::shared_ptr<DbKeeper> DbKeepers::get(const DbKeeperConfig& config) {
  std::erase_if(keepers_, [](const auto& entry) { return entry.second.expired(); });
  for (const auto& [kept, keeper] : keepers_)
    if (kept == config) return keeper.lock();
  auto keeper = std::make_shared<DbKeeper>(config);
  keepers_.emplace_back(config, keeper);
  return keeper;
}

}  // namespace spawnd::server
