// bench/runner.h — one benchmark configuration, run once: start the server(s), warm up, run wrk, stop, check.
//
// A Target names what is measured: a server ("spawnd", a peer, or "limit" for the raw spawn rate), its mode, the
// workload and the concurrency. run_target() gives every run a fresh copy of the seeded database, starts what the
// target needs on a free loopback port, waits for a first good response, warms up with the same workload, then runs
// wrk for the set duration while reading the server tree's CPU time before and after; it stops everything it
// started (SIGTERM to each process group, then SIGKILL), and after a workload that writes it counts the guestbook
// rows and runs PRAGMA integrity_check. Nothing survives a run.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/load_generator.h"
#include "bench/spawn_rate.h"
#include "bench/sweep.h"
#include "bench/wrk_report.h"

namespace spawnd::bench {

struct Target {
  std::string server;    // "spawnd", "lighttpd", "apache", "nginx", "limit", or "target" (--target: a server the
                         // user runs, which the driver neither starts nor stops)
  std::string mode;      // spawnd: cgi, fork, fastcgi, inproc, static; peers: mod_cgi, mod_cgid, fcgiwrap,
                         // fastcgi_pass, static; limit: posix_spawn; target: the URL
  std::string workload;  // read, write, mixed, hello, static; "custom" for --target
  int concurrency = 0;   // wrk connections (0 for the limit: it uses one spawner per core)
  std::string pragmas = "default";

  // "cgi", "lighttpd mod_cgi", "cgi [pragmas baseline]", "limit (posix_spawn+wait)", "http://host:8080/"
  [[nodiscard]] std::string label() const;
  [[nodiscard]] bool writes() const { return workload == "write" || workload == "mixed"; }
  [[nodiscard]] bool operator==(const Target&) const = default;
};

// A target that cannot run here: a mode this spawnd lacks, a peer not installed, a FastCGI runtime that did not
// come up. The driver notes the reason and leaves the target out of later repetitions.
class Skip : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How the load is applied: wrk (closed loop: each connection waits for its answer), the open-loop generator at a
// constant rate (--rate), or a sweep of rates (--sweep).
enum class LoadMode { ClosedLoop, OpenLoop, Sweep };

// --target: a server the user already runs, and the request to send it.
struct CustomTarget {
  std::string url;         // as given: http://HOST[:PORT]/PATH
  HttpUrl parsed;
  LoadRequest request;     // --method, --header, --body-file
  std::string body_file;   // for wrk's script; empty: no body
};

// What every run shares.
struct BenchEnv {
  std::string spawnd;           // the spawnd executable
  std::string cgi_bin;          // the built handlers (guestbook, hello)
  std::string work_dir;         // temporary: configs, sockets, logs, Lua scripts, the static docroot
  std::string db_dir;           // where run databases live (the working disk, or /dev/shm with --db-on-tmpfs)
  std::map<std::string, std::string> seeds;  // pragmas preset -> seeded database to copy
  int seed_rows = 1000;         // guestbook rows in each seed
  int duration_s = 3;           // each measured wrk run (and each limit measurement)
  int warmup_s = 1;             // wrk with the same workload before it, not recorded; 0: none
  int wrk_threads = 0;          // 0: min(cores, concurrency)
  unsigned cores = 1;
  unsigned limit_spawners = 1;  // spawning threads of the limit row (one per core by default)
  int workers = 0;              // --workers for spawnd's fastcgi/inproc modes and the FastCGI peer's processes
  int prefork = -1;             // --prefork for spawnd's fork mode; -1: spawnd's default (the flag is not passed)
  // The WAL bound of every server (spawnd --wal-max-bytes; for the peers and the limit row, spawnd's own keeper run by
  // the driver with the same policy, and SPAWND_WAL_MAX_BYTES for their handlers): bytes.
  std::int64_t wal_max_bytes = 16 << 20;
  LoadMode load = LoadMode::ClosedLoop;
  double rate = 0;              // OpenLoop: requests per second; connections are the target's concurrency
  bool connection_per_request = false;  // OpenLoop and Sweep: a new connection per request
  SweepSpec sweep;              // Sweep: the ramp, the objective and the bounds
  std::optional<CustomTarget> custom;   // --target
};

struct WriteCheck {
  std::int64_t rows_before = 0, rows_after = 0;
  std::int64_t posts_ok = 0;    // POSTs answered 303, warm-up included
  std::int64_t posts_sent = 0;  // POSTs started, warm-up included
  std::string integrity;        // "ok" or what integrity_check found
  std::int64_t wal_bytes_max = 0;  // the largest -wal file seen during warm-up and run (WalSampler), bytes

  // Rows added must equal the POSTs answered 303, plus at most the POSTs still in flight when wrk stopped (wrk
  // closes those connections unread; the server may have committed them): nothing lost, nothing doubled.
  [[nodiscard]] bool is_ok() const {
    const auto added = rows_after - rows_before;
    return integrity == "ok" && added >= posts_ok && added <= posts_sent;
  }
};

struct RunResult {
  Target target;
  int repetition = 0;
  std::optional<WrkReport> wrk;          // HTTP targets, closed loop
  std::optional<OpenLoopReport> open_loop;  // HTTP targets, --rate
  std::optional<SweepResult> sweep;      // HTTP targets, --sweep
  std::optional<SpawnRate> spawn;        // the limit
  double server_cpu_s = 0;               // CPU of the server process trees during the measured part
  bool is_server_cpu_complete = true;    // false: a process of the tree let the kernel reap its children
                                         // (SIGCHLD ignored), whose CPU is then missing (TreeCpu)
  std::optional<WriteCheck> write_check;

  // wrk's rate, the open loop's achieved rate, a sweep's max sustainable rate, or the limit's spawns per second.
  [[nodiscard]] double requests_per_second() const;
  [[nodiscard]] nlohmann::json to_json() const;
};

// Ctrl-C (interrupted()) arrived during a run; what the run measured is discarded.
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted") {}
};

// Writes what runs read from the work directory: the wrk scripts (a custom one for --target) and the static docroot.
// Call once.
void prepare_work_dir(const BenchEnv& env);

// Runs `target` once (see the header comment). Throws Skip when it cannot run here, Interrupted on Ctrl-C, and
// std::runtime_error when it ran and failed.
[[nodiscard]] RunResult run_target(const BenchEnv& env, const Target& target, int repetition);

// The URL path a workload requests, e.g. "/cgi-bin/guestbook"; for "static", the file the driver puts in its docroot.
[[nodiscard]] std::string workload_path(const std::string& workload);
// The requests the open-loop generator cycles through for a workload: the same as its wrk script sends (for mixed,
// nine GETs and a POST).
[[nodiscard]] std::vector<LoadRequest> workload_requests(const std::string& workload);
// The handler executable name a workload runs ("guestbook", "hello"); empty for static.
[[nodiscard]] std::string workload_handler(const std::string& workload);

}  // namespace spawnd::bench
