// bench/sweep.cpp — the rate sweep (bench/sweep.h).
#include "bench/sweep.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace spawnd::bench {

SweepStep judge_step(OpenLoopReport report, const SweepSpec& spec) {
  SweepStep s;
  char buf[160];
  const double p99 = report.latency_ms(99);
  if (report.error_ratio() > spec.max_error_ratio) {
    std::snprintf(buf, sizeof buf, "errors %.2f %% > %.2f %%", 100 * report.error_ratio(), 100 * spec.max_error_ratio);
    s.verdict = buf;
  } else if (p99 > spec.slo_p99_ms) {
    std::snprintf(buf, sizeof buf, "p99 %.1f ms > %.0f ms", p99, spec.slo_p99_ms);
    s.verdict = buf;
  } else {
    s.is_pass = true;
    s.verdict = "pass";
  }
  // A generator that fell behind only adds latency (it is charged from the due time), so a pass stands, with the
  // warning noted. A failure may be the generator's own when its thread was saturated, or when it failed on p99
  // alone and p99 less the generator's own lag at p99 would have met the objective: then it is inconclusive.
  const double own_lag_p99_ms = static_cast<double>(report.release_lag_us.value_at_percentile(99)) / 1000.0;
  const bool is_lag_enough = report.error_ratio() <= spec.max_error_ratio && own_lag_p99_ms > 0 &&
                             p99 - own_lag_p99_ms <= spec.slo_p99_ms;
  s.is_inconclusive = !s.is_pass && (report.is_generator_saturated() || is_lag_enough);
  if (s.is_inconclusive) {
    if (report.is_generator_saturated())
      std::snprintf(buf, sizeof buf, " (inconclusive: the generator used 90 %% of a core)");
    else
      std::snprintf(buf, sizeof buf, " (inconclusive: the generator's own lag, %.1f ms at p99, explains it)",
                    own_lag_p99_ms);
    s.verdict += buf;
  } else if (!report.warnings.empty()) {
    s.verdict += " (note: " + report.warnings.front() + ")";
  }
  s.report = std::move(report);
  return s;
}

SweepResult run_sweep(const SweepSpec& spec, const std::function<OpenLoopReport(double rate)>& run_step,
                      bool (*stop_early)()) {
  SweepResult r;
  r.slo_p99_ms = spec.slo_p99_ms;
  double pass = 0, fail = 0;  // the highest passing and the lowest failing rate so far; 0: none yet
  double rate = std::min(spec.start_rps, spec.max_rps);
  bool is_retry = false;
  while (true) {
    if (static_cast<int>(r.steps.size()) >= spec.max_steps) {
      r.ended_because = "max steps (" + std::to_string(spec.max_steps) + ")";
      break;
    }
    if (stop_early && stop_early()) {
      r.ended_because = "interrupted";
      break;
    }
    r.steps.push_back(judge_step(run_step(rate), spec));
    const SweepStep& step = r.steps.back();
    // A stall of the machine is often brief: an inconclusive step is run once more before it ends the sweep.
    if (step.is_inconclusive && !is_retry) {
      is_retry = true;
      continue;
    }
    is_retry = false;
    if (step.is_inconclusive) {
      r.ended_because = "the load generator could not keep up at " + std::to_string(std::lround(rate)) + " req/s";
      break;
    }
    if (step.is_pass)
      pass = std::max(pass, rate);
    else
      fail = fail == 0 ? rate : std::min(fail, rate);
    if (fail == 0) {  // still ramping
      if (rate >= spec.max_rps) {
        r.ended_because = "passed at --max-rps";
        break;
      }
      rate = std::min(rate * spec.growth, spec.max_rps);
      continue;
    }
    if (pass == 0) {  // the first step already failed: look lower, down to a tenth of the start
      if (rate <= spec.start_rps / 10) {
        r.ended_because = "failed even at " + std::to_string(std::lround(rate)) + " req/s";
        break;
      }
      rate = rate / spec.growth;
      continue;
    }
    if ((fail - pass) / pass <= spec.resolution) {
      r.ended_because = "resolution reached";
      break;
    }
    rate = std::round((pass + fail) / 2);
  }
  r.max_sustainable_rps = pass;
  return r;
}

const SweepStep* SweepResult::best() const {
  const SweepStep* b = nullptr;
  for (const SweepStep& s : steps)
    if (s.is_pass && (!b || s.report.offered_rps > b->report.offered_rps)) b = &s;
  return b;
}

nlohmann::json SweepResult::to_json() const {
  nlohmann::json j = {{"max_sustainable_rps", max_sustainable_rps}, {"ended_because", ended_because},
                      {"slo_p99_ms", slo_p99_ms},                       {"steps", nlohmann::json::array()}};
  for (const SweepStep& s : steps) {
    nlohmann::json step = s.report.to_json();
    step["pass"] = s.is_pass;
    step["verdict"] = s.verdict;
    step["inconclusive"] = s.is_inconclusive;
    j["steps"].push_back(std::move(step));
  }
  return j;
}

}  // namespace spawnd::bench
