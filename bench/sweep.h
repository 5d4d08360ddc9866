// bench/sweep.h — a rate sweep: the highest constant rate a server sustains within a latency objective.
//
// Steps of the open-loop generator (bench/load_generator.h) at rising rates: a coarse ramp from `start_rps`,
// multiplying by `growth` while the steps pass, then, once one fails, a bisection between the highest passing and
// the lowest failing rate until they are within `resolution` of each other. A step passes when its p99 (from the
// intended send times) is at most `slo_p99_ms` and its errors plus non-2xx/3xx responses are at most
// `max_error_ratio` of the requests due. A failed step is inconclusive, and ends the sweep, when the failure may be
// the generator's own: its thread used 90 % of a core, or the step failed on p99 alone and its p99 less the
// generator's own release lag at p99 (OpenLoopReport::release_lag_us) meets the objective; such a step is run once
// more at the same rate first, as a machine's stall is often brief. (A step that passes
// despite a late generator stands: latency is charged from the due times, so a late generator only makes it look
// worse.) The sweep is bounded by
// `max_steps`; each step lasts step_s (plus at most its drain). The result, `max_sustainable_rps`, is the highest
// offered rate that passed (0 if none did).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/load_generator.h"

namespace spawnd::bench {

struct SweepSpec {
  double start_rps = 100;       // the first step's rate
  double growth = 2;            // the coarse ramp's factor, > 1
  double resolution = 0.05;     // bisect until (fail - pass) / pass <= this
  int max_steps = 12;
  double step_s = 2;            // each step's schedule
  double slo_p99_ms = 100;
  double max_error_ratio = 0.001;
  double max_rps = 1e6;         // never offered more than this
};

struct SweepStep {
  OpenLoopReport report;
  bool is_pass = false;
  bool is_inconclusive = false; // failed, but the generator may be the cause (see above); ends the sweep
  std::string verdict;          // "pass", or why not: "p99 312 ms > 100 ms", "errors 2.1 % > 0.1 %", ...; then,
                                // in parentheses, why it is inconclusive or the generator's first warning
};

struct SweepResult {
  std::vector<SweepStep> steps;      // in the order run
  double max_sustainable_rps = 0;    // the highest passing offered rate; 0 if none passed
  std::string ended_because;         // "resolution reached", "max steps", "generator could not keep up", ...
  double slo_p99_ms = 0;             // the objective the steps were judged by

  // {"max_sustainable_rps", "ended_because", "slo_p99_ms", "steps": [OpenLoopReport::to_json() + "pass", "verdict"]}
  [[nodiscard]] nlohmann::json to_json() const;
  // The passing step of the highest rate, or nullptr.
  [[nodiscard]] const SweepStep* best() const;
};

// Judges one step against the objective (see the header comment).
[[nodiscard]] SweepStep judge_step(OpenLoopReport report, const SweepSpec& spec);

// Runs the sweep; `run_step(rate)` runs one open-loop step at `rate` (for spec.step_s) and returns its report.
// `stop_early`, if given, is asked before each step. Exceptions from run_step propagate.
[[nodiscard]] SweepResult run_sweep(const SweepSpec& spec, const std::function<OpenLoopReport(double rate)>& run_step,
                                    bool (*stop_early)() = nullptr);

}  // namespace spawnd::bench
