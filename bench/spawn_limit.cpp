// bench/spawn_limit.cpp — the raw rate at which this machine can run a CGI program, without HTTP.
//
// Each of --parallel loops (default: one per online CPU) repeatedly posix_spawn()s the program with a CGI
// environment (the same meta-variables spawnd would give a GET request), reads all of its stdout through a pipe
// and waits for it (bench/spawn_rate.h). The sum of the loops' completions per second is the ceiling for any
// process-per-request server on this machine; spawnd-bench measures it in the same run as its "limit row".
//
//   spawn-limit --seconds 5 [--parallel N] [--env NAME=VALUE ...] PROGRAM
// Prints one line: "spawns_per_second=<float> spawns=<n> seconds=<float> parallel=<n> failures=<n>".
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "bench/spawn_rate.h"

int main(int argc, char** argv) {
  spawnd::bench::SpawnRateSpec spec;
  spec.seconds = 5.0;
  spec.parallel = std::thread::hardware_concurrency();
  std::vector<std::string> extra_env;
  CLI::App app{"Raw posix_spawn + read + wait rate of a CGI program, no HTTP (the ceiling for CGI servers)"};
  app.add_option("--seconds", spec.seconds, "How long to run")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--parallel", spec.parallel, "Spawning loops (default: online CPUs)")->check(CLI::Range(1u, 256u));
  app.add_option("--env", extra_env, "Extra NAME=VALUE for the child's environment (repeatable)");
  app.add_option("program", spec.program, "The CGI program")->required()->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);

  spec.env = spawnd::bench::cgi_environment(spec.program, "/cgi-bin/x", "GET", "", 0, extra_env);
  try {
    const auto r = spawnd::bench::measure_spawn_rate(spec);
    std::printf("spawns_per_second=%.1f spawns=%ld seconds=%.2f parallel=%u failures=%ld\n", r.spawns_per_second,
                r.spawns, r.seconds, r.parallel, r.failures);
    return r.failures == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spawn-limit: %s\n", e.what());
    return 1;
  }
}
