// bench/report.h — from runs to what a reader sees: per-target summaries, the table, results.md and chart.svg.
//
// A Summary folds the repetitions of one target: the median requests per second with min–max (wrk's rate; with
// --rate the achieved rate; with --sweep the max sustainable rate), the median of each latency percentile, the median server CPU per request, the sums of errors, and the ratio of the median to the
// limit row of the same workload (the raw posix_spawn+wait rate of the same handler). Pure functions of their
// inputs; the driver writes the strings to stdout and to bench/results/<timestamp>/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/runner.h"
#include "bench/stats.h"
#include "bench/sweep.h"

namespace spawnd::bench {

struct Summary {
  Target target;
  Spread rps;                        // requests (or, for the limit, spawns) per second over the repetitions
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p99_9_ms = 0;  // medians over the repetitions
  double cpu_us_per_request = 0;     // median server CPU (process tree) per request
  bool is_cpu_complete = true;       // false if any repetition's CPU misses auto-reaped children (a lower bound)
  std::int64_t socket_errors = 0;    // summed over the repetitions
  std::int64_t non_2xx_3xx = 0;      // summed over the repetitions
  std::optional<double> ratio_to_limit;  // rps.median / the limit's median for this workload
  int write_checks = 0;              // repetitions whose rows were counted
  int write_checks_ok = 0;           // ... and were right (WriteCheck::is_ok)
  std::int64_t wal_bytes_max = 0;  // write runs: the largest -wal file seen in any of them (WriteCheck), bytes
  std::optional<double> offered_rps; // --rate: the open loop's offered rate
  std::int64_t late_sends = 0;       // --rate, --sweep: summed over the repetitions (a sweep: its best step's)
  std::optional<SweepResult> sweep;  // --sweep: the sweep of the first repetition, for the chart; its percentiles
                                     // (p50_ms ...) are those of the best passing step

  [[nodiscard]] bool is_limit() const { return target.server == "limit"; }
  [[nodiscard]] nlohmann::json to_json() const;
};

// One Summary per target that has runs, in the order of `targets`.
[[nodiscard]] std::vector<Summary> summarize(const std::vector<RunResult>& runs, const std::vector<Target>& targets);

// The table for stdout: one row per summary, grouped by workload and concurrency.
[[nodiscard]] std::string format_table(const std::vector<Summary>& summaries);
// The same table in Markdown (for results.md and the README).
[[nodiscard]] std::string format_markdown_table(const std::vector<Summary>& summaries);
// chart.svg: requests per second per target (median bar, min–max whisker), grouped by workload and concurrency, each
// group on its own log scale (so a CGI row of hundreds of req/s shows next to a FastCGI row of tens of thousands),
// with the workload's limit row as the reference, and a latency percentile plot (p50, p90, p99, p99.9 on a log
// scale) for each group. With sweeps, a panel per target of latency percentiles (log scale) against the offered
// rate, with the objective and the max sustainable rate marked (the knee); with closed-loop runs at two or more
// concurrency levels, a panel per workload of req/s against concurrency (log scale). `title` and `subtitle` head
// it (date; machine).
[[nodiscard]] std::string render_chart_svg(const std::vector<Summary>& summaries, const std::string& title,
                                           const std::string& subtitle);

}  // namespace spawnd::bench
