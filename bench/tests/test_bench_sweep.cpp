// bench/tests/test_bench_sweep.cpp — the rate sweep: its ramp and bisection on a modelled server, and a real sweep
// of nginx serving a static file through run_target (bench/sweep.h, bench/runner.h).
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "bench/process.h"
#include "bench/runner.h"
#include "bench/site_db.h"
#include "bench/sweep.h"
#include "tests/e2e/harness.h"

using namespace spawnd::bench;

namespace {

// What a server with a capacity of `capacity` req/s would report at `rate`: fast below it, queueing above it.
OpenLoopReport modelled_step(double rate, double capacity) {
  OpenLoopReport r;
  r.offered_rps = rate;
  r.scheduled = 1000;
  r.responses = 1000;
  for (int i = 0; i < 1000; ++i) r.latency_us.record(rate <= capacity ? 2000 + i : 100'000 + 1000 * i);
  return r;
}

}  // namespace

TEST_CASE("a sweep ramps up, then bisects to within its resolution of the knee", "[unit][bench]") {
  SweepSpec spec;
  spec.start_rps = 100;
  spec.max_steps = 20;
  std::vector<double> rates;
  const SweepResult r = run_sweep(spec, [&](double rate) {
    rates.push_back(rate);
    return modelled_step(rate, 1234);
  });
  // 100, 200, 400, 800 pass; 1600 fails; then bisection between 800 and 1600.
  REQUIRE(rates.size() >= 6);
  CHECK(rates[0] == 100);
  CHECK(rates[4] == 1600);
  CHECK(rates[5] == 1200);
  CHECK(r.max_sustainable_rps <= 1234);
  CHECK(r.max_sustainable_rps >= 1234 / (1 + spec.resolution));
  CHECK(r.ended_because == "resolution reached");
  CHECK_FALSE(r.steps[4].is_pass);
  CHECK_THAT(r.steps[4].verdict, Catch::StartsWith("p99"));
  CHECK(r.best()->report.offered_rps == r.max_sustainable_rps);
  const auto j = r.to_json();
  CHECK(j.at("max_sustainable_rps") == r.max_sustainable_rps);
  CHECK(j.at("steps").size() == r.steps.size());
  CHECK(j.at("steps")[0].at("latency_ms").contains("p99"));
}

TEST_CASE("a sweep is bounded by its step count, fails on errors, and stops when the generator cannot keep up",
          "[unit][bench]") {
  SweepSpec spec;
  spec.max_steps = 3;
  CHECK(run_sweep(spec, [](double rate) { return modelled_step(rate, 1e9); }).steps.size() == 3);

  auto with_errors = [](double rate) {
    OpenLoopReport r = modelled_step(rate, 1e9);
    if (rate > 150) r.timeouts = 2;  // 0.2 % of 1,000
    return r;
  };
  spec.max_steps = 12;
  const SweepResult e = run_sweep(spec, with_errors);
  CHECK(e.max_sustainable_rps >= 143);
  CHECK(e.max_sustainable_rps <= 150);
  CHECK_THAT(e.steps[1].verdict, Catch::StartsWith("errors"));

  // Past 300 req/s the generator is saturated: its passes stand (it only adds latency), its first failure ends the
  // sweep as inconclusive.
  auto saturated = [](double rate) {
    OpenLoopReport r = modelled_step(rate, 700);
    if (rate > 300) {
      r.elapsed_s = 1.5;
      r.generator_cpu_s = 1.45;
      r.warnings.push_back("the load generator used 97 % of a core");
    }
    return r;
  };
  const SweepResult g = run_sweep(spec, saturated);
  CHECK(g.max_sustainable_rps == 400);
  REQUIRE(g.steps.size() == 5);  // the inconclusive step at 800 req/s is run twice
  CHECK_THAT(g.steps[2].verdict, Catch::StartsWith("pass (note"));
  CHECK(g.steps[3].is_inconclusive);
  CHECK(g.steps[4].report.offered_rps == 800);
  CHECK_THAT(g.steps[3].verdict, Catch::Contains("(inconclusive"));
  CHECK_THAT(g.ended_because, Catch::Contains("could not keep up at 800"));

  // A generator a little late (released 2 % of the requests 20 ms late) cannot explain a p99 of 100 ms and more:
  // the failure is the server's, and the sweep bisects on.
  auto a_little_late = [](double rate) {
    OpenLoopReport r = modelled_step(rate, 700);
    for (int i = 0; i < 1000; ++i) r.release_lag_us.record(i < 20 ? 20'000 : 100);
    r.warnings.push_back("the load generator itself released 20 of 1000 requests more than 10 ms late");
    return r;
  };
  const SweepResult l = run_sweep(spec, a_little_late);
  CHECK(l.ended_because == "resolution reached");
  CHECK(l.max_sustainable_rps >= 700 / 1.05);

  // A p99 of 120 ms with the generator's own lag at 30 ms for 2 % of the requests: without that lag it would have
  // passed, so the failure is not the server's for sure.
  auto lag_explains = [](double rate) {
    OpenLoopReport r = modelled_step(rate, 1e9);
    if (rate > 150) {
      r.latency_us.reset();
      for (int i = 0; i < 1000; ++i) r.latency_us.record(i < 20 ? 120'000 : 2000);
      for (int i = 0; i < 1000; ++i) r.release_lag_us.record(i < 20 ? 30'000 : 100);
    }
    return r;
  };
  const SweepResult x = run_sweep(spec, lag_explains);
  CHECK(x.steps.back().is_inconclusive);
  CHECK(x.steps.size() == 3);  // 100 passes, 200 is inconclusive twice
  CHECK_THAT(x.steps.back().verdict, Catch::Contains("own lag"));
  CHECK(x.max_sustainable_rps == 100);
}

TEST_CASE("a sweep against nginx serving a static file finishes with a positive max sustainable rate",
          "[e2e][bench]") {
  if (find_executable("nginx").empty()) {
    WARN("nginx is not installed (scripts/install-deps.sh): skipped");
    return;
  }
  spawnd::e2e::TempDir dir;
  BenchEnv env;
  env.work_dir = dir.path();
  env.db_dir = dir.path() + "/db";
  std::filesystem::create_directories(env.db_dir);
  env.seeds["default"] = dir.path() + "/seed.db";
  seed_site_db(env.seeds["default"], "default", 10);
  env.warmup_s = 0;
  env.load = LoadMode::Sweep;
  env.sweep.start_rps = 200;
  env.sweep.step_s = 0.5;
  env.sweep.max_steps = 5;  // behaviour, not speed: a few seconds at most
  prepare_work_dir(env);

  const RunResult r = run_target(env, Target{"nginx", "static", "static", 16, "default"}, 1);
  REQUIRE(r.sweep);
  INFO(r.to_json().dump(2));
  CHECK(r.sweep->max_sustainable_rps > 0);
  CHECK(r.requests_per_second() == r.sweep->max_sustainable_rps);
  CHECK_FALSE(r.sweep->steps.empty());
  CHECK(r.sweep->steps.size() <= 5);
  const auto j = r.to_json();
  CHECK(j.at("max_sustainable_rps").get<double>() > 0);
  for (const auto& step : j.at("sweep").at("steps")) {
    CHECK(step.contains("offered_rps"));
    CHECK(step.contains("achieved_rps"));
    CHECK(step.at("latency_ms").contains("p99_9"));
    CHECK(step.contains("errors"));
    CHECK(step.contains("late_sends"));
  }
  const SweepStep& first = r.sweep->steps.front();
  CHECK(first.report.statuses.at(200) == first.report.responses);
}
