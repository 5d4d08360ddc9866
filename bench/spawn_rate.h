// bench/spawn_rate.h — the raw rate at which this machine can run a CGI program: posix_spawn + read + wait, no HTTP.
//
// Each of `parallel` threads repeatedly posix_spawn()s the program with a CGI environment, feeds it the request body
// (a file opened as its stdin, or /dev/null), reads all of its stdout through a pipe and waits for it. The sum of the
// threads' completions per second is the ceiling for any process-per-request server on this machine; spawnd-bench
// reports its CGI results as a ratio to it (the "limit row"), and the spawn-limit tool prints it alone.
#pragma once

#include <string>
#include <vector>

namespace spawnd::bench {

struct SpawnRateSpec {
  std::string program;             // the executable, run with argv = { program }
  std::vector<std::string> env;    // its whole environment, NAME=VALUE (see cgi_environment())
  std::string stdin_path;          // a file to give it as stdin (a POST body); empty: /dev/null
  unsigned parallel = 1;           // spawning threads; one per core measures the machine
  double seconds = 1;
};

struct SpawnRate {
  double spawns_per_second = 0;    // successful runs (exit status 0) per second, all threads together
  long spawns = 0;
  long failures = 0;               // spawn errors and runs that did not exit 0
  double seconds = 0;              // measured wall time
  unsigned parallel = 0;
};

// The CGI environment spawnd gives a request for `script_name` (RFC 3875 §4.1), with `method` and, for a body,
// CONTENT_TYPE and CONTENT_LENGTH, followed by `extra` (e.g. SPAWND_DB=...).
[[nodiscard]] std::vector<std::string> cgi_environment(const std::string& program, const std::string& script_name,
                                                       const std::string& method, const std::string& content_type,
                                                       size_t content_length, const std::vector<std::string>& extra);

// Runs the spawning loops for spec.seconds and returns what they achieved. Blocks; stops early (with what was
// measured so far) when `stop_early` returns true, polled every 50 ms. Throws std::runtime_error if the program
// cannot be spawned at all.
[[nodiscard]] SpawnRate measure_spawn_rate(const SpawnRateSpec& spec, bool (*stop_early)() = nullptr);

}  // namespace spawnd::bench
