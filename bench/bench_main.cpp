// bench/bench_main.cpp — spawnd-bench: every mode of spawnd head to head, against the spawn limit and the peers.
//
// Builds the list of targets from the options (modes x workloads x concurrency levels, the write workload again
// under each extra PRAGMA preset, the limit row per workload, the peers with --peers), then runs the list N times,
// reversing its order on every other repetition so that slow drift (thermal, page cache, a neighbour's build)
// weighs on every target alike. Each run is bench/runner.h's run_target(). At the end it prints the table and
// writes results.json, results.md and chart.svg into <results-dir>/<timestamp>/. Ctrl-C stops what is running
// (bench/process.h), writes what was measured so far, and exits 130.
#include <CLI/CLI.hpp>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/machine.h"
#include "bench/process.h"
#include "bench/report.h"
#include "bench/runner.h"
#include "bench/site_db.h"
#include "common/log.h"

namespace fs = std::filesystem;
using namespace spawnd::bench;

namespace {

const std::vector<std::string> kModes = {"cgi", "fork", "fastcgi", "inproc", "static"};
const std::vector<std::string> kWorkloads = {"read", "write", "mixed", "hello"};
const std::vector<std::string> kLimitWorkloads = {"read", "write", "hello"};

struct Options {
  bool full = false;
  std::vector<std::string> modes = kModes;
  std::vector<std::string> workloads;
  std::vector<int> concurrency;
  int duration_s = 0;
  int warmup_s = -1;
  int repetitions = 3;
  std::vector<std::string> pragmas = {"default", "baseline"};
  bool peers = false;
  bool db_on_tmpfs = false;
  bool no_limit = false;
  int seed_rows = 1000;
  std::int64_t wal_max_bytes = 16 << 20;
  int workers = 0;
  int prefork = -1;
  int limit_spawners = 0;
  int wrk_threads = 0;
  std::string results_dir = "bench/results";
  double rate = 0;                 // --rate: open loop
  bool sweep = false;
  SweepSpec sweep_spec;
  bool connection_per_request = false;
  std::string target_url, method = "GET", body_file;
  std::vector<std::string> fields;
  std::string spawnd;
  std::string cgi_bin;
};

// A directory removed with its contents when the driver is done, however it ends.
struct ScopedDir {
  std::string path;
  ~ScopedDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

std::string make_temp_dir(const std::string& parent) {
  std::string templ = parent + "/spawnd-bench-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("cannot create a directory in " + parent);
  // Peers that drop privileges (Apache's children as www-data) must reach the sockets and files inside.
  chmod(templ.c_str(), 0755);
  return templ;
}

// Now, UTC: "2025-01-31 17:05:09 UTC", or for a directory name "2025-01-31T170509Z".
std::string utc_stamp(bool for_path = false) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  if (for_path)
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H%M%SZ", &tm);
  else
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::vector<Target> plan(const Options& o) {
  std::vector<Target> targets;
  if (!o.target_url.empty()) {  // --target: the user's server, nothing else
    for (int c : o.concurrency) targets.push_back({"target", o.target_url, "custom", c, "default"});
    return targets;
  }
  auto has = [](const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); };
  // The limit row is the reference of process-per-request targets: spawnd's dynamic modes and the peers.
  const bool has_dynamic = o.peers || std::any_of(o.modes.begin(), o.modes.end(), [](const auto& m) { return m != "static"; });
  if (!o.no_limit && has_dynamic)
    for (const auto& w : o.workloads)
      if (has(kLimitWorkloads, w)) targets.push_back({"limit", "posix_spawn", w, 0, "default"});
  for (int c : o.concurrency) {
    for (const auto& w : o.workloads) {
      for (const auto& m : o.modes) {
        if (m == "static") continue;
        targets.push_back({"spawnd", m, w, c, "default"});
        if (w == "write")
          for (const auto& p : o.pragmas)
            if (p != "default") targets.push_back({"spawnd", m, w, c, p});
      }
      if (o.peers) {
        targets.push_back({"lighttpd", "mod_cgi", w, c, "default"});
        targets.push_back({"apache", "mod_cgid", w, c, "default"});
        targets.push_back({"nginx", "fcgiwrap", w, c, "default"});
        targets.push_back({"nginx", "fastcgi_pass", w, c, "default"});
      }
    }
    if (has(o.modes, "static")) {
      targets.push_back({"spawnd", "static", "static", c, "default"});
      if (o.peers) targets.push_back({"nginx", "static", "static", c, "default"});
    }
  }
  return targets;
}

// One line, rewritten in place on a terminal, a line per run otherwise.
void progress(int done, int total, const std::string& what, double eta_s) {
  const bool tty = isatty(STDERR_FILENO) != 0;
  char eta[32];
  std::snprintf(eta, sizeof eta, "%d:%02d", static_cast<int>(eta_s) / 60, static_cast<int>(eta_s) % 60);
  std::fprintf(stderr, "%s[%3d/%d] %-60s ETA %s%s", tty ? "\r\033[K" : "", done, total, what.c_str(), eta,
               tty ? "" : "\n");
  std::fflush(stderr);
}

nlohmann::json options_json(const Options& o, const BenchEnv& env) {
  return {{"profile", o.full ? "full" : "quick"}, {"modes", o.modes},
          {"workloads", o.workloads},            {"concurrency", o.concurrency},
          {"duration_s", env.duration_s},        {"warmup_s", env.warmup_s},
          {"repetitions", o.repetitions},        {"pragmas", o.pragmas},
          {"peers", o.peers},                    {"db_on_tmpfs", o.db_on_tmpfs},
          {"seed_rows", o.seed_rows},            {"workers", env.workers}, {"prefork", env.prefork},
          {"wal_max_bytes", env.wal_max_bytes},
          {"limit_spawners", env.limit_spawners},
          {"load", o.sweep ? "sweep" : o.rate > 0 ? "open loop" : "closed loop (wrk)"},
          {"rate", o.rate},
          {"connection_per_request", o.connection_per_request},
          {"sweep", {{"start_rps", o.sweep_spec.start_rps}, {"step_s", o.sweep_spec.step_s},
                     {"max_steps", o.sweep_spec.max_steps}, {"slo_p99_ms", o.sweep_spec.slo_p99_ms},
                     {"max_error_ratio", o.sweep_spec.max_error_ratio}, {"growth", o.sweep_spec.growth},
                     {"resolution", o.sweep_spec.resolution}}},
          {"target", o.target_url},
          {"wrk_threads", o.wrk_threads == 0 ? "min(cores, c)" : std::to_string(o.wrk_threads)}};
}

int run(const Options& o, const std::string& command_line) {
  const bool needs_wrk = !o.sweep && !(o.rate > 0);
  if (needs_wrk && find_executable("wrk").empty()) {
    std::fprintf(stderr, "spawnd-bench: wrk is not installed: run scripts/install-deps.sh (or apt-get install wrk)\n");
    return 1;
  }
  install_interrupt_handler();
  const std::string started = utc_stamp();
  const std::string out_dir = o.results_dir + "/" + utc_stamp(true);
  fs::create_directories(out_dir);

  BenchEnv env;
  env.spawnd = o.spawnd;
  env.cgi_bin = o.cgi_bin;
  env.cores = static_cast<unsigned>(sysconf(_SC_NPROCESSORS_ONLN));
  env.duration_s = o.duration_s;
  env.warmup_s = o.warmup_s;
  env.wrk_threads = o.wrk_threads;
  env.workers = o.workers > 0 ? o.workers : static_cast<int>(env.cores);
  env.prefork = o.prefork;
  env.limit_spawners = o.limit_spawners > 0 ? static_cast<unsigned>(o.limit_spawners) : env.cores;
  env.seed_rows = o.seed_rows;
  env.wal_max_bytes = o.wal_max_bytes;
  env.load = o.sweep ? LoadMode::Sweep : o.rate > 0 ? LoadMode::OpenLoop : LoadMode::ClosedLoop;
  env.rate = o.rate;
  env.sweep = o.sweep_spec;
  env.connection_per_request = o.connection_per_request;
  if (!o.target_url.empty()) {
    CustomTarget c;
    c.url = o.target_url;
    c.parsed = parse_http_url(o.target_url);
    c.request = custom_request(c.parsed, o.method, o.fields, o.body_file);
    c.body_file = o.body_file;
    env.custom = c;
  }
  const char* tmp = std::getenv("TMPDIR");
  ScopedDir work{make_temp_dir(tmp && *tmp ? tmp : "/tmp")};
  ScopedDir dbs{o.db_on_tmpfs ? make_temp_dir("/dev/shm") : out_dir + "/db"};
  fs::create_directories(dbs.path);
  if (geteuid() == 0) chmod(dbs.path.c_str(), 0777);  // see fresh_db() in runner.cpp
  env.work_dir = work.path;
  env.db_dir = dbs.path;
  prepare_work_dir(env);
  std::set<std::string> presets(o.pragmas.begin(), o.pragmas.end());
  presets.insert("default");
  for (const auto& p : presets) {
    env.seeds[p] = env.work_dir + "/seed-" + p + ".db";
    seed_site_db(env.seeds[p], p, o.seed_rows);
  }

  const Machine machine = describe_machine(o.peers, o.spawnd);
  const std::string db_fs = filesystem_type(env.db_dir);
  std::fprintf(stderr, "spawnd-bench: %s\n", machine.one_line().c_str());
  std::fprintf(stderr, "spawnd-bench: database on %s (%s), %d x %d s per target, warm-up %d s\n",
               db_fs.c_str(), o.db_on_tmpfs ? "--db-on-tmpfs" : "working disk", o.repetitions, env.duration_s,
               env.warmup_s);

  std::vector<Target> targets = plan(o);
  std::vector<RunResult> runs;
  std::vector<std::string> skipped, failures;
  std::set<std::string> dropped;
  bool was_interrupted = false;
  // The whole schedule up front: forward, reversed, forward, ... (see the header comment).
  std::vector<std::pair<int, Target>> schedule;
  for (int rep = 1; rep <= o.repetitions; ++rep) {
    std::vector<Target> order = targets;
    if (rep % 2 == 0) std::reverse(order.begin(), order.end());
    for (const Target& t : order) schedule.emplace_back(rep, t);
  }
  auto key_of = [](const Target& t) { return t.label() + "|" + t.workload + "|" + std::to_string(t.concurrency); };
  auto is_dropped = [&](const Target& t) { return dropped.count(key_of(t)) || dropped.count(t.server + "|" + t.mode); };
  // A sweep's cost is a guess: the steps the resolution usually needs.
  const int per_target = env.load == LoadMode::Sweep
                             ? static_cast<int>(std::min(o.sweep_spec.max_steps, 9) * (o.sweep_spec.step_s + 0.5))
                             : env.duration_s;
  auto cost = [&](const Target& t) { return t.server == "limit" ? env.duration_s : per_target + env.warmup_s + 1; };
  for (size_t i = 0; i < schedule.size() && !was_interrupted; ++i) {
    const auto& [rep, t] = schedule[i];
    if (is_dropped(t)) continue;
    double eta = 0;
    for (size_t k = i; k < schedule.size(); ++k)
      if (!is_dropped(schedule[k].second)) eta += cost(schedule[k].second);
    const std::string what = "rep " + std::to_string(rep) + "/" + std::to_string(o.repetitions) + "  " +
                             t.workload + (t.concurrency ? " c=" + std::to_string(t.concurrency) : "") + "  " +
                             t.label();
    progress(static_cast<int>(i) + 1, static_cast<int>(schedule.size()), what, eta);
    try {
      runs.push_back(run_target(env, t, rep));
    } catch (const Skip& e) {
      // What makes a target skip (a mode spawnd lacks, a peer not installed) holds for the whole mode.
      skipped.push_back(e.what());
      dropped.insert(t.server + "|" + t.mode);
    } catch (const Interrupted&) {
      was_interrupted = true;
    } catch (const std::exception& e) {
      failures.push_back(t.label() + " (" + t.workload + ", c=" + std::to_string(t.concurrency) + "): " + e.what());
      dropped.insert(key_of(t));
    }
  }
  if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\r\033[K");

  const std::vector<Summary> summaries = summarize(runs, targets);
  const std::string title = "spawnd-bench " + started;
  const std::string subtitle = machine.one_line() + "; database on " + db_fs;
  std::string load_note = "latencies are medians of wrk's percentiles (closed loop)";
  if (env.load == LoadMode::OpenLoop)
    load_note = "open loop at " + std::to_string(std::lround(o.rate)) + " req/s offered: req/s is the achieved rate; "
                "latencies are from each request's intended send time; late = sends more than 10 ms behind schedule";
  if (env.load == LoadMode::Sweep) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "sweep: max req/s is the highest offered rate with p99 <= %.0f ms and errors <= "
                  "%.1f %% (steps of %.1f s, at most %d); the latencies and offered rate are its step's",
                  o.sweep_spec.slo_p99_ms, 100 * o.sweep_spec.max_error_ratio, o.sweep_spec.step_s,
                  o.sweep_spec.max_steps);
    load_note = buf;
  }
  std::vector<std::string> notes = {
      "database on " + db_fs + "; " + std::to_string(o.repetitions) + " repetitions of " +
          (env.load == LoadMode::Sweep ? std::string("a sweep") : std::to_string(env.duration_s) + " s") +
          " after a " + std::to_string(env.warmup_s) + " s warm-up; req/s is the median, min–max the spread; " +
          load_note,
      "CPU is the server's process tree (children included) per request, ≥ where a process of the tree ignores "
      "SIGCHLD and its children's CPU is lost; × limit is req/s over the raw posix_spawn+wait rate of the same "
      "handler (limit row)"};
  for (const auto& s : skipped) notes.push_back(s);
  for (const auto& f : failures) notes.push_back("FAILED: " + f);
  for (const auto& r : runs) {
    if (r.sweep)
      notes.push_back("sweep " + r.target.label() + " (" + r.target.workload + ", rep " + std::to_string(r.repetition) +
                      "): " + std::to_string(r.sweep->steps.size()) + " steps, ended: " + r.sweep->ended_because);
    const OpenLoopReport* open = r.open_loop ? &*r.open_loop : nullptr;
    if (open)
      for (const auto& w : open->warnings) notes.push_back("WARNING " + r.target.label() + ": " + w);
  }
  if (was_interrupted) notes.push_back("INTERRUPTED: the results are partial");

  std::printf("\n%s: %s\n\n%s\n", title.c_str(), subtitle.c_str(), format_table(summaries).c_str());
  for (const auto& n : notes) std::printf("%s\n", n.c_str());

  nlohmann::json j;
  j["tool"] = "spawnd-bench";
  j["schema"] = 1;
  j["started"] = started;
  j["finished"] = utc_stamp();
  j["command"] = command_line;
  j["options"] = options_json(o, env);
  j["machine"] = machine.to_json();
  j["database"] = {{"filesystem", db_fs}, {"on_tmpfs", o.db_on_tmpfs}};
  j["skipped"] = skipped;
  j["failures"] = failures;
  j["interrupted"] = was_interrupted;
  j["runs"] = nlohmann::json::array();
  for (const auto& r : runs) j["runs"].push_back(r.to_json());
  j["summary"] = nlohmann::json::array();
  for (const auto& s : summaries) j["summary"].push_back(s.to_json());
  std::ofstream(out_dir + "/results.json") << j.dump(2) << "\n";

  std::string md = "# spawnd-bench results\n\n";
  md += "- date: " + started + "\n- machine: " + machine.one_line() + "\n";
  for (const auto& [tool, version] : machine.versions) md += "- " + tool + ": " + version + "\n";
  md += "- command: `" + command_line + "`\n\n" + format_markdown_table(summaries) + "\n";
  for (const auto& n : notes) md += "- " + n + "\n";
  md += "\n![chart](chart.svg)\n\nMethodology: bench/README.md.\n";
  std::ofstream(out_dir + "/results.md") << md;
  std::ofstream(out_dir + "/chart.svg") << render_chart_svg(summaries, title, subtitle);
  std::printf("\nresults: %s/{results.json,results.md,chart.svg}\n", out_dir.c_str());

  if (was_interrupted) return 130;
  return failures.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // The driver's database keeper (spawnd's, for the peers) logs its start and its stats at Info: not between the
  // progress lines. Warnings still show.
  spawnd::log::set_level(spawnd::log::Level::Warn);
  Options o;
  CLI::App app{
      "spawnd-bench: runs the guestbook and hello handlers under every spawnd mode (and, with --peers, under\n"
      "lighttpd, Apache and nginx) with wrk, next to the raw posix_spawn+wait rate of the same handler, and\n"
      "writes a table, results.json, results.md and chart.svg. Without --full: the quick profile (read and\n"
      "write at c=16, 3 s runs)."};
  app.get_formatter()->column_width(36);
  app.add_flag("--full", o.full, "The whole matrix: workloads read,write,mixed,hello; concurrency 1,16,64; 10 s runs");
  app.add_option("--modes", o.modes, "spawnd modes to run")->delimiter(',')->check(CLI::IsMember(kModes))
      ->default_str("cgi,fork,fastcgi,inproc,static");
  app.add_option("--workloads", o.workloads, "Workloads (default: read,write; --full: read,write,mixed,hello)")
      ->delimiter(',')->check(CLI::IsMember(kWorkloads));
  app.add_option("--concurrency,-c", o.concurrency, "wrk connections, one target each (default: 16; --full: 1,16,64)")
      ->delimiter(',')->check(CLI::Range(1, 10000));
  app.add_option("--duration,-d", o.duration_s, "Seconds per measured run (default: 3; --full: 10)")
      ->check(CLI::Range(1, 3600));
  app.add_option("--warmup", o.warmup_s, "Seconds of unrecorded load before each run (default: 1; --full: 2)")
      ->check(CLI::Range(0, 600));
  app.add_option("--repetitions,-n", o.repetitions, "Runs per target, alternating targets")->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--pragmas", o.pragmas, "PRAGMA presets for the write workload ('default' is always run)")
      ->delimiter(',')->default_str("default,baseline");
  app.add_flag("--peers", o.peers, "Also run lighttpd mod_cgi, Apache mod_cgid, nginx+fcgiwrap, nginx fastcgi_pass "
                                   "and nginx static (scripts/install-deps.sh --bench installs them)");
  app.add_flag("--db-on-tmpfs", o.db_on_tmpfs, "Put the databases in /dev/shm instead of on the working disk");
  app.add_flag("--no-limit", o.no_limit, "Skip the limit row (raw posix_spawn+wait rate of the handler)");
  app.add_option("--seed-rows", o.seed_rows, "Guestbook rows in each fresh database")->capture_default_str()
      ->check(CLI::Range(0, 10'000'000));
  app.add_option("--wal-max-bytes", o.wal_max_bytes,
                 "The WAL bound of every server: spawnd --wal-max-bytes (passed only when not its default), and the "
                 "driver's keeper for the peers and the limit row, which is spawnd's own")
      ->capture_default_str()->check(CLI::Range(std::int64_t{64 * 1024}, std::int64_t{1} << 40));
  app.add_option("--prefork", o.prefork, "spawnd --prefork for fork mode (default: spawnd's own; 0: fork at each "
                 "request, for a before/after)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--workers", o.workers, "spawnd --workers for fastcgi/inproc, and FastCGI processes for the nginx "
                                         "peer (default: one per CPU)")->check(CLI::Range(1, 1024));
  app.add_option("--limit-spawners", o.limit_spawners, "Spawning threads of the limit row (default: one per CPU)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--wrk-threads", o.wrk_threads, "wrk threads (default: min(CPUs, connections))")
      ->check(CLI::Range(1, 256));
  app.add_option("--rate", o.rate, "Open loop: run every target at this constant rate (req/s) instead of wrk, with "
                                   "-c connections (default 64)")->check(CLI::PositiveNumber);
  app.add_flag("--sweep", o.sweep, "Open loop: step the rate up (a ramp, then a bisection) until p99 > --slo-p99-ms or "
                                   "errors > 0.1 %; report each target's max sustainable req/s (default -n 1)");
  app.add_option("--slo-p99-ms", o.sweep_spec.slo_p99_ms, "Sweep: the p99 objective")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--sweep-start", o.sweep_spec.start_rps, "Sweep: the first step's rate")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--step-duration", o.sweep_spec.step_s, "Sweep: seconds per step")->capture_default_str()
      ->check(CLI::Range(0.2, 600.0));
  app.add_option("--max-steps", o.sweep_spec.max_steps, "Sweep: at most this many steps per target")
      ->capture_default_str()->check(CLI::Range(1, 100));
  app.add_flag("--connection-per-request", o.connection_per_request, "Open loop: a new connection for every request");
  app.add_option("--target", o.target_url, "Benchmark this running server (http://HOST[:PORT]/PATH) instead of "
                                           "starting any: with wrk, --rate or --sweep");
  app.add_option("--method", o.method, "--target: the request method")->capture_default_str();
  app.add_option("--header,-H", o.fields, "--target: an extra header field 'Name: value' (repeatable)");
  app.add_option("--body-file", o.body_file, "--target: send this file as the message body")->check(CLI::ExistingFile);
  app.add_option("--results-dir", o.results_dir, "Where the <timestamp>/ directory of results goes")
      ->capture_default_str();
  app.add_option("--spawnd", o.spawnd, "The spawnd executable (default: beside spawnd-bench)")
      ->check(CLI::ExistingFile);
  app.add_option("--cgi-bin", o.cgi_bin, "The built handlers (default: cgi-bin/ beside spawnd-bench)")
      ->check(CLI::ExistingDirectory);
  CLI11_PARSE(app, argc, argv);

  if (o.workloads.empty()) o.workloads = o.full ? kWorkloads : std::vector<std::string>{"read", "write"};
  const bool open_loop = o.sweep || o.rate > 0;
  if (o.concurrency.empty()) o.concurrency = o.full ? std::vector<int>{1, 16, 64} : std::vector<int>{open_loop ? 64 : 16};
  if (o.sweep && app.count("--repetitions") == 0) o.repetitions = 1;
  if (o.method.empty() || o.method.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos ||
      o.body_file.find_first_of("\"\\") != std::string::npos) {
    std::fprintf(stderr, "spawnd-bench: --method must be upper-case letters, and --body-file a path without quotes\n");
    return 2;
  }
  if (!o.body_file.empty()) o.body_file = fs::absolute(o.body_file).string();
  if (o.duration_s == 0) o.duration_s = o.full ? 10 : 3;
  if (o.warmup_s < 0) o.warmup_s = o.full ? 2 : 1;
  std::error_code ec;
  const fs::path beside = fs::read_symlink("/proc/self/exe", ec).parent_path();
  if (o.spawnd.empty()) o.spawnd = (beside / "spawnd").string();
  if (o.cgi_bin.empty()) o.cgi_bin = (beside / "cgi-bin").string();
  // Absolute: the run databases live under it, and handlers run in their own working directory.
  o.results_dir = fs::absolute(o.results_dir).lexically_normal().string();
  o.spawnd = fs::absolute(o.spawnd).string();
  o.cgi_bin = fs::absolute(o.cgi_bin).lexically_normal().string();
  if (o.target_url.empty() && (!fs::exists(o.spawnd) || !fs::exists(o.cgi_bin + "/guestbook"))) {
    std::fprintf(stderr, "spawnd-bench: no spawnd or cgi-bin/guestbook at %s and %s: build first, or give --spawnd "
                         "and --cgi-bin\n", o.spawnd.c_str(), o.cgi_bin.c_str());
    return 2;
  }
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(i ? argv[i] : "spawnd-bench");
  try {
    return run(o, command_line);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spawnd-bench: %s\n", e.what());
    return 1;
  }
}
