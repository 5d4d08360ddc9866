// server/checkpoint_policy.h — how hard the database keeper checkpoints after each poll: a pure decision (no SQLite,
// no clock, no I/O), so that its thresholds, escalation and busy fallback are unit-tested on their own.
//
// The keeper (server/db_keeper.h) polls every --checkpoint-interval (default 5 ms; slower while the WAL is idle, see
// db_keeper.h). Each poll starts with a PASSIVE checkpoint, which copies into the database every WAL frame no reader
// still needs, waits for nobody, and costs a few lock calls when there is nothing to copy. Its result (frames in the
// WAL, frames backfilled) and the -wal file's size are what this policy sees. PASSIVE alone never bounds the WAL under
// sustained writes: SQLite starts the WAL again from its beginning only when a writer begins while EVERY frame is
// backfilled and no reader holds a read mark, and writers that keep appending while a checkpoint runs never leave it
// fully backfilled. So, with B = wal_max_bytes:
//  - the WAL's frames take B/2 bytes or more: a RESTART checkpoint with a short busy wait (restart_wait). It waits
//    for the writer, copies the few frames the PASSIVE left, and waits for readers, so the next writer restarts the
//    WAL at frame 1 (the file keeps its size and is overwritten, which is cheaper for writers than regrowing it);
//  - the -wal FILE is past 3B/4 (it grew without us: a burst before the keeper started, writers without the bound):
//    a TRUNCATE checkpoint, which also cuts the file to 0 bytes, with a longer wait (truncate_wait);
//  - after an escalation that met SQLITE_BUSY (a long reader, the writer held the lock past the wait), the next
//    `backoff_polls` polls stay PASSIVE, so that a stuck reader costs writers one short wait per backoff, not one
//    per poll.
// Writers wait while a RESTART or TRUNCATE runs (they are FULL checkpoints: they hold the write lock), so the waits
// are kept short; the hard part of the bound is the writers' own backstop at 3B/4 (db::Connection::set_wal_max_bytes).
#pragma once

#include <chrono>
#include <cstdint>

namespace spawnd::server {

struct CheckpointPolicyConfig {
  std::int64_t wal_max_bytes = 16 * 1024 * 1024;  // B, bytes: the -wal file's bound (--wal-max-bytes)
  std::chrono::milliseconds restart_wait{5};      // busy wait of a RESTART checkpoint
  std::chrono::milliseconds truncate_wait{50};    // busy wait of a TRUNCATE checkpoint
  int backoff_polls = 4;                          // PASSIVE-only polls after a busy RESTART or TRUNCATE

  bool operator==(const CheckpointPolicyConfig&) const = default;
};

enum class Escalation {
  None,      // the PASSIVE checkpoint was enough
  Restart,   // PRAGMA wal_checkpoint(RESTART)
  Truncate,  // PRAGMA wal_checkpoint(TRUNCATE)
};

struct CheckpointDecision {
  Escalation escalation = Escalation::None;
  std::chrono::milliseconds busy_wait{0};  // the escalation's busy timeout; 0 with Escalation::None
};

class CheckpointPolicy {
 public:
  explicit CheckpointPolicy(CheckpointPolicyConfig config);

  // After a poll's PASSIVE checkpoint. `wal_frame_bytes`: the bytes of the frames in the WAL (32 + frames x (page
  // size + 24)); 0 when the WAL is empty or the PASSIVE could not say (busy). `wal_file_bytes`: the -wal file's
  // size, -1 if there is none. Returns what to run next; call on_escalation() with its outcome.
  [[nodiscard]] CheckpointDecision after_passive(std::int64_t wal_frame_bytes, std::int64_t wal_file_bytes);
  // The escalation after_passive() asked for finished (`is_busy` false) or met a lock it did not outwait.
  void on_escalation(Escalation escalation, bool is_busy);

  [[nodiscard]] std::int64_t restart_bytes() const noexcept { return config_.wal_max_bytes / 2; }
  [[nodiscard]] std::int64_t truncate_bytes() const noexcept { return config_.wal_max_bytes / 4 * 3; }
  [[nodiscard]] const CheckpointPolicyConfig& config() const noexcept { return config_; }

 private:
  CheckpointPolicyConfig config_;
  int backoff_left_ = 0;  // polls still PASSIVE-only after a busy escalation
};

}  // namespace spawnd::server
