// tests/unit/test_checkpoint_policy.cpp — the keeper's escalation decisions (server/checkpoint_policy.h): thresholds,
// escalation, and the PASSIVE-only back-off after a busy one. Pure: no SQLite, no clock.
#include <catch2/catch.hpp>

#include <chrono>

#include "server/checkpoint_policy.h"

using spawnd::server::CheckpointDecision;
using spawnd::server::CheckpointPolicy;
using spawnd::server::CheckpointPolicyConfig;
using spawnd::server::Escalation;
using namespace std::chrono_literals;

namespace {
constexpr std::int64_t kB = 16 * 1024 * 1024;
}

TEST_CASE("CheckpointPolicy: PASSIVE below B/2, RESTART from B/2 of frames, TRUNCATE when the file passed 3B/4",
          "[unit][db]") {
  CheckpointPolicy policy(CheckpointPolicyConfig{});
  CHECK(policy.restart_bytes() == kB / 2);
  CHECK(policy.truncate_bytes() == kB / 4 * 3);
  struct Case {
    std::int64_t frame_bytes, file_bytes;
    Escalation escalation;
    std::chrono::milliseconds wait;
  } cases[] = {
      {0, -1, Escalation::None, 0ms},                       // no WAL at all
      {0, kB / 2, Escalation::None, 0ms},                   // a big file, but everything backfilled and restarted
      {kB / 2 - 1, kB / 2, Escalation::None, 0ms},          // one byte short
      {kB / 2, kB / 2, Escalation::Restart, 5ms},           // the RESTART threshold, with its short wait
      {kB / 4 * 3, kB / 4 * 3, Escalation::Restart, 5ms},   // the file AT 3B/4 is not past it
      {kB / 4 * 3, kB / 4 * 3 + 1, Escalation::Truncate, 50ms},
      {0, kB * 2, Escalation::Truncate, 50ms},              // a file left oversized (a burst before spawnd started)
  };
  for (const Case& c : cases) {
    CAPTURE(c.frame_bytes, c.file_bytes);
    CheckpointDecision d = policy.after_passive(c.frame_bytes, c.file_bytes);
    CHECK(d.escalation == c.escalation);
    CHECK(d.busy_wait == c.wait);
    if (d.escalation != Escalation::None) policy.on_escalation(d.escalation, false);
  }
}

TEST_CASE("CheckpointPolicy: after a busy escalation, the next backoff_polls polls stay PASSIVE", "[unit][db]") {
  const auto busy = GENERATE(Escalation::Restart, Escalation::Truncate);
  CheckpointPolicy policy(CheckpointPolicyConfig{.backoff_polls = 4});
  const std::int64_t frames = busy == Escalation::Restart ? kB / 2 : 0;
  const std::int64_t file = busy == Escalation::Restart ? kB / 2 : kB;
  REQUIRE(policy.after_passive(frames, file).escalation == busy);
  policy.on_escalation(busy, true);
  for (int i = 0; i < 4; ++i) CHECK(policy.after_passive(kB, kB).escalation == Escalation::None);
  CHECK(policy.after_passive(frames, file).escalation == busy);  // and then it tries again
  policy.on_escalation(busy, false);                              // a success sets no back-off
  CHECK(policy.after_passive(frames, file).escalation == busy);
}

TEST_CASE("CheckpointPolicy: the waits and the bound come from the config", "[unit][db]") {
  CheckpointPolicy policy(CheckpointPolicyConfig{.wal_max_bytes = 1000, .restart_wait = 7ms, .truncate_wait = 70ms});
  CHECK(policy.after_passive(500, 500).busy_wait == 7ms);
  CHECK(policy.after_passive(0, 751).busy_wait == 70ms);
  CHECK(CheckpointPolicy(CheckpointPolicyConfig{.wal_max_bytes = 0}).config().wal_max_bytes == 1);  // never 0
}
