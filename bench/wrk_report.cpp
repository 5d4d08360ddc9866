// bench/wrk_report.cpp — reads report.lua's JSON line out of wrk's output (bench/wrk_report.h).
#include "bench/wrk_report.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace spawnd::bench {

namespace {

// The line that starts with the marker, without the marker; empty if there is none.
std::string_view report_line(std::string_view output) {
  size_t pos = 0;
  while (pos < output.size()) {
    size_t end = output.find('\n', pos);
    if (end == std::string_view::npos) end = output.size();
    std::string_view line = output.substr(pos, end - pos);
    if (line.starts_with(kReportMarker)) return line.substr(kReportMarker.size());
    pos = end + 1;
  }
  return {};
}

// Microseconds to milliseconds. A negative value is wrk's "no sample" (min stays at INT64_MIN when every request timed
// out, as recorded in bench/tests/fixtures/wrk_timeouts.txt): 0.
double us_to_ms(const nlohmann::json& v) { return std::max(v.get<double>(), 0.0) / 1000.0; }

}  // namespace

WrkReport parse_wrk_output(std::string_view output) {
  std::string_view line = report_line(output);
  if (line.empty())
    throw std::runtime_error("wrk printed no " + std::string(kReportMarker) + "line (did it fail to start?): " +
                             std::string(output.substr(0, 400)));
  try {
    const auto j = nlohmann::json::parse(line);
    WrkReport r;
    r.requests = j.at("requests").get<std::int64_t>();
    r.duration_s = j.at("duration_us").get<double>() / 1e6;
    r.bytes = j.at("bytes").get<std::int64_t>();
    const auto& e = j.at("errors");
    r.connect_errors = e.at("connect").get<std::int64_t>();
    r.read_errors = e.at("read").get<std::int64_t>();
    r.write_errors = e.at("write").get<std::int64_t>();
    r.non_2xx_3xx = e.at("status").get<std::int64_t>();
    r.timeouts = e.at("timeout").get<std::int64_t>();
    const auto& l = j.at("latency_us");
    r.latency_min_ms = us_to_ms(l.at("min"));
    r.latency_mean_ms = us_to_ms(l.at("mean"));
    r.latency_max_ms = us_to_ms(l.at("max"));
    r.latency_stdev_ms = us_to_ms(l.at("stdev"));
    r.p50_ms = us_to_ms(l.at("p50"));
    r.p90_ms = us_to_ms(l.at("p90"));
    r.p99_ms = us_to_ms(l.at("p99"));
    r.p99_9_ms = us_to_ms(l.at("p99_9"));
    r.posts_sent = j.at("posts").at("sent").get<std::int64_t>();
    r.posts_ok = j.at("posts").at("ok").get<std::int64_t>();
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("wrk report line: " + std::string(e.what()) + ": " + std::string(line.substr(0, 400)));
  }
}

}  // namespace spawnd::bench
