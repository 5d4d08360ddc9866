// server/checkpoint_policy.cpp — CheckpointPolicy: the keeper's escalation after each PASSIVE checkpoint.
#include "server/checkpoint_policy.h"

#include <algorithm>

namespace spawnd::server {

CheckpointPolicy::CheckpointPolicy(CheckpointPolicyConfig config) : config_(config) {
  config_.wal_max_bytes = std::max<std::int64_t>(config_.wal_max_bytes, 1);
  config_.backoff_polls = std::max(config_.backoff_polls, 0);
}

CheckpointDecision CheckpointPolicy::after_passive(std::int64_t wal_frame_bytes, std::int64_t wal_file_bytes) {
  if (backoff_left_ > 0) {
    --backoff_left_;
    return {};
  }
  // The file itself near the bound: only TRUNCATE shrinks it.
  if (wal_file_bytes > truncate_bytes()) return {Escalation::Truncate, config_.truncate_wait};
  if (wal_frame_bytes >= restart_bytes()) return {Escalation::Restart, config_.restart_wait};
  return {};
}

void CheckpointPolicy::on_escalation(Escalation escalation, bool is_busy) {
  if (escalation != Escalation::None && is_busy) backoff_left_ = config_.backoff_polls;
}

}  // namespace spawnd::server
