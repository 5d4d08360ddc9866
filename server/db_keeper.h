// server/db_keeper.h — the front end's own connection to --db: held for the process's life, and WAL checkpoints.
//
// Why. In CGI and fork-server mode every request opens and closes its own connection. When a connection to a WAL
// database closes and it is the LAST one, SQLite checkpoints the whole WAL into the database file and deletes the
// -wal and -shm files, so every request whose close happened to be the last paid for a checkpoint, and the next one
// re-created both files. DbKeeper keeps one connection open for as long as spawnd runs, so no handler's close is ever
// the last, and it takes checkpointing off the request path: handlers run with wal_autocheckpoint=0 (the WAL presets
// set it, see pragmas/README.md) and the keeper checkpoints on its own thread.
//
// What it does. The constructor opens the database with the configured preset on the keeper thread, creating the file
// and applying the on-create PRAGMAs (so the file exists, in WAL mode, before the first handler runs), and waits for
// that open to finish. Then, if the file is in WAL mode, the thread polls every `checkpoint_interval` (5 ms by default)
// while the WAL changes (see "Idle" below) and runs checkpoint_round() below: a PASSIVE checkpoint, then whatever
// CheckpointPolicy (server/checkpoint_policy.h) asks for to keep the -wal file under `policy.wal_max_bytes` (B): a
// RESTART with a 5 ms busy wait once the WAL's frames take B/2, a TRUNCATE when the file itself passed 3B/4, PASSIVE
// only for a few polls after one of those met a lock. Writers help at 3B/4 (spawnd passes B to handlers as
// SPAWND_WAL_MAX_BYTES, see db::Connection::set_wal_max_bytes), which is what makes B a hard bound when a checkpoint's
// fsync is slow. In any other journal mode (the `baseline` preset: rollback journal) there is nothing to checkpoint:
// the thread only holds the connection. A checkpoint that meets a lock is counted (busy_rounds), logged at Debug and
// tried again by the policy; other SQLite errors are logged and retried the same way. At destruction the thread is
// woken (condition variable), joined, logs its Stats in one line and closes the connection; if it is then the last one,
// SQLite checkpoints and removes the WAL as usual.
//
// Idle. A server at rest should not wake 200 times a second. Handlers commit from other processes, so the keeper
// cannot learn of every commit; it learns of them two ways. A poll that finds the WAL as the previous one left it
// (the same frame count and -wal file size, no checkpoint of another connection running) is quiet; once the WAL has
// been quiet for kQuietBeforeIdle, each quiet poll doubles the wait before the next, up to kIdleCheckpointInterval
// (1 s). A poll that sees the WAL change, or a request that spawnd hands to a handler (note_request(), called by the
// event loop), brings the `checkpoint_interval` poll back at once. So a burst of writes through spawnd is polled
// from its first request, and a commit from outside spawnd (a cron job, the sqlite3 shell) within a second. The
// bound does not depend on it: writers help at 3B/4 whatever the keeper's pace. (A writer that restarts the WAL and
// writes exactly as many frames as it held, between two idle polls, goes unseen until its next change: the WAL is
// small then.)
//
// Threads. All SQLite work happens on the keeper thread, which owns the connection (opened there, used and closed only
// there). The event loop never waits on it: the only calls from other threads are the constructor (which waits for the
// open, at start-up), the destructor/stop() (which wait for at most the round in progress: a PASSIVE checkpoint, or an
// escalation bounded by its busy wait), stats() and note_request() (an atomic load while the keeper polls fast; a mutex
// and a condition variable signal once per idle spell). The thread is named "db-keeper". The thread starts with every
// signal blocked, so SIGTERM and friends keep arriving at the server's signalfd whatever the caller's mask was.
//
// fork(): the connection belongs to this process. A child forked from spawnd must not use or close it (db/database.h);
// CGI children exec at once and SQLite opens its files O_CLOEXEC, so they never see it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "db/database.h"
#include "server/checkpoint_policy.h"

namespace spawnd::server {

// How long the WAL stays unchanged before the keeper starts doubling its wait between polls, and the longest wait
// it doubles up to (README: Data). An interval above the idle one stays as it is.
inline constexpr std::chrono::milliseconds kQuietBeforeIdle{200};
inline constexpr std::chrono::milliseconds kIdleCheckpointInterval{1000};

struct DbKeeperConfig {
  std::string path;                // the database file (absolute); created if missing, its directory is not
  std::string pragmas = "default"; // preset name or .sql file, as SPAWND_PRAGMAS: the same one the handlers use
  // Time between two polls (checkpoint rounds) while the WAL changes: --checkpoint-interval. Values below 1 ms count
  // as 1 ms.
  std::chrono::milliseconds checkpoint_interval{5};
  // The bound (wal_max_bytes, --wal-max-bytes) and the escalations' busy waits.
  CheckpointPolicyConfig policy;

  bool operator==(const DbKeeperConfig&) const = default;
};

// What one checkpoint round did.
struct CheckpointRound {
  db::CheckpointResult passive;        // the PASSIVE checkpoint's frame counts (busy: another checkpoint was running)
  std::int64_t wal_frame_bytes = 0;    // bytes of the frames in the WAL after it (header + frames x (page + 24))
  std::int64_t wal_bytes = -1;         // size of the -wal file after the PASSIVE checkpoint; -1 if there is none
  Escalation escalation = Escalation::None;  // what the policy ran next
  bool is_escalation_busy = false;     // ... and it could not finish within its busy wait
  std::int64_t wal_bytes_after = -1;   // size of the -wal file at the end of the round; -1 if there is none
};

// One round of the keeper's work on `conn`, which must be a connection to a WAL database whose pages are
// `page_bytes` long (PRAGMA page_size, read once: it cannot change in WAL mode): a PASSIVE checkpoint, then
// the escalation `policy` decides on, if any, with `conn`'s busy timeout set to its wait for the time it runs (and
// restored after). A checkpoint stopped by a lock is reported, not thrown. Throws db::DbError for any other SQLite
// error. Blocking; never call it on the event loop. Exposed for tests.
[[nodiscard]] CheckpointRound checkpoint_round(db::Connection& conn, std::int64_t page_bytes, CheckpointPolicy& policy);

class DbKeeper {
 public:
  // Counters since start-up, for the shutdown log line, tests and the benchmark.
  struct Stats {
    std::uint64_t rounds = 0;             // polls run (0 forever when the file is not in WAL mode)
    std::uint64_t checkpoints = 0;        // checkpoints that copied frames or restarted/truncated the WAL
    std::uint64_t frames_backfilled = 0;  // WAL frames the keeper's checkpoints copied into the database
    std::uint64_t restarts = 0;           // RESTART checkpoints that finished
    std::uint64_t truncations = 0;        // TRUNCATE checkpoints that finished
    std::uint64_t busy_rounds = 0;        // rounds where a checkpoint met a lock (PASSIVE or escalation busy)
    std::uint64_t errors = 0;             // rounds that failed with another SQLite error
    std::int64_t wal_bytes = -1;          // the -wal file's size at the last round; -1: none
    std::int64_t wal_bytes_max = 0;       // the largest -wal file size a round saw
  };

  // Starts the keeper thread, which opens the database; returns once it is open. Throws spawnd::Error naming
  // --db and the path if the preset cannot be found or parsed, or the file cannot be opened, created or configured
  // (e.g. its directory does not exist, or the on-create journal_mode did not take).
  explicit DbKeeper(DbKeeperConfig config);
  ~DbKeeper();  // stop()
  DbKeeper(const DbKeeper&) = delete;
  DbKeeper& operator=(const DbKeeper&) = delete;

  // Wakes the thread, waits for the round in progress (if any), logs the Stats, closes the connection and joins.
  // If that close was not the last one (the -wal is still there: a handler process was still attached), it opens
  // and closes the file again every 10 ms, at most 20 times, so that the final checkpoint and the WAL's removal
  // still happen once the straggler has gone. Idempotent.
  void stop() noexcept;

  // A request is being handed to a handler, which may write: if the keeper is idle (polling slower than
  // checkpoint_interval), it polls at checkpoint_interval again from now. Cheap enough for every request: an atomic
  // load unless idle. Any thread (the event loop's).
  void note_request() noexcept;

  // True if the file is in WAL mode, so the keeper checkpoints it.
  [[nodiscard]] bool is_wal() const noexcept { return is_wal_; }
  // The bound in effect, bytes.
  [[nodiscard]] std::int64_t wal_max_bytes() const noexcept { return config_.policy.wal_max_bytes; }
  [[nodiscard]] Stats stats() const;

 private:
  // What a round saw of the WAL, for the poll's pace.
  enum class WalActivity { Changed, Quiet, Unknown };
  void run(db::Connection conn);
  [[nodiscard]] WalActivity run_round(db::Connection& conn, CheckpointPolicy& policy);
  void log_stats() const;

  DbKeeperConfig config_;
  bool is_wal_ = false;               // set before the constructor returns; read-only afterwards
  std::int64_t page_bytes_ = 0;       // PRAGMA page_size, likewise (WAL mode only)
  bool is_failing_ = false;           // keeper thread only: the last escalation was busy (warn once per episode)
  std::uint64_t busy_streak_ = 0;     // keeper thread only: busy escalations in a row
  int last_log_frames_ = 0;           // keeper thread only: the previous PASSIVE's frame counts, for frames_backfilled
  int last_checkpointed_frames_ = 0;
  std::int64_t last_wal_bytes_ = -2;  // keeper thread only: the -wal file's size at the end of the previous round
                                      // (-2: no round yet, so the first one counts as a change)

  mutable std::mutex mutex_;          // guards stop_requested_, has_request_ and stats_
  std::condition_variable wake_;
  bool stop_requested_ = false;
  bool has_request_ = false;          // note_request() woke an idle keeper
  std::atomic<bool> is_idle_{false};  // the keeper waits longer than checkpoint_interval between polls
  Stats stats_;
  std::thread thread_;
};

// The keepers of one process, at most one per database file and settings. A reload's new configuration takes the
// keeper of the configuration it replaces, and sites naming the same file share one, rather than each opening a
// connection of its own. Why: SQLite's unix VFS cannot close a database file descriptor while another connection of
// the same process holds a POSIX lock on that file (closing it would drop the process's locks), so it keeps the fd
// until no connection of the process holds a lock; in WAL mode every open connection holds one, and a keeper is
// always open: every keeper retired next to a newer one would leave an fd behind for good. (A reload that changes
// the preset, --checkpoint-interval or --wal-max-bytes of a file still gets a keeper of its own.) Event loop
// thread only.
class DbKeepers {
 public:
  // The live keeper whose configuration equals `config`, or a new one (kept only as long as a caller holds it).
  // Throws as DbKeeper's constructor.
  [[nodiscard]] std::shared_ptr<DbKeeper> get(const DbKeeperConfig& config);

 private:
  std::vector<std::pair<DbKeeperConfig, std::weak_ptr<DbKeeper>>> keepers_;
};

}  // namespace spawnd::server
