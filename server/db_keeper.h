// server/db_keeper.h — the front end's own connection to --db: held for the process's life, and WAL checkpoints.
//
// Why. In CGI and fork-server mode every request opens and closes its own connection. When a connection to a WAL
// database closes and it is the LAST one, SQLite checkpoints the whole WAL into the database file and deletes the
// -wal and -shm files, so every request whose close happened to be the last paid for a checkpoint, and the next one
// re-created both files. DbKeeper keeps one connection open for as long as spawnd runs, so no handler's close is ever
// the last, and it takes checkpointing off the request path: handlers run with wal_autocheckpoint=0 (the WAL presets
// set it, see pragmas/README.md) and the keeper checkpoints on its own thread.
//
// What it does. The constructor opens the database with the configured preset on the keeper thread, creating the
// file and applying the on-create PRAGMAs (so the file exists, in WAL mode, before the first handler runs), and
// waits for that open to finish. Then, if the file is in WAL mode, the thread runs one checkpoint round every
// `checkpoint_interval` (checkpoint_round() below): a PASSIVE checkpoint, which copies what it can without waiting
// for anyone, and, when the -wal file has grown past `wal_limit_bytes`, a TRUNCATE checkpoint, which waits (at most
// `truncate_wait`) for readers to leave the WAL and then cuts it to 0 bytes. Without that, a steady stream of
// readers that always hold some part of the WAL would keep any writer from restarting it, and it would grow without
// bound. In any other journal mode (the `baseline` preset: rollback journal) there is nothing to checkpoint: the
// thread only holds the connection. A checkpoint that meets a lock is logged (Debug; Warn when a TRUNCATE the
// WAL needs keeps failing) and tried again next round; other SQLite errors are logged and retried the same way. At
// destruction the thread is woken (condition variable), joined, and closes the connection; if it is then the last
// one, SQLite checkpoints and removes the WAL as usual.
//
// Threads. All SQLite work happens on the keeper thread, which owns the connection (opened there, used and closed
// only there). The event loop never waits on it: the only calls from other threads are the constructor (which waits
// for the open, at start-up), the destructor/stop() (which wait for at most the round in progress: a PASSIVE
// checkpoint, or a TRUNCATE bounded by truncate_wait) and stats(). The thread starts with every signal blocked, so
// SIGTERM and friends keep arriving at the server's signalfd whatever the caller's mask was.
//
// fork(): the connection belongs to this process. A child forked from spawnd must not use or close it (db/database.h);
// CGI children exec at once and SQLite opens its files O_CLOEXEC, so they never see it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "db/database.h"

namespace spawnd::server {

struct DbKeeperConfig {
  std::string path;                // the database file (absolute); created if missing, its directory is not
  std::string pragmas = "default"; // preset name or .sql file, as SPAWND_PRAGMAS: the same one the handlers use
  // Time between two checkpoint rounds. Values below 1 ms count as 1 ms.
  std::chrono::milliseconds checkpoint_interval{1000};
  // A -wal file larger than this many bytes after the PASSIVE checkpoint gets a TRUNCATE checkpoint. -1: the
  // preset's journal_size_limit, or kDefaultWalLimitBytes if the preset sets none (journal_size_limit < 0).
  std::int64_t wal_limit_bytes = -1;
  // How long a TRUNCATE checkpoint may wait for the writer and for readers (the keeper connection's busy_timeout).
  // While it waits, new writers wait too, so keep it short.
  std::chrono::milliseconds truncate_wait{200};
};

// What one checkpoint round did.
struct CheckpointRound {
  db::CheckpointResult passive;        // the PASSIVE checkpoint's frame counts (busy: another checkpoint was running)
  std::int64_t wal_bytes = -1;         // size of the -wal file after the PASSIVE checkpoint; -1 if there is none
  bool is_truncate_tried = false;      // wal_bytes exceeded the limit, so a TRUNCATE checkpoint ran
  bool is_truncate_busy = false;       // ... and it could not finish within the connection's busy_timeout
  std::int64_t wal_bytes_after = -1;   // size of the -wal file at the end of the round; -1 if there is none
};

// One round of the keeper's work on `conn`, which must be a connection to a WAL database: a PASSIVE checkpoint, then
// a TRUNCATE checkpoint if the -wal file (`conn.path()` + "-wal") is larger than `wal_limit_bytes` (>= 0). A
// TRUNCATE waits for locks up to `conn`'s busy_timeout. A checkpoint stopped by a lock is reported, not thrown.
// Throws db::DbError for any other SQLite error. Blocking; never call it on the event loop. Exposed for tests.
[[nodiscard]] CheckpointRound checkpoint_round(db::Connection& conn, std::int64_t wal_limit_bytes);

class DbKeeper {
 public:
  // Used for wal_limit_bytes when neither the config nor the preset gives a limit: 64 MiB, as the WAL presets.
  static constexpr std::int64_t kDefaultWalLimitBytes = 64 * 1024 * 1024;

  // Counters since start-up, for tests and logging.
  struct Stats {
    std::uint64_t rounds = 0;          // checkpoint rounds run (0 forever when the file is not in WAL mode)
    std::uint64_t busy_rounds = 0;     // rounds where a checkpoint met a lock (PASSIVE busy or TRUNCATE busy)
    std::uint64_t truncations = 0;     // TRUNCATE checkpoints that finished
    std::uint64_t errors = 0;          // rounds that failed with another SQLite error
  };

  // Starts the keeper thread, which opens the database; returns once it is open. Throws spawnd::Error naming
  // --db and the path if the preset cannot be found or parsed, or the file cannot be opened, created or configured
  // (e.g. its directory does not exist, or the on-create journal_mode did not take).
  explicit DbKeeper(DbKeeperConfig config);
  ~DbKeeper();  // stop()
  DbKeeper(const DbKeeper&) = delete;
  DbKeeper& operator=(const DbKeeper&) = delete;

  // Wakes the thread, waits for the round in progress (if any), closes the connection and joins. Idempotent.
  void stop() noexcept;

  // True if the file is in WAL mode, so the keeper checkpoints it.
  [[nodiscard]] bool is_wal() const noexcept { return is_wal_; }
  // The WAL size limit in effect (after resolving -1 from the preset).
  [[nodiscard]] std::int64_t wal_limit_bytes() const noexcept { return wal_limit_bytes_; }
  [[nodiscard]] Stats stats() const;

 private:
  void run(db::Connection conn);
  void run_round(db::Connection& conn);

  DbKeeperConfig config_;
  bool is_wal_ = false;               // set before the constructor returns; read-only afterwards
  std::int64_t wal_limit_bytes_ = -1; // likewise
  bool is_truncate_failing_ = false;  // keeper thread only: the last TRUNCATE was busy (warn once per episode)

  mutable std::mutex mutex_;          // guards stop_requested_ and stats_
  std::condition_variable wake_;
  bool stop_requested_ = false;
  Stats stats_;
  std::thread thread_;
};

}  // namespace spawnd::server
