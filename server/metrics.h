// server/metrics.h — the request counters behind the status page (status_page.h), in Prometheus terms.
//
// One SiteMetrics per site (today one, named "default"; with virtual hosts, one per site, owned beside it). A
// response is counted once, when the access log records it (Connection::on_response_written): by what answered it
// (ServedBy, the `mode` label), its status class and its duration, from the end of the request head (or, for a
// head that never parsed, from the error) to the last byte handed to the socket. Counting is a few additions on the
// loop thread: no atomics, no locks, no allocation. What is a level rather than a count (connections open, handler
// processes running, requests queued, the database keeper's figures) is not kept here: the status page reads it
// from its owner when it is scraped.
//
// Reloads. The gateways and database keepers belong to one configuration generation (site.h) and count from zero;
// the counters they report (spawn failures, queue refusals, checkpoints...) must go on for the life of the process
// (Prometheus counters are monotonic). So when a retired generation is destroyed, what its gateways and keepers
// counted is added to the SiteMetrics of their site (add_retired()), which outlives every generation; the status
// page adds it to what the live generations report.
//
// Loop thread only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "server/db_keeper.h"
#include "server/gateway/gateway.h"

namespace spawnd::server {

// Upper bounds of spawnd_request_duration_seconds's buckets, in nanoseconds: the Prometheus client libraries'
// default buckets (0.005 s … 10 s); the last bucket, +Inf, is implicit.
inline constexpr std::array<std::int64_t, 11> kDurationBucketsNs{
    5'000'000, 10'000'000, 25'000'000, 50'000'000, 100'000'000, 250'000'000,
    500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};

class SiteMetrics {
 public:
  // What one mode of one site has answered.
  struct ModeCounters {
    std::array<std::uint64_t, 5> by_class{};  // responses by status class: [0] 1xx (never: final responses only),
                                              // [1] 2xx … [4] 5xx
    // Requests per duration bucket, NOT cumulative ([i]: at most kDurationBucketsNs[i] and more than [i-1]; the
    // last: beyond every bound). The status page sums them into Prometheus's cumulative `le` buckets.
    std::array<std::uint64_t, kDurationBucketsNs.size() + 1> by_bucket{};
    std::uint64_t count = 0;
    std::int64_t duration_ns = 0;  // sum of the durations
  };

  // `name`: the `site` label ("default" when there is one site).
  explicit SiteMetrics(std::string name) : name_(std::move(name)) {}

  // Counts one response with `status` (100-599; others count as 5xx) from `mode`, `duration_ns` long.
  void record(ServedBy mode, int status, std::int64_t duration_ns) noexcept {
    ModeCounters& c = modes_[static_cast<std::size_t>(mode)];
    const int status_class = status / 100;
    c.by_class[status_class >= 1 && status_class <= 5 ? static_cast<std::size_t>(status_class - 1) : 4] += 1;
    std::size_t bucket = 0;
    while (bucket < kDurationBucketsNs.size() && duration_ns > kDurationBucketsNs[bucket]) ++bucket;
    c.by_bucket[bucket] += 1;
    c.count += 1;
    c.duration_ns += duration_ns;
  }

  // Counts one request of this site answered 503 because its body did not fit in the request buffers
  // (--max-buffered-body-bytes).
  void count_rejected_body_buffers() noexcept { ++rejected_body_buffers_; }
  [[nodiscard]] std::uint64_t rejected_body_buffers() const noexcept { return rejected_body_buffers_; }

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const ModeCounters& mode(ServedBy mode) const noexcept {
    return modes_[static_cast<std::size_t>(mode)];
  }

  // Adds the counters of `load` (queue_full, queue_timeout, spawn_failures; not its gauges), reported by a gateway
  // of `mode` of this site in a configuration that is being destroyed.
  void add_retired(ServedBy mode, const GatewayLoad& load) noexcept { add_counters(retired_load_[index(mode)], load); }
  // Adds the counters of a database keeper of this site that is being destroyed (and its largest WAL).
  void add_retired(const DbKeeper::Stats& db) noexcept { add_counters(retired_db_, db); }
  // What add_retired() summed: counters only, the gauges are 0 (wal_bytes: -1).
  [[nodiscard]] const GatewayLoad& retired(ServedBy mode) const noexcept { return retired_load_[index(mode)]; }
  [[nodiscard]] const DbKeeper::Stats& retired_db() const noexcept { return retired_db_; }

  // `into` plus the counters of `from`; gauges stay `into`'s (wal_bytes_max: the larger).
  static void add_counters(GatewayLoad& into, const GatewayLoad& from) noexcept {
    into.queue_full += from.queue_full;
    into.queue_timeout += from.queue_timeout;
    into.spawn_failures += from.spawn_failures;
  }
  static void add_counters(DbKeeper::Stats& into, const DbKeeper::Stats& from) noexcept {
    into.rounds += from.rounds;
    into.checkpoints += from.checkpoints;
    into.frames_backfilled += from.frames_backfilled;
    into.restarts += from.restarts;
    into.truncations += from.truncations;
    into.busy_rounds += from.busy_rounds;
    into.errors += from.errors;
    if (from.wal_bytes_max > into.wal_bytes_max) into.wal_bytes_max = from.wal_bytes_max;
  }

 private:
  [[nodiscard]] static std::size_t index(ServedBy mode) noexcept { return static_cast<std::size_t>(mode); }

  std::string name_;
  std::uint64_t rejected_body_buffers_ = 0;
  std::array<ModeCounters, kServedByCount> modes_{};
  std::array<GatewayLoad, kServedByCount> retired_load_{};
  DbKeeper::Stats retired_db_;
};

// The server-wide counters: the sites', and the 503s spawnd sends before it knows a request's site.
struct Metrics {
  std::vector<std::unique_ptr<SiteMetrics>> sites;  // stable addresses: connections keep pointers
  std::uint64_t rejected_connections = 0;  // connections over --max-connections, answered 503 and closed unread

  // Adds a site's counters and returns them.
  SiteMetrics& add_site(std::string name) {
    sites.push_back(std::make_unique<SiteMetrics>(std::move(name)));
    return *sites.back();
  }
};

// CLOCK_MONOTONIC in nanoseconds, for request durations (vDSO: no system call).
[[nodiscard]] inline std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace spawnd::server
