// bench/wrk_report.h — what one wrk run measured, read from wrk's output.
//
// wrk prints its human summary, and then whatever the script's done() hook writes: bench/wrk/report.lua writes one
// line "SPAWND_BENCH_JSON {...}" with the exact counts and percentiles (wrk's own text rounds them and varies its
// units). parse_wrk_output() finds that line and reads it; the human text around it is ignored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace spawnd::bench {

// The marker report.lua puts in front of its JSON line.
inline constexpr std::string_view kReportMarker = "SPAWND_BENCH_JSON ";

struct WrkReport {
  std::int64_t requests = 0;      // responses completed within the duration (any status)
  double duration_s = 0;          // as wrk measured it
  std::int64_t bytes = 0;         // bytes read, heads included
  std::int64_t connect_errors = 0, read_errors = 0, write_errors = 0, timeouts = 0;  // wrk's "Socket errors"
  std::int64_t non_2xx_3xx = 0;   // responses with a status of 400 or more (wrk's "Non-2xx or 3xx responses")
  double latency_min_ms = 0, latency_mean_ms = 0, latency_max_ms = 0, latency_stdev_ms = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p99_9_ms = 0;
  std::int64_t posts_sent = 0;    // POSTs the script started (some may be unanswered when wrk stops)
  std::int64_t posts_ok = 0;      // POSTs answered 303

  [[nodiscard]] double requests_per_second() const { return duration_s > 0 ? static_cast<double>(requests) / duration_s : 0; }
  [[nodiscard]] std::int64_t socket_errors() const { return connect_errors + read_errors + write_errors + timeouts; }
};

// Reads the report line out of wrk's whole stdout. Throws std::runtime_error saying what is wrong if there is no
// such line (wrk failed, or ran without report.lua) or its JSON lacks a field.
[[nodiscard]] WrkReport parse_wrk_output(std::string_view output);

}  // namespace spawnd::bench
