// bench/runner.cpp — one run of one target (bench/runner.h).
#include "bench/runner.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench/peers.h"
#include "bench/process.h"
#include "bench/site_db.h"
#include "bench/wrk_scripts.h"
#include "common/fd.h"
#include "server/db_keeper.h"

namespace spawnd::bench {

namespace {

constexpr const char* kStaticFile = "/bench.html";
constexpr const char* kPostBody = "name=limit&message=spawn+limit+entry";
constexpr int kStartTimeoutMs = 10'000;

// A port the kernel considers free on 127.0.0.1 right now (bind to port 0, read it, close).
std::uint16_t free_port() {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (!fd || bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error(std::string("cannot find a free port: ") + std::strerror(errno));
  return ntohs(addr.sin_port);
}

// The status of one `GET path` on a fresh connection, or 0 if there was no complete status line within
// `timeout_ms` (connection refused, nothing listening yet, a server that hangs).
int http_status(std::uint16_t port, const std::string& path, int timeout_ms) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!fd || connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 0;
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return 0;
  std::string head;
  char buf[512];
  pollfd p{fd.get(), POLLIN, 0};
  while (head.find("\r\n") == std::string::npos && poll(&p, 1, timeout_ms) == 1) {
    ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
  }
  // "HTTP/1.1 200 OK"
  if (head.size() < 12 || !head.starts_with("HTTP/")) return 0;
  return std::atoi(head.c_str() + 9);
}

std::string tail_of(const std::string& path, size_t bytes = 600) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

std::string script_path(const BenchEnv& env, const std::string& workload) {
  return env.work_dir + "/wrk-" + workload + ".lua";
}

// The URL the load goes to: the --target URL, or the workload's path on the started server.
std::string target_url(const BenchEnv& env, const Target& t, std::uint16_t port) {
  if (t.server == "target") return env.custom->url;
  return "http://127.0.0.1:" + std::to_string(port) + workload_path(t.workload);
}

// Runs wrk once for `seconds` with the workload's script.
WrkReport run_wrk(const BenchEnv& env, const Target& t, std::uint16_t port, int seconds) {
  const int threads = env.wrk_threads > 0 ? env.wrk_threads : std::min(static_cast<int>(env.cores), t.concurrency);
  ProcessSpec spec;
  spec.argv = {"wrk", "-t", std::to_string(std::max(1, threads)), "-c", std::to_string(t.concurrency),
               "-d", std::to_string(seconds) + "s", "--timeout", "5s", "-s", script_path(env, t.workload)};
  if (t.server == "target")
    for (const auto& f : env.custom->request.fields) spec.argv.insert(spec.argv.end(), {"-H", f});
  spec.argv.push_back(target_url(env, t, port));
  spec.capture_stdout = true;
  spec.stderr_path = env.work_dir + "/wrk.stderr";
  Process wrk(spec);
  std::string out = wrk.read_all_stdout();
  int status = wrk.wait();
  if (interrupted()) throw Interrupted();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("wrk failed: " + tail_of(spec.stderr_path) + out.substr(0, 400));
  return parse_wrk_output(out);
}

// The open-loop spec of one run or step at `rate` for `seconds`.
OpenLoopSpec open_loop_spec(const BenchEnv& env, const Target& t, std::uint16_t port, double rate, double seconds) {
  OpenLoopSpec spec;
  if (t.server == "target") {
    spec.host = env.custom->parsed.host;
    spec.port = env.custom->parsed.port;
    spec.requests = {env.custom->request};
  } else {
    spec.port = port;
    spec.requests = workload_requests(t.workload);
  }
  spec.rate = rate;
  spec.duration_s = seconds;
  spec.connections = t.concurrency;
  spec.connection_per_request = env.connection_per_request;
  // A sweep step's responses later than twenty times the objective fail it anyway; a shorter drain keeps it bounded.
  spec.timeout_s = env.load == LoadMode::Sweep ? std::max(2.0, env.sweep.slo_p99_ms * 20 / 1000) : 5;
  return spec;
}

OpenLoopReport run_open(const BenchEnv& env, const Target& t, std::uint16_t port, double rate, double seconds) {
  OpenLoopReport r = run_open_loop(open_loop_spec(env, t, port, rate, seconds), [] { return interrupted(); });
  if (interrupted()) throw Interrupted();
  return r;
}

// POSTs answered 303 and POSTs sent, from an open-loop report (for the write check).
std::pair<std::int64_t, std::int64_t> posts_of(const OpenLoopReport& r, const std::string& workload) {
  const std::vector<LoadRequest> shapes = workload_requests(workload);
  std::int64_t sent = 0;
  for (std::size_t i = 0; i < shapes.size() && i < r.sent_by_request.size(); ++i)
    if (shapes[i].method == "POST") sent += r.sent_by_request[i];
  auto ok = r.statuses.find(303);
  return {ok == r.statuses.end() ? 0 : ok->second, sent};
}

// Waits until the target answers its workload's URL with 2xx/3xx. Throws Skip or runtime_error (see run_target).
void wait_ready(const Target& t, std::vector<Process>& procs, std::uint16_t port, const std::string& log) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kStartTimeoutMs);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (interrupted()) throw Interrupted();
    status = http_status(port, workload_path(t.workload), 2000);
    if (status >= 200 && status < 400) return;
    for (auto& p : procs) {
      std::optional<int> exit = p.poll();
      if (!exit) continue;
      // spawnd exits 2 on a bad option: a mode this build does not have yet.
      if (t.server == "spawnd" && WIFEXITED(*exit) && WEXITSTATUS(*exit) == 2 &&
          (t.mode == "fastcgi" || t.mode == "inproc"))
        throw Skip(t.label() + ": skipped: spawnd does not support --mode " + t.mode + " (" +
                   tail_of(log, 200).substr(0, tail_of(log, 200).find('\n')) + ")");
      if (t.mode == "fastcgi_pass")
        throw Skip(t.label() + ": skipped: " + workload_handler(t.workload) +
                   " did not come up as a FastCGI application (exited with status " +
                   std::to_string(WIFEXITED(*exit) ? WEXITSTATUS(*exit) : 128 + WTERMSIG(*exit)) + ")");
      throw std::runtime_error(t.label() + ": exited at start-up: " + tail_of(log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (t.mode == "fastcgi_pass")
    throw Skip(t.label() + ": skipped: " + workload_handler(t.workload) +
               " did not answer as a FastCGI application (last status " + std::to_string(status) + ")");
  throw std::runtime_error(t.label() + ": no 2xx/3xx answer within 10 s (last status " + std::to_string(status) +
                           "): " + tail_of(log));
}

// spawnd's own database keeper (server/db_keeper.h) with spawnd's default poll and the run's bound: what the driver
// runs for servers that have none (the peers) and for the limit row, so that every write row is checkpointed by the
// same policy.
server::DbKeeperConfig keeper_config(const BenchEnv& env, const std::string& db_path, const std::string& pragmas) {
  server::DbKeeperConfig c;
  c.path = db_path;
  c.pragmas = pragmas;
  c.policy.wal_max_bytes = env.wal_max_bytes;
  return c;
}

std::string fresh_db(const BenchEnv& env, const Target& t) {
  const std::string path = env.db_dir + "/run.db";
  copy_db(env.seeds.at(t.pragmas), path);
  // As root, Apache's CGI children run as www-data and must be able to write the file, its -wal and -shm.
  if (geteuid() == 0) chmod(path.c_str(), 0666);
  return path;
}

RunResult run_limit(const BenchEnv& env, const Target& t, int repetition) {
  const std::string handler = workload_handler(t.workload);
  const std::string db_path = fresh_db(env, t);
  server::DbKeeper keeper(keeper_config(env, db_path, t.pragmas));
  SpawnRateSpec spec;
  spec.program = env.cgi_bin + "/" + handler;
  const bool is_post = t.workload == "write";
  const std::string body = kPostBody;
  if (is_post) spec.stdin_path = env.work_dir + "/post-body.txt";
  spec.env = cgi_environment(spec.program, "/cgi-bin/" + handler, is_post ? "POST" : "GET",
                             is_post ? "application/x-www-form-urlencoded" : "", is_post ? body.size() : 0,
                             {"SPAWND_DB=" + db_path, "SPAWND_PRAGMAS=" + t.pragmas,
                              "SPAWND_WAL_MAX_BYTES=" + std::to_string(env.wal_max_bytes)});
  spec.parallel = env.limit_spawners;
  spec.seconds = env.duration_s;
  RunResult r;
  r.target = t;
  r.repetition = repetition;
  r.spawn = measure_spawn_rate(spec, [] { return interrupted(); });
  if (interrupted()) throw Interrupted();
  return r;
}

}  // namespace

std::string Target::label() const {
  if (server == "target") return mode;
  std::string l = server == "spawnd" ? mode : server == "limit" ? "limit (posix_spawn+wait)" : server + " " + mode;
  if (pragmas != "default") l += " [pragmas " + pragmas + "]";
  return l;
}

std::string workload_path(const std::string& workload) {
  if (workload == "static") return kStaticFile;
  return "/cgi-bin/" + workload_handler(workload);
}

std::vector<LoadRequest> workload_requests(const std::string& workload) {
  const LoadRequest get{"GET", workload_path(workload), {}, ""};
  const LoadRequest post{"POST", workload_path(workload), {"Content-Type: application/x-www-form-urlencoded"},
                         "name=open-loop&message=benchmark+entry"};
  if (workload == "write") return {post};
  if (workload == "mixed") {
    std::vector<LoadRequest> r(9, get);
    r.push_back(post);
    return r;
  }
  return {get};
}

std::string workload_handler(const std::string& workload) {
  if (workload == "hello") return "hello";
  if (workload == "static") return "";
  return "guestbook";
}

double RunResult::requests_per_second() const {
  if (wrk) return wrk->requests_per_second();
  if (open_loop) return open_loop->achieved_rps;
  if (sweep) return sweep->max_sustainable_rps;
  if (spawn) return spawn->spawns_per_second;
  return 0;
}

nlohmann::json RunResult::to_json() const {
  nlohmann::json j = {{"server", target.server},           {"mode", target.mode},
                      {"workload", target.workload},       {"concurrency", target.concurrency},
                      {"pragmas", target.pragmas},         {"label", target.label()},
                      {"repetition", repetition},          {"requests_per_second", requests_per_second()}};
  if (wrk) {
    const WrkReport& w = *wrk;
    j["requests"] = w.requests;
    j["duration_s"] = w.duration_s;
    j["bytes"] = w.bytes;
    j["latency_ms"] = {{"p50", w.p50_ms},   {"p90", w.p90_ms},         {"p99", w.p99_ms},
                       {"p99_9", w.p99_9_ms}, {"mean", w.latency_mean_ms}, {"max", w.latency_max_ms},
                       {"min", w.latency_min_ms}, {"stdev", w.latency_stdev_ms}};
    j["socket_errors"] = {{"connect", w.connect_errors}, {"read", w.read_errors}, {"write", w.write_errors},
                          {"timeout", w.timeouts}};
    j["non_2xx_3xx"] = w.non_2xx_3xx;
    j["server_cpu_s"] = server_cpu_s;
    j["server_cpu_complete"] = is_server_cpu_complete;
    j["server_cpu_us_per_request"] = w.requests > 0 ? server_cpu_s * 1e6 / static_cast<double>(w.requests) : 0.0;
  }
  if (open_loop) {
    // The open loop's own figures at the top level (offered_rps, achieved_rps, latency_ms, errors, late_sends, ...).
    j.update(open_loop->to_json());
    j["requests"] = open_loop->responses;
  }
  if (sweep) {
    j["max_sustainable_rps"] = sweep->max_sustainable_rps;
    j["sweep"] = sweep->to_json();
  }
  if (open_loop || sweep) {
    j["server_cpu_s"] = server_cpu_s;
    j["server_cpu_complete"] = is_server_cpu_complete;
  }
  if (spawn) {
    j["spawns"] = spawn->spawns;
    j["failures"] = spawn->failures;
    j["duration_s"] = spawn->seconds;
    j["parallel"] = spawn->parallel;
  }
  if (write_check) {
    const WriteCheck& c = *write_check;
    j["write_check"] = {{"rows_before", c.rows_before}, {"rows_after", c.rows_after},
                        {"posts_ok", c.posts_ok},       {"posts_sent", c.posts_sent},
                        {"integrity", c.integrity},     {"ok", c.is_ok()},
                        {"wal_bytes_max", c.wal_bytes_max}};
  }
  return j;
}

void prepare_work_dir(const BenchEnv& env) {
  namespace fs = std::filesystem;
  auto write = [](const std::string& path, std::string_view text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path);
  };
  const std::string report(wrk_script("report"));
  write(script_path(env, "read"), report);
  write(script_path(env, "hello"), report);
  write(script_path(env, "static"), report);
  write(script_path(env, "write"), report + std::string(wrk_script("guestbook_post")));
  write(script_path(env, "mixed"), report + std::string(wrk_script("guestbook_mixed")));
  write(env.work_dir + "/post-body.txt", kPostBody);
  if (env.custom) {
    // --target: the method and the body file; the header fields go on wrk's command line (-H).
    std::string lua = "wrk.method = \"" + env.custom->request.method + "\"\n";
    if (!env.custom->body_file.empty())
      lua += "do local f = assert(io.open(\"" + env.custom->body_file + "\", \"rb\")); wrk.body = f:read(\"*a\"); "
             "f:close() end\n";
    write(script_path(env, "custom"), report + lua);
  }
  // The static file: a small HTML page of about 4 KiB, a typical size for a page of a small site.
  fs::create_directories(env.work_dir + "/www");
  std::string page = "<!doctype html>\n<html lang=\"en\">\n<meta charset=\"utf-8\">\n<title>bench</title>\n";
  for (int i = 0; page.size() < 4000; ++i) page += "<p>Static paragraph " + std::to_string(i) + " of the bench page.</p>\n";
  page += "</html>\n";
  write(env.work_dir + "/www" + kStaticFile, page);
}

RunResult run_target(const BenchEnv& env, const Target& t, int repetition) {
  if (t.server == "limit") return run_limit(env, t, repetition);
  const bool is_custom = t.server == "target";
  const std::string db_path = is_custom ? "" : fresh_db(env, t);
  const std::string docroot = env.work_dir + "/www";
  const std::uint16_t port = is_custom ? env.custom->parsed.port : free_port();
  std::optional<server::DbKeeper> keeper;
  std::vector<Process> procs;
  std::string log;
  if (t.server == "spawnd") {
    ProcessSpec spec;
    spec.argv = {env.spawnd, "--listen", "127.0.0.1:" + std::to_string(port), "--root", docroot, "--cgi-bin",
                 env.cgi_bin, "--db", db_path, "--pragmas", t.pragmas, "--quiet", "--mode",
                 t.mode == "static" ? "cgi" : t.mode};
    if (t.mode == "fastcgi" || t.mode == "inproc") {
      spec.argv.push_back("--workers");
      spec.argv.push_back(std::to_string(env.workers));
    }
    if (t.mode == "fork" && env.prefork >= 0) {
      spec.argv.push_back("--prefork");
      spec.argv.push_back(std::to_string(env.prefork));
    }
    // Only when it is not spawnd's default, so that an older spawnd (--spawnd, a "before" run) still starts.
    if (env.wal_max_bytes != server::CheckpointPolicyConfig{}.wal_max_bytes) {
      spec.argv.push_back("--wal-max-bytes");
      spec.argv.push_back(std::to_string(env.wal_max_bytes));
    }
    log = spec.stderr_path = env.work_dir + "/spawnd.stderr";
    procs.emplace_back(spec);
  } else if (!is_custom) {
    // spawnd keeps the database open and checkpoints it; the peers get the same keeper, policy and bound from the
    // driver, and their handlers the same writer backstop (SPAWND_WAL_MAX_BYTES).
    keeper.emplace(keeper_config(env, db_path, t.pragmas));
    PeerSetup s{env.work_dir, docroot, env.cgi_bin, db_path, t.pragmas, workload_handler(t.workload),
                port,         env.cores, env.workers, geteuid() == 0, env.wal_max_bytes};
    procs = start_peer(t, s);
    log = env.work_dir + "/" + t.server + "-error.log";
  }
  if (!is_custom) wait_ready(t, procs, port, log);
  std::optional<WalSampler> wal;  // the WAL's high-water mark over warm-up and run
  if (t.writes() && !is_custom) wal.emplace(db_path);

  RunResult r;
  r.target = t;
  r.repetition = repetition;
  std::int64_t posts_ok = 0, posts_sent = 0;
  auto add_posts = [&](const OpenLoopReport& rep) {
    const auto [ok, sent] = posts_of(rep, t.workload);
    posts_ok += ok;
    posts_sent += sent;
  };
  // A failed load run says what became of the server, which is usually the story.
  auto explain = [&](const char* phase, auto&& load) {
    try {
      return load();
    } catch (const Interrupted&) {
      throw;
    } catch (const std::runtime_error& e) {
      std::string state = is_custom ? "" : " (server still running)";
      if (!procs.empty())
        if (std::optional<int> exit = procs.front().poll())
          state = " (server exited, wait status " + std::to_string(*exit) + ": " + tail_of(log) + ")";
      throw std::runtime_error(std::string(phase) + ": " + e.what() + state);
    }
  };
  const double warm_rate = env.load == LoadMode::Sweep ? env.sweep.start_rps : env.rate;
  if (env.warmup_s > 0) {
    if (env.load == LoadMode::ClosedLoop) {
      WrkReport warm = explain("warm-up", [&] { return run_wrk(env, t, port, env.warmup_s); });
      posts_ok += warm.posts_ok;
      posts_sent += warm.posts_sent;
    } else {
      add_posts(explain("warm-up", [&] { return run_open(env, t, port, warm_rate, env.warmup_s); }));
    }
  }
  auto cpu = [&] {
    TreeCpu sum;
    for (const auto& p : procs) {
      TreeCpu one = tree_cpu(p.pid());
      sum.seconds += one.seconds;
      sum.is_complete = sum.is_complete && one.is_complete;
    }
    return sum;
  };
  const TreeCpu cpu_before = cpu();
  switch (env.load) {
    case LoadMode::ClosedLoop:
      r.wrk = explain("measured run", [&] { return run_wrk(env, t, port, env.duration_s); });
      posts_ok += r.wrk->posts_ok;
      posts_sent += r.wrk->posts_sent;
      break;
    case LoadMode::OpenLoop:
      r.open_loop = explain("measured run", [&] { return run_open(env, t, port, env.rate, env.duration_s); });
      add_posts(*r.open_loop);
      break;
    case LoadMode::Sweep:
      r.sweep = explain("sweep", [&] {
        return run_sweep(env.sweep, [&](double rate) {
          OpenLoopReport step = run_open(env, t, port, rate, env.sweep.step_s);
          add_posts(step);
          // A moment for the server to finish what the step left (children exiting, a checkpoint).
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
          return step;
        }, [] { return interrupted(); });
      });
      if (interrupted()) throw Interrupted();
      break;
  }
  const TreeCpu cpu_after = cpu();
  // A server that died during the run leaves the load generator counting connect errors, not failing: that is a
  // failed target.
  for (auto& p : procs)
    if (std::optional<int> exit = p.poll())
      throw std::runtime_error("a server process exited during the measured run (wait status " +
                               std::to_string(*exit) + "): " + tail_of(log));
  r.server_cpu_s = cpu_after.seconds - cpu_before.seconds;
  r.is_server_cpu_complete = cpu_after.is_complete && !is_custom;
  // Stop in reverse order of start: the front server before the FastCGI application behind it.
  const std::int64_t wal_bytes_max = wal ? wal->largest_bytes() : 0;
  wal.reset();
  for (auto it = procs.rbegin(); it != procs.rend(); ++it) it->stop(15'000);
  keeper.reset();
  if (t.writes() && !is_custom) {
    WriteCheck c;
    c.rows_before = env.seed_rows;
    DbCheck after = check_site_db(db_path, t.pragmas);
    c.rows_after = after.rows;
    c.integrity = after.integrity;
    c.posts_ok = posts_ok;
    c.wal_bytes_max = wal_bytes_max;
    c.posts_sent = posts_sent;
    r.write_check = c;
  }
  return r;
}

}  // namespace spawnd::bench
