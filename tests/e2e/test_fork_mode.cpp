// `spawnd --mode fork` end to end (that the same requests answer the same in every mode, fork included, is the mode
// table of test_inproc.cpp): fork servers really
// serve (the handler is a child of a fork server, not of spawnd); every request still gets a fresh process
// (hostile fixtures from tests/fixtures/: leak, crash, hang, whoami); a replaced executable is picked up; killed
// fork servers are restarted without a hung request; programs that are not SDK handlers still run as plain CGI.
//
// The process facts come from /proc: a fork server is a child of spawnd that has the fork-server environment
// variable and its control socket on fd 3. After each test, before SIGTERM: spawnd has no zombie children and its
// fd count is back near its count after warm-up; then it exits 0. Every wait is bounded.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "proc.h"

using namespace spawnd::e2e;
using spawnd::Fd;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// The bound of every poll for a change in the process table (a restart, an exit, a reap).
constexpr auto kSettle = 5s;
// fds spawnd may hold beyond its count after warm-up without it being a leak (a pidfd of a child in mid-exit).
constexpr std::size_t kFdSlack = 2;

const std::string kFixtures = SPAWND_TEST_CGI_BIN_DIR;

// ---- /proc (beyond proc.h) ----

std::vector<pid_t> pids(const std::vector<ProcStat>& procs) {
  std::vector<pid_t> out;
  for (const auto& p : procs) out.push_back(p.pid);
  return out;
}

// Every process in group `pgid`, zombies included: a zombie left in the group means that nobody reaps it.
std::vector<pid_t> group_members(pid_t pgid) {
  std::vector<pid_t> out;
  for (const auto& p : all_processes())
    if (p.pgid == pgid) out.push_back(p.pid);
  return out;
}

std::string read_link(const std::string& path) {
  std::error_code ec;
  auto target = fs::read_symlink(path, ec);
  return ec ? std::string() : target.string();
}

bool has_fork_server_env(pid_t pid) {
  // "NAME=value\0NAME=value\0...": look for the name at the start of an entry.
  std::string env = std::string(1, '\0') + proc_file(pid, "environ");
  return env.find(std::string(1, '\0') + "SPAWND_FORK_SERVER=") != std::string::npos;
}

// The fork servers of the executable `exe` (a replaced one reads "exe (deleted)"): children of spawnd with the
// fork-server environment and the control socket on fd 3. (A fork server's own children inherit its environment
// block but are not spawnd's children, and they close fd 3.)
std::set<pid_t> fork_servers(pid_t spawnd, const std::string& exe) {
  std::set<pid_t> out;
  for (const auto& p : live_children_of(spawnd)) {
    std::string base = "/proc/" + std::to_string(p.pid);
    std::string path = read_link(base + "/exe");
    if (path != exe && path != exe + " (deleted)") continue;
    if (!has_fork_server_env(p.pid) || read_link(base + "/fd/3").rfind("socket:", 0) != 0) continue;
    out.insert(p.pid);
  }
  return out;
}

// "{200: 37, 502: 2}"
std::string describe(const std::map<int, int>& counts) {
  std::string out = "{";
  for (const auto& [k, v] : counts) out += (out.size() > 1 ? ", " : "") + std::to_string(k) + ": " + std::to_string(v);
  return out + "}";
}

// ---- spawnd ----

enum class Mode { Cgi, Fork };

const char* name(Mode m) { return m == Mode::Cgi ? "cgi" : "fork"; }

// spawnd's arguments; the test's TempDir is the document root (no static file is asked for).
std::vector<std::string> args(const TempDir& dir, Mode mode, const std::string& cgi_bin,
                              std::vector<std::string> more = {}) {
  std::vector<std::string> a{"--root", dir.path(), "--cgi-bin", cgi_bin, "--mode", name(mode), "--quiet"};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

// Test 6, run at the end of every test: no zombie children (bounded poll), the fd count back within kFdSlack of
// `baseline_fds`, and a clean exit 0 on SIGTERM.
void check_clean_and_stop(Spawnd& s, std::size_t baseline_fds) {
  const pid_t pid = s.pid();
  std::vector<pid_t> zombies;
  bool is_reaped = wait_until([&] { return (zombies = pids(zombie_children_of(pid))).empty(); }, kSettle);
  INFO("zombie children of spawnd: " << Catch::Detail::stringify(zombies));
  INFO("spawnd's stderr:\n" << s.stderr_text());
  CHECK(is_reaped);
  std::size_t fds = 0;
  bool is_back = wait_until([&] { return (fds = fd_count(pid)) <= baseline_fds + kFdSlack; }, kSettle);
  INFO("fds now " << fds << ", after warm-up " << baseline_fds);
  CHECK(is_back);
  int status = s.stop();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// The fd count once things have settled after warm-up (children in mid-exit reaped).
std::size_t settled_fd_count(pid_t pid) {
  std::this_thread::sleep_for(200ms);
  return fd_count(pid);
}

// ---- whoami ----

struct Who {
  pid_t pid = 0, ppid = 0, pgid = 0;
  int version = 0;
};

std::optional<Who> parse_who(const std::string& body) {
  Who w;
  int pid = 0, ppid = 0, pgid = 0;
  if (std::sscanf(body.c_str(), "pid=%d ppid=%d pgid=%d version=%d", &pid, &ppid, &pgid, &w.version) != 4)
    return std::nullopt;
  w.pid = pid;
  w.ppid = ppid;
  w.pgid = pgid;
  return w;
}

// Asks `target` (a whoami) until a fork server answers, i.e. its parent is not spawnd (right after start-up or a
// restart, requests are served by plain CGI while the fork servers start). Returns the last answer.
std::optional<Who> ask_until_forked(const Spawnd& s, const std::string& target) {
  std::optional<Who> who;
  wait_until(
      [&] {
        auto r = get(s.port(), target);
        who = r.status == 200 ? parse_who(r.body) : std::nullopt;
        return who && who->ppid != s.pid();
      },
      kSettle);
  return who;
}

// The pid of spawnd's one fork server of `exe` (started with --fork-servers 1), once a fork-server child has
// answered `target`.
pid_t sole_fork_server(const Spawnd& s, const std::string& exe, const std::string& target) {
  REQUIRE(ask_until_forked(s, target));
  std::set<pid_t> servers;
  REQUIRE(wait_until([&] { return (servers = fork_servers(s.pid(), exe)).size() == 1; }, kSettle));
  return *servers.begin();
}

// ---- requests ----

std::string bare(std::string_view method, std::string_view target) {
  return std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
}

}  // namespace

TEST_CASE("in fork mode the handler runs as a child of a fork server, which is spawnd's child", "[e2e][fork]") {
  const std::string exe = kFixtures + "/whoami";
  TempDir dir;
  Spawnd s(args(dir, Mode::Fork, kFixtures, {"--fork-servers", "2"}));
  auto first = ask_until_forked(s, "/cgi-bin/whoami");
  REQUIRE(first);
  std::set<pid_t> servers;
  REQUIRE(wait_until([&] { return (servers = fork_servers(s.pid(), exe)).size() == 2; }, kSettle));
  std::size_t baseline = settled_fd_count(s.pid());

  for (int i = 0; i < 6; ++i) {
    auto r = get(s.port(), "/cgi-bin/whoami");
    REQUIRE(r.status == 200);
    auto who = parse_who(r.body);
    REQUIRE(who);
    INFO("request " << i << ": " << r.body << "spawnd " << s.pid() << ", fork servers "
                    << Catch::Detail::stringify(std::vector<pid_t>(servers.begin(), servers.end())));
    CHECK(who->ppid != s.pid());
    CHECK(servers.count(who->ppid) == 1);
    CHECK(who->pgid == who->pid);  // its own process group, not the fork server's
    CHECK(servers.count(who->pid) == 0);
  }
  CHECK(fork_servers(s.pid(), exe) == servers);  // nobody restarted
  check_clean_and_stop(s, baseline);
}

TEST_CASE("in cgi mode the same handler is spawnd's own child and no fork server runs", "[e2e][fork]") {
  TempDir dir;
  Spawnd s(args(dir, Mode::Cgi, kFixtures));
  auto r = get(s.port(), "/cgi-bin/whoami");
  REQUIRE(r.status == 200);
  auto who = parse_who(r.body);
  REQUIRE(who);
  CHECK(who->ppid == s.pid());
  CHECK(who->pgid == who->pid);
  CHECK(fork_servers(s.pid(), kFixtures + "/whoami").empty());
  check_clean_and_stop(s, settled_fd_count(s.pid()));
}

TEST_CASE("every request in fork mode sees pristine globals, whatever earlier requests leaked or corrupted",
          "[e2e][fork]") {
  const std::string exe = kFixtures + "/leak";
  TempDir dir;
  Spawnd s(args(dir, Mode::Fork, kFixtures, {"--fork-servers", "1"}));
  // Warm up: the first request starts the fork server (and is served by plain CGI meanwhile); then ask until
  // the fork server answers (X-Parent: the pid of the process that forked the handler).
  REQUIRE(get(s.port(), "/cgi-bin/leak").status == 200);
  std::set<pid_t> servers;
  REQUIRE(wait_until([&] { return (servers = fork_servers(s.pid(), exe)).size() == 1; }, kSettle));
  const std::string server = std::to_string(*servers.begin());
  REQUIRE(wait_until([&] { return get(s.port(), "/cgi-bin/leak").field("X-Parent") == server; }, kSettle));
  std::size_t baseline = settled_fd_count(s.pid());
  const long rss_before = vm_rss_kib(*servers.begin());

  std::map<std::string, int> bodies;
  for (int i = 0; i < 20; ++i) {
    auto r = get(s.port(), "/cgi-bin/leak");
    CHECK(r.status == 200);
    CHECK(r.field("X-Parent") == server);  // a child of the fork server
    bodies[r.body]++;
  }
  std::string seen;
  for (const auto& [body, n] : bodies) seen += std::to_string(n) + " x " + body;
  INFO("bodies:\n" << seen);
  CHECK(bodies.size() == 1);
  CHECK(bodies["counter=1 global=pristine\n"] == 20);
  // The leaks stayed in the children: the fork server never ran the handler (and is still the same process).
  const long rss_after = vm_rss_kib(*servers.begin());
  INFO("fork server VmRSS before " << rss_before << " KiB, after " << rss_after << " KiB");
  CHECK(rss_after >= 0);
  CHECK(rss_after - rss_before < 10 * 1024);
  CHECK(fork_servers(s.pid(), exe) == servers);
  check_clean_and_stop(s, baseline);
}

TEST_CASE("a handler that dies of SIGSEGV in fork mode gets 502 and a log line, and everything still serves",
          "[e2e][fork]") {
  TempDir dir;
  Spawnd s(args(dir, Mode::Fork, kFixtures, {"--fork-servers", "1"}));
  REQUIRE(ask_until_forked(s, "/cgi-bin/whoami"));
  REQUIRE(get(s.port(), "/cgi-bin/crash?ok").status == 200);
  std::set<pid_t> crash_servers;
  REQUIRE(wait_until([&] { return (crash_servers = fork_servers(s.pid(), kFixtures + "/crash")).size() == 1; },
                     kSettle));
  std::this_thread::sleep_for(100ms);  // let it report Ready
  std::size_t baseline = settled_fd_count(s.pid());

  auto crashed = get(s.port(), "/cgi-bin/crash");
  CHECK(crashed.status == 502);
  CHECK(crashed.is_complete);
  // One line on spawnd's stderr names the handler and the signal (it may follow the response).
  auto names_signal = [&] {
    std::istringstream lines(s.stderr_text());
    for (std::string line; std::getline(lines, line);)
      if (line.find("crash") != std::string::npos && line.find("Segmentation fault") != std::string::npos) return true;
    return false;
  };
  bool is_logged = wait_until(names_signal, kSettle);
  INFO("spawnd's stderr:\n" << s.stderr_text());
  CHECK(is_logged);

  auto other = get(s.port(), "/cgi-bin/whoami");
  CHECK(other.status == 200);
  auto itself = get(s.port(), "/cgi-bin/crash?ok");
  CHECK(itself.status == 200);
  CHECK(itself.body == "alive\n");
  CHECK(get(s.port(), "/cgi-bin/crash").status == 502);
  CHECK(get(s.port(), "/cgi-bin/crash?ok").status == 200);
  CHECK(fork_servers(s.pid(), kFixtures + "/crash") == crash_servers);  // a child's crash leaves its fork server be
  check_clean_and_stop(s, baseline);
}

TEST_CASE("a handler that hangs gets 504 after --cgi-timeout and its whole process group is gone", "[e2e][fork]") {
  const Mode mode = GENERATE(Mode::Fork, Mode::Cgi);
  INFO(name(mode) << " mode");
  TempDir dir;
  Spawnd s(args(dir, mode, kFixtures, {"--fork-servers", "1", "--cgi-timeout", "1", "--kill-grace", "1"}));
  if (mode == Mode::Fork) REQUIRE(ask_until_forked(s, "/cgi-bin/whoami"));
  REQUIRE(get(s.port(), "/cgi-bin/whoami").status == 200);
  // Warm up the hang handler's fork server with a request that we abandon at once (its group is killed).
  if (mode == Mode::Fork) {
    {
      Fd c = connect_to(s.port());
      send_all(c, bare("GET", "/cgi-bin/hang"));
    }
    REQUIRE(wait_until([&] { return fork_servers(s.pid(), kFixtures + "/hang").size() == 1; }, kSettle));
    std::this_thread::sleep_for(100ms);
  }
  const std::size_t log_start = s.stderr_text().size();

  Fd c = connect_to(s.port());
  REQUIRE(send_all(c, bare("GET", "/cgi-bin/hang")));
  // The handler logs "pgid=N pid=N child=N" before it sleeps.
  std::smatch m;
  pid_t pgid = 0, pid = 0, child = 0;
  const std::regex logged("hang: pgid=([0-9]+) pid=([0-9]+) child=([0-9]+)");
  REQUIRE(wait_until(
      [&] {
        std::string text = s.stderr_text().substr(log_start);
        if (!std::regex_search(text, m, logged)) return false;
        pgid = std::stoi(m[1]);
        pid = std::stoi(m[2]);
        child = std::stoi(m[3]);
        return true;
      },
      kSettle));
  CHECK(pgid == pid);
  auto members = group_members(pgid);
  INFO("group " << pgid << " before the timeout: " << Catch::Detail::stringify(members));
  CHECK(std::count(members.begin(), members.end(), child) == 1);

  auto r = read_response(c, false, 10000);
  CHECK(r.status == 504);
  bool is_gone = wait_until([&] { return (members = group_members(pgid)).empty(); }, kSettle);
  std::string states;
  for (pid_t p : members)
    if (auto st = proc_stat(p)) states += std::to_string(p) + " state " + st->state + " ppid " + std::to_string(st->ppid) + "; ";
  INFO("left in group " << pgid << ": " << states << "spawnd is " << s.pid());
  CHECK(is_gone);
  check_clean_and_stop(s, settled_fd_count(s.pid()));
}

TEST_CASE("a handler executable replaced while spawnd runs is served in its new version by new fork servers",
          "[e2e][fork]") {
  TempDir dir;
  const std::string bin = dir.path() + "/cgi-bin";
  const std::string app = dir.install("cgi-bin/app", kFixtures + "/whoami");
  Spawnd s(args(dir, Mode::Fork, bin, {"--fork-servers", "2"}));
  auto before = ask_until_forked(s, "/cgi-bin/app");
  REQUIRE(before);
  CHECK(before->version == 1);
  std::set<pid_t> old_servers;
  REQUIRE(wait_until([&] { return (old_servers = fork_servers(s.pid(), app)).size() == 2; }, kSettle));
  std::this_thread::sleep_for(100ms);
  std::size_t baseline = settled_fd_count(s.pid());

  // Deploy: write the new version beside it, then rename it over the old one (a new inode; the old file lives on
  // while its fork servers run).
  dir.deploy("cgi-bin/app", kFixtures + "/whoami2");

  // The first requests after the replace may be plain CGI while new fork servers start: both run the new file.
  std::optional<Who> who;
  bool is_new = wait_until(
      [&] {
        auto r = get(s.port(), "/cgi-bin/app");
        who = r.status == 200 ? parse_who(r.body) : std::nullopt;
        return who && who->version == 2;
      },
      kSettle);
  CHECK(is_new);
  for (int i = 0; i < 5; ++i) {
    auto r = get(s.port(), "/cgi-bin/app");
    CHECK(r.status == 200);
    auto w = parse_who(r.body);
    REQUIRE(w);
    CHECK(w->version == 2);
  }
  // The old fork servers retire and exit; two new ones serve.
  bool are_old_gone = wait_until(
      [&] {
        for (const auto& c : children_of(s.pid()))
          if (old_servers.count(c.pid)) return false;
        return true;
      },
      kSettle);
  CHECK(are_old_gone);
  std::set<pid_t> new_servers;
  CHECK(wait_until([&] { return (new_servers = fork_servers(s.pid(), app)).size() == 2; }, kSettle));
  for (pid_t p : new_servers) CHECK(old_servers.count(p) == 0);
  auto after = ask_until_forked(s, "/cgi-bin/app");
  REQUIRE(after);
  CHECK(after->version == 2);
  CHECK(new_servers.count(after->ppid) == 1);
  check_clean_and_stop(s, baseline);
}

TEST_CASE("fork servers SIGKILLed under load are restarted and no request hangs", "[e2e][fork]") {
  const std::string exe = kFixtures + "/whoami";
  TempDir dir;
  // Not --quiet: on a failure, the access log tells what spawnd answered to each request.
  auto a = args(dir, Mode::Fork, kFixtures, {"--fork-servers", "2"});
  a.erase(std::find(a.begin(), a.end(), std::string("--quiet")));
  Spawnd s(a);
  REQUIRE(ask_until_forked(s, "/cgi-bin/whoami"));
  std::set<pid_t> killed;
  REQUIRE(wait_until([&] { return (killed = fork_servers(s.pid(), exe)).size() == 2; }, kSettle));
  std::this_thread::sleep_for(100ms);
  std::size_t baseline = settled_fd_count(s.pid());

  constexpr int kRequestTimeoutMs = 5000;  // far above a request's cost; a hung one shows up as status 0
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + 2s;
  std::vector<std::vector<int>> statuses(4);
  std::vector<std::string> odd(4);  // what the requests that were not answered 200 or 502 looked like
  std::vector<std::thread> clients;
  for (std::size_t t = 0; t < statuses.size(); ++t) {
    clients.emplace_back([&, t] {
      while (std::chrono::steady_clock::now() < end) {
        auto sent = std::chrono::steady_clock::now();
        HttpResponse r;
        try {
          r = get(s.port(), "/cgi-bin/whoami", kRequestTimeoutMs);
        } catch (const std::exception& e) {  // connect failed: must not escape the thread (std::terminate)
          r.status = -1;
          r.status_line = e.what();
        }
        statuses[t].push_back(r.status);
        if (r.status != 200 && r.status != 502) {
          auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sent);
          odd[t] += "after " + std::to_string(ms.count()) + " ms: '" + r.status_line + "', " +
                    std::to_string(r.body.size()) + " body bytes" + (r.is_complete ? "" : ", incomplete") + "\n";
        }
      }
    });
  }
  std::this_thread::sleep_until(start + 500ms);
  for (pid_t p : killed) ::kill(p, SIGKILL);
  for (auto& c : clients) c.join();

  std::map<int, int> by_status;
  for (const auto& v : statuses)
    for (int st : v) by_status[st]++;
  INFO("statuses: " << describe(by_status));
  INFO("other answers:\n" << odd[0] << odd[1] << odd[2] << odd[3]);
  std::string not_ok;
  std::istringstream access_log(s.stdout_text());
  for (std::string line; std::getline(access_log, line);)
    if (line.find("\" 200 ") == std::string::npos) not_ok += line + "\n";
  INFO("access log lines other than 200:\n" << not_ok);
  INFO("spawnd's stderr:\n" << s.stderr_text());
  CHECK(by_status.count(0) == 0);   // none hung (or was cut off)
  CHECK(by_status.count(-1) == 0);  // none was refused
  for (const auto& [st, n] : by_status) CHECK((st == 200 || st == 502));
  CHECK(by_status[200] > 0);

  std::set<pid_t> restarted;
  bool is_restarted = wait_until(
      [&] {
        restarted = fork_servers(s.pid(), exe);
        if (restarted.size() != 2) return false;
        for (pid_t p : restarted)
          if (killed.count(p)) return false;
        return true;
      },
      kSettle);
  CHECK(is_restarted);
  auto who = ask_until_forked(s, "/cgi-bin/whoami");
  REQUIRE(who);
  CHECK(restarted.count(who->ppid) == 1);
  for (int i = 0; i < 10; ++i) CHECK(get(s.port(), "/cgi-bin/whoami").status == 200);
  check_clean_and_stop(s, baseline);
}

TEST_CASE("a shell script that is not an SDK handler runs as plain CGI in fork mode, answering as in cgi mode",
          "[e2e][fork]") {
  TempDir dir;
  const std::string bin = dir.path() + "/cgi-bin";
  dir.write("cgi-bin/script",
            "#!/bin/sh\n"
            "printf 'Content-Type: text/plain\\r\\nX-Parent: %s\\r\\n\\r\\n' \"$PPID\"\n"
            "printf 'method=%s query=%s path_info=%s gateway=%s\\n' \"$REQUEST_METHOD\" \"$QUERY_STRING\" "
            "\"$PATH_INFO\" \"$GATEWAY_INTERFACE\"\n"
            "printf 'fork_server_env=%s\\n' \"${SPAWND_FORK_SERVER-unset}\"\n",
            true);
  std::map<Mode, HttpResponse> got;
  for (Mode mode : {Mode::Cgi, Mode::Fork}) {
    INFO(name(mode) << " mode");
    Spawnd s(args(dir, mode, bin));
    REQUIRE(get(s.port(), "/cgi-bin/script").status == 200);  // warm-up
    std::size_t baseline = settled_fd_count(s.pid());
    auto r = get(s.port(), "/cgi-bin/script/x?y=1");
    CHECK(r.status == 200);
    CHECK(r.field("X-Parent") == std::optional<std::string>(std::to_string(s.pid())));  // spawnd's own child
    CHECK(r.body == "method=GET query=y=1 path_info=/x gateway=CGI/1.1\nfork_server_env=unset\n");
    got[mode] = r;
    check_clean_and_stop(s, baseline);
  }
  CHECK(got[Mode::Cgi].status_line == got[Mode::Fork].status_line);
  CHECK(got[Mode::Cgi].field("Content-Type") == got[Mode::Fork].field("Content-Type"));
  CHECK(got[Mode::Cgi].body == got[Mode::Fork].body);
}

// Issue 20: replacing a handler while a Spawn is pending used to drop a fork server whose control socket was still
// registered with the loop (a new fork server's socketpair reusing the number was then refused, or replaced an
// entry still in use), and its pending spawn held a child slot for ever. Retiring now reads the fork server's
// answers, takes its control socket out of the loop and closes it, fails its unanswered spawns (their pipes then
// decide) and SIGKILLs it, so that a stopped fork server cannot fork them later: the pending request gets 502 at
// once, and its slot is free again.
TEST_CASE("a handler replaced while its fork server holds a pending spawn: 502 for that request, its slot freed, "
          "new fork servers serve the new version",
          "[e2e][fork]") {
  TempDir dir;
  const std::string bin = dir.path() + "/cgi-bin";
  const std::string app = dir.install("cgi-bin/app", kFixtures + "/whoami");
  // A plain CGI script that holds a child slot for a while.
  dir.write("cgi-bin/busy", "#!/bin/sh\nsleep 1\nprintf 'Content-Type: text/plain\\r\\n\\r\\nbusy\\n'\n", true);
  // Two child slots, no queue: a slot that is never given back shows up as a 503.
  Spawnd s(args(dir, Mode::Fork, bin, {"--fork-servers", "1", "--max-children", "2", "--queue", "0", "--cgi-timeout",
                                       "30"}));
  REQUIRE(ask_until_forked(s, "/cgi-bin/app"));
  std::set<pid_t> old_servers;
  REQUIRE(wait_until([&] { return (old_servers = fork_servers(s.pid(), app)).size() == 1; }, kSettle));
  const pid_t old_server = *old_servers.begin();
  std::size_t baseline = settled_fd_count(s.pid());

  // R1 goes to the stopped fork server: its Spawn waits, unread, in the control socket.
  REQUIRE(::kill(old_server, SIGSTOP) == 0);
  Fd r1 = connect_to(s.port());
  REQUIRE(send_all(r1, bare("GET", "/cgi-bin/app")));
  std::this_thread::sleep_for(300ms);
  REQUIRE(wait_until([&] { return proc_stat(old_server) && proc_stat(old_server)->state == 'T'; }, kSettle));

  // Deploy a new version; the next request sees it, retires the old fork server and runs as plain CGI meanwhile.
  dir.deploy("cgi-bin/app", kFixtures + "/whoami2");
  auto r2 = get(s.port(), "/cgi-bin/app");
  CHECK(r2.status == 200);
  auto who2 = parse_who(r2.body);
  REQUIRE(who2);
  CHECK(who2->version == 2);

  // R1: its fork server was SIGKILLed with the Spawn unread, so no child ever ran it; its stdout closes empty: 502,
  // long before --cgi-timeout.
  const auto sent = std::chrono::steady_clock::now();
  auto r1_response = read_response(r1, false, 5000);
  CHECK(r1_response.status == 502);
  CHECK(std::chrono::steady_clock::now() - sent < 4s);
  CHECK(wait_until([&] { return !proc_stat(old_server) || proc_stat(old_server)->ppid != s.pid(); }, kSettle));

  // R1's slot is free again: with one slot busy, another request still gets a child (not 503).
  Fd busy = connect_to(s.port());
  REQUIRE(send_all(busy, bare("GET", "/cgi-bin/busy")));
  std::this_thread::sleep_for(200ms);
  auto r3 = get(s.port(), "/cgi-bin/app");
  CHECK(r3.status == 200);
  CHECK(read_response(busy, false, 5000).status == 200);

  // The new fork server starts (its control socket registers without trouble) and serves version 2.
  std::set<pid_t> new_servers;
  CHECK(wait_until([&] { return (new_servers = fork_servers(s.pid(), app)).size() == 1; }, kSettle));
  auto after = ask_until_forked(s, "/cgi-bin/app");
  REQUIRE(after);
  CHECK(after->version == 2);
  CHECK(new_servers.count(after->ppid) == 1);
  const std::string log = s.stderr_text();
  INFO("spawnd's stderr:\n" << log);
  CHECK(log.find("epoll_ctl") == std::string::npos);
  CHECK(log.find("fork server reported no child we can watch") != std::string::npos);
  check_clean_and_stop(s, baseline);
}

// Children are tracked by the pidfd taken when each starts (CLONE_PIDFD for --spawn vfork, pidfd_open right after
// posix_spawn / fork, and the one a fork server passes with Spawned), never by pid: under load every request is
// answered, every child reaped, and no pidfd is left open.
TEST_CASE("under load every request is answered 200 by a fresh child, whatever starts it, nothing is left behind",
          "[e2e][fork]") {
  struct Setup {
    Mode mode;
    const char* spawn;
  };
  const Setup setup = GENERATE(Setup{Mode::Cgi, "vfork"}, Setup{Mode::Cgi, "posix_spawn"}, Setup{Mode::Cgi, "fork"},
                               Setup{Mode::Fork, "vfork"});
  INFO(name(setup.mode) << " mode, --spawn " << setup.spawn);
  TempDir dir;
  Spawnd s(args(dir, setup.mode, kFixtures, {"--fork-servers", "2", "--max-children", "4", "--spawn", setup.spawn}));
  if (setup.mode == Mode::Fork) REQUIRE(ask_until_forked(s, "/cgi-bin/whoami"));
  REQUIRE(get(s.port(), "/cgi-bin/whoami").status == 200);
  std::size_t baseline = settled_fd_count(s.pid());

  constexpr int kClients = 4, kRequests = 100;
  std::vector<std::map<int, int>> statuses(kClients);
  std::vector<int> forked(kClients, 0);
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < kRequests; ++i) {
        auto r = get(s.port(), "/cgi-bin/whoami", 10000);
        statuses[static_cast<std::size_t>(t)][r.status]++;
        auto who = r.status == 200 ? parse_who(r.body) : std::nullopt;
        if (who && who->ppid != s.pid()) forked[static_cast<std::size_t>(t)]++;
      }
    });
  }
  for (auto& c : clients) c.join();
  std::map<int, int> all;
  int all_forked = 0;
  for (int t = 0; t < kClients; ++t) {
    for (const auto& [st, n] : statuses[static_cast<std::size_t>(t)]) all[st] += n;
    all_forked += forked[static_cast<std::size_t>(t)];
  }
  INFO("statuses: " << describe(all) << "; spawnd's stderr:\n" << s.stderr_text());
  CHECK(all[200] == kClients * kRequests);
  if (setup.mode == Mode::Fork) {
    CHECK(all_forked > kClients * kRequests / 2);  // mostly children of fork servers
  } else {
    CHECK(all_forked == 0);
  }
  check_clean_and_stop(s, baseline);
}

// The fork server could not take a child's pidfd (its fd limit is reached), so it killed the child and reported
// only its pid: spawnd cannot watch that child, lets its pipes decide (a response if it was quick enough, else 502),
// frees the slot and serves on. (--prefork 0: a pre-forked child's pidfd is taken before any request.)
TEST_CASE("a child whose fork server cannot give its pidfd is answered from its pipes, and spawnd serves on",
          "[e2e][fork]") {
  const std::string exe = kFixtures + "/whoami";
  TempDir dir;
  Spawnd s(args(dir, Mode::Fork, kFixtures, {"--fork-servers", "1", "--max-children", "1", "--prefork", "0"}));
  const pid_t server = sole_fork_server(s, exe, "/cgi-bin/whoami");
  std::size_t baseline = settled_fd_count(s.pid());

  // Room for the 3 fds of a Spawn below its fd limit, none for a pidfd.
  std::set<int> open;
  for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(server) + "/fd"))
    open.insert(std::stoi(entry.path().filename().string()));
  int free_found = 0, limit = 0;
  for (int fd = 0; free_found < 3; ++fd)
    if (open.count(fd) == 0) {
      ++free_found;
      limit = fd + 1;
    }
  rlimit old{};
  REQUIRE(::prlimit(server, RLIMIT_NOFILE, nullptr, &old) == 0);
  rlimit tight{static_cast<rlim_t>(limit), old.rlim_max};
  REQUIRE(::prlimit(server, RLIMIT_NOFILE, &tight, nullptr) == 0);
  for (int i = 0; i < 3; ++i) {
    auto r = get(s.port(), "/cgi-bin/whoami", 5000);
    CHECK((r.status == 200 || r.status == 502));
  }
  const std::string log = s.stderr_text();
  INFO("spawnd's stderr:\n" << log);
  CHECK(log.find("could not give us child") != std::string::npos);
  CHECK(log.find("Too many open files: child killed") != std::string::npos);

  // With its limit back, the same fork server serves normally (the slot of --max-children 1 was given back).
  REQUIRE(::prlimit(server, RLIMIT_NOFILE, &old, nullptr) == 0);
  auto who = ask_until_forked(s, "/cgi-bin/whoami");
  REQUIRE(who);
  CHECK(who->ppid == server);
  check_clean_and_stop(s, baseline);
}

// Issue 20, part 1: a connection reset while its request waits for a child slot, in the same epoll batch as the
// completion that frees a slot. Before the fix, Connection::close() deferred the exchange's destruction and the
// connection's, and run_deferred() freed the connection first; a later task of the batch (then: the exit callback
// that ChildTable::watch deferred when pidfd_open failed with ESRCH; since the fork server passes the pidfd with
// Spawned, the pidfd's readiness) launched the queued exchange, which read the freed Request and body
// (heap-use-after-free under asan-ubsan; this test reproduced it every time on the code before the fix). Both
// processes are stopped while the events pile up, so one epoll_wait returns them in this order: the reset first,
// then the fork server's Spawned message.
TEST_CASE("a client reset while its request is queued, in one batch with a freed slot, leaves spawnd serving",
          "[e2e][fork]") {
  const std::string exe = kFixtures + "/whoami";
  TempDir dir;
  // --prefork 0: the fork at request time is what this is about, and the wait below is for the fork server to have
  // no child at all.
  Spawnd s(args(dir, Mode::Fork, kFixtures, {"--fork-servers", "1", "--max-children", "1", "--prefork", "0"}));
  const pid_t server = sole_fork_server(s, exe, "/cgi-bin/whoami");
  std::size_t baseline = settled_fd_count(s.pid());

  // R1 takes the only slot; its Spawn message waits in the stopped fork server's socket. R2 is queued.
  REQUIRE(::kill(server, SIGSTOP) == 0);
  Fd r1 = connect_to(s.port());
  REQUIRE(send_all(r1, bare("GET", "/cgi-bin/whoami")));
  std::this_thread::sleep_for(200ms);
  Fd r2 = connect_to(s.port());
  REQUIRE(send_all(r2, bare("GET", "/cgi-bin/whoami")));
  std::this_thread::sleep_for(200ms);

  // With spawnd stopped: R2 resets (as wrk does), then the fork server forks R1's child, which answers into its
  // pipe and exits, and is reaped by the fork server.
  REQUIRE(::kill(s.pid(), SIGSTOP) == 0);
  linger reset{1, 0};
  REQUIRE(::setsockopt(r2.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset) == 0);
  r2.reset();
  REQUIRE(::kill(server, SIGCONT) == 0);
  std::this_thread::sleep_for(300ms);
  bool is_reaped = wait_until([&] { return children_of(server).empty(); }, kSettle);
  REQUIRE(::kill(s.pid(), SIGCONT) == 0);
  REQUIRE(is_reaped);

  auto first = read_response(r1);
  INFO("spawnd's stderr:\n" << s.stderr_text());
  CHECK(first.status == 200);
  REQUIRE(proc_stat(s.pid()));
  for (int i = 0; i < 3; ++i) CHECK(get(s.port(), "/cgi-bin/whoami").status == 200);
  check_clean_and_stop(s, baseline);
}

// ---- pre-forked children (--prefork, common/fork_protocol.h) ----

namespace {

// The pre-forked children waiting in fork server `server`: its live children still in its process group (a child
// handed a request moves to a group of its own first).
std::vector<pid_t> waiting_children(pid_t server) {
  std::vector<pid_t> out;
  for (const auto& p : live_children_of(server))
    if (p.pgid == server) out.push_back(p.pid);
  return out;
}

// No zombie among the fork server's children (it reaps every one, waiting or served), within kSettle.
void check_no_zombies_under(pid_t server) {
  std::vector<pid_t> zombies;
  const bool is_reaped = wait_until([&] { return (zombies = pids(zombie_children_of(server))).empty(); }, kSettle);
  INFO("zombie children of fork server " << server << ": " << Catch::Detail::stringify(zombies));
  CHECK(is_reaped);
}

// `n` requests for `target` from `clients` threads at once; the answers' Who, in no order. Fails on a non-200.
std::vector<Who> whoami_burst(const Spawnd& s, const std::string& target, int clients, int n) {
  std::vector<std::vector<Who>> got(static_cast<std::size_t>(clients));
  std::vector<int> failed(static_cast<std::size_t>(clients), 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < n / clients; ++i) {
        auto r = get(s.port(), target);
        auto who = r.status == 200 ? parse_who(r.body) : std::nullopt;
        if (who) got[static_cast<std::size_t>(t)].push_back(*who);
        else ++failed[static_cast<std::size_t>(t)];
      }
    });
  for (auto& t : threads) t.join();
  std::vector<Who> all;
  for (const auto& g : got) all.insert(all.end(), g.begin(), g.end());
  int failures = 0;
  for (int f : failed) failures += f;
  CHECK(failures == 0);
  return all;
}

}  // namespace

TEST_CASE("with --prefork no process serves two requests, and the requests are served by waiting children",
          "[e2e][fork][prefork]") {
  const std::string exe = kFixtures + "/whoami";
  TempDir dir;
  Spawnd s(args(dir, Mode::Fork, kFixtures, {"--fork-servers", "1", "--prefork", "4"}));
  const pid_t server = sole_fork_server(s, exe, "/cgi-bin/whoami");
  REQUIRE(wait_until([&] { return !waiting_children(server).empty(); }, kSettle));
  std::size_t baseline = settled_fd_count(s.pid());
  const std::vector<pid_t> waiting = waiting_children(server);

  // One at a time, then 8 at once: every pid answers once, each a child of the fork server in a group of its own.
  std::vector<Who> all;
  for (int i = 0; i < 40; ++i) {
    auto r = get(s.port(), "/cgi-bin/whoami");
    REQUIRE(r.status == 200);
    auto who = parse_who(r.body);
    REQUIRE(who);
    all.push_back(*who);
  }
  auto burst = whoami_burst(s, "/cgi-bin/whoami", 8, 160);
  all.insert(all.end(), burst.begin(), burst.end());
  std::map<pid_t, int> served;
  for (const auto& w : all) {
    ++served[w.pid];
    CHECK(w.ppid == server);
    CHECK(w.pgid == w.pid);
  }
  CHECK(all.size() == 200);
  CHECK(served.size() == all.size());  // 200 requests, 200 processes
  // The first request after warm-up went to a child that was waiting before it arrived.
  CHECK(std::find(waiting.begin(), waiting.end(), all.front().pid) != waiting.end());
  check_no_zombies_under(server);
  check_clean_and_stop(s, baseline);
}

TEST_CASE("with --prefork a request that crashes its child leaves the next ones unaffected", "[e2e][fork][prefork]") {
  TempDir dir;
  Spawnd s(args(dir, Mode::Fork, kFixtures, {"--fork-servers", "1", "--prefork", "2"}));
  REQUIRE(wait_until([&] { return get(s.port(), "/cgi-bin/crash?ok").status == 200 &&
                                  !fork_servers(s.pid(), kFixtures + "/crash").empty(); }, kSettle));
  const pid_t server = *fork_servers(s.pid(), kFixtures + "/crash").begin();
  REQUIRE(wait_until([&] { return !waiting_children(server).empty(); }, kSettle));
  std::size_t baseline = settled_fd_count(s.pid());
  for (int i = 0; i < 10; ++i) {
    CHECK(get(s.port(), "/cgi-bin/crash").status == 502);
    CHECK(get(s.port(), "/cgi-bin/crash?ok").status == 200);
  }
  CHECK(fork_servers(s.pid(), kFixtures + "/crash") == std::set<pid_t>{server});
  check_no_zombies_under(server);
  check_clean_and_stop(s, baseline);
}

TEST_CASE("a replaced handler executable discards the pre-forked children of the old one", "[e2e][fork][prefork]") {
  TempDir dir;
  const std::string bin = dir.path() + "/cgi-bin";
  const std::string app = dir.install("cgi-bin/app", kFixtures + "/whoami");
  Spawnd s(args(dir, Mode::Fork, bin, {"--fork-servers", "1", "--prefork", "4"}));
  const pid_t server = sole_fork_server(s, app, "/cgi-bin/app");
  std::vector<pid_t> old_waiting;
  REQUIRE(wait_until([&] { return !(old_waiting = waiting_children(server)).empty(); }, kSettle));
  std::size_t baseline = settled_fd_count(s.pid());

  dir.deploy("cgi-bin/app", kFixtures + "/whoami2");
  // The very next request runs the new file (plain CGI while the new fork server starts), and so does every later one.
  for (int i = 0; i < 10; ++i) {
    auto r = get(s.port(), "/cgi-bin/app");
    REQUIRE(r.status == 200);
    auto who = parse_who(r.body);
    REQUIRE(who);
    CHECK(who->version == 2);
    CHECK(std::find(old_waiting.begin(), old_waiting.end(), who->pid) == old_waiting.end());
  }
  // The old children never served and are gone with their fork server (its group was SIGKILLed).
  const bool are_gone = wait_until(
      [&] {
        for (pid_t p : old_waiting)
          if (proc_stat(p)) return false;
        return !proc_stat(server);
      },
      kSettle);
  CHECK(are_gone);
  auto after = ask_until_forked(s, "/cgi-bin/app");
  REQUIRE(after);
  CHECK(after->version == 2);
  check_no_zombies_under(after->ppid);
  check_clean_and_stop(s, baseline);
}

TEST_CASE("a database file deleted and recreated is never read through a pre-forked child's stale connection",
          "[e2e][fork][prefork]") {
  TempDir dir;
  const std::string db = dir.path() + "/site.db";
  const std::string kv = std::string(SPAWND_CGI_BIN_DIR) + "/kv";
  Spawnd s(args(dir, Mode::Fork, SPAWND_CGI_BIN_DIR, {"--fork-servers", "1", "--prefork", "3", "--db", db}));
  auto put = [&](const std::string& key, const std::string& value) {
    return request(s.port(), "PUT /cgi-bin/kv/" + key + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                             "Content-Type: application/json\r\nContent-Length: " + std::to_string(value.size()) +
                             "\r\n\r\n" + value).status;
  };
  REQUIRE(put("k", "\"old\"") == 201);
  std::set<pid_t> servers;
  REQUIRE(wait_until([&] { return (servers = fork_servers(s.pid(), kv)).size() == 1; }, kSettle));
  const pid_t server = *servers.begin();
  // Children warmed on the old file (each with it open), then the file deleted and an empty database in its place.
  std::vector<pid_t> warm;
  REQUIRE(wait_until([&] { return (warm = waiting_children(server)).size() >= 1; }, kSettle));
  CHECK(get(s.port(), "/cgi-bin/kv/k").status == 200);
  std::this_thread::sleep_for(300ms);  // the replacement's warm-up (open + migrate) done
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db + suffix);
  {
    std::ofstream create(db);  // an empty file is an empty SQLite database
  }
  for (int i = 0; i < 5; ++i) {
    auto r = get(s.port(), "/cgi-bin/kv/k");
    INFO("request " << i << ": " << r.body);
    CHECK(r.status == 404);  // the new, empty database: never the old row
  }
  REQUIRE(put("k", "\"new\"") == 201);
  auto r = get(s.port(), "/cgi-bin/kv/k");
  CHECK(r.body.find("new") != std::string::npos);
  check_no_zombies_under(server);
  check_clean_and_stop(s, settled_fd_count(s.pid()));
}

TEST_CASE("the pre-forked pool grows under concurrent load and shrinks back to its minimum when idle",
          "[e2e][fork][prefork]") {
  const std::string exe = kFixtures + "/whoami";
  TempDir dir;
  Spawnd s(args(dir, Mode::Fork, kFixtures, {"--fork-servers", "1", "--prefork", "6"}));
  const pid_t server = sole_fork_server(s, exe, "/cgi-bin/whoami");
  std::size_t baseline = settled_fd_count(s.pid());
  // Bursts of 8 at once find the pool short and grow its target towards 6.
  std::size_t most = 0;
  for (int round = 0; round < 6 && most < 3; ++round) {
    (void)whoami_burst(s, "/cgi-bin/whoami", 8, 64);
    wait_until([&] { return (most = std::max(most, waiting_children(server).size())) >= 3; }, 300ms);
  }
  INFO("most children seen waiting: " << most);
  CHECK(most >= 3);
  CHECK(most <= 6);
  // Idle: each waits kPreforkIdleMs (2 s) and retires, down to the one the minimum keeps.
  std::vector<pid_t> now;
  const bool is_shrunk = wait_until([&] { return (now = waiting_children(server)).size() == 1; }, 6 * kSettle / 5 * 2);
  INFO("waiting now: " << Catch::Detail::stringify(now));
  CHECK(is_shrunk);
  std::this_thread::sleep_for(300ms);
  CHECK(waiting_children(server).size() == 1);  // and stays there
  check_no_zombies_under(server);
  check_clean_and_stop(s, baseline);
}

TEST_CASE("a waiting pre-forked child killed with SIGKILL is replaced, and the next requests are served",
          "[e2e][fork][prefork]") {
  const std::string exe = kFixtures + "/whoami";
  TempDir dir;
  Spawnd s(args(dir, Mode::Fork, kFixtures, {"--fork-servers", "1", "--prefork", "2"}));
  const pid_t server = sole_fork_server(s, exe, "/cgi-bin/whoami");
  std::vector<pid_t> waiting;
  REQUIRE(wait_until([&] { return !(waiting = waiting_children(server)).empty(); }, kSettle));
  std::size_t baseline = settled_fd_count(s.pid());
  for (pid_t p : waiting) REQUIRE(::kill(p, SIGKILL) == 0);
  // Reaped by the fork server (no zombie) and replaced by new waiting children.
  REQUIRE(wait_until(
      [&] {
        auto w = waiting_children(server);
        return !w.empty() && std::none_of(w.begin(), w.end(), [&](pid_t p) {
          return std::find(waiting.begin(), waiting.end(), p) != waiting.end();
        });
      },
      kSettle));
  check_no_zombies_under(server);
  for (int i = 0; i < 10; ++i) {
    auto r = get(s.port(), "/cgi-bin/whoami");
    REQUIRE(r.status == 200);
    auto who = parse_who(r.body);
    REQUIRE(who);
    CHECK(who->ppid == server);
    CHECK(std::find(waiting.begin(), waiting.end(), who->pid) == waiting.end());
  }
  CHECK(fork_servers(s.pid(), exe) == std::set<pid_t>{server});
  CHECK(s.stderr_text().find("died waiting") != std::string::npos);
  check_no_zombies_under(server);
  check_clean_and_stop(s, baseline);
}
