// bench/process.cpp — process groups, stopping, Ctrl-C and CPU accounting (bench/process.h).
#include "bench/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace spawnd::bench {

namespace {

// Process groups of live processes we started; 0 marks a free slot. Read by the signal handler.
std::array<std::atomic<pid_t>, 64> g_groups{};
std::atomic<bool> g_interrupted{false};

void remember_group(pid_t pgid) {
  for (auto& slot : g_groups) {
    pid_t expected = 0;
    if (slot.compare_exchange_strong(expected, pgid)) return;
  }
  // More than 64 at once is a bug in the driver: it runs one configuration at a time.
  std::abort();
}

void forget_group(pid_t pgid) {
  for (auto& slot : g_groups) {
    pid_t expected = pgid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

void on_signal(int) {
  g_interrupted.store(true);
  for (auto& slot : g_groups) {
    pid_t pgid = slot.load();
    if (pgid > 0) ::kill(-pgid, SIGTERM);
  }
}

}  // namespace

Process::Process(const ProcessSpec& spec) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  int out[2] = {-1, -1};
  if (spec.capture_stdout) {
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    stdout_pipe_.reset(out[0]);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO,
                                     spec.stdout_path.empty() ? "/dev/null" : spec.stdout_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, spec.stderr_path.empty() ? "/dev/null" : spec.stderr_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (spec.stdin_fd >= 0)
    posix_spawn_file_actions_adddup2(&fa, spec.stdin_fd, STDIN_FILENO);
  else
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // Only 0, 1 and 2: nothing the driver inherited (a make jobserver pipe, a terminal) reaches the servers.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  // A group of its own (so that stopping it stops everything it started), default signal dispositions and an
  // empty mask: the driver's SIGINT handler and blocked signals must not leak into servers.
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<std::string> args = spec.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = spec.env;
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int rc = posix_spawnp(&pid_, argv[0], &fa, &attr, argv.data(), spec.env.empty() ? environ : envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (out[1] >= 0) close(out[1]);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("cannot start " + spec.argv[0] + ": " + std::strerror(rc));
  }
  remember_group(pid_);
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), status_(other.status_), stdout_pipe_(std::move(other.stdout_pipe_)) {}

Process::~Process() {
  if (pid_ > 0) stop(2000);
}

std::optional<int> Process::poll() {
  if (status_ || pid_ <= 0) return status_;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    status_ = status;
    forget_group(pid_);
  }
  return status_;
}

int Process::wait() {
  if (status_ || pid_ <= 0) return status_.value_or(-1);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  status_ = status;
  forget_group(pid_);
  return status;
}

std::string Process::read_all_stdout() {
  std::string out;
  char buf[8192];
  while (stdout_pipe_) {
    ssize_t n = read(stdout_pipe_.get(), buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      stdout_pipe_.reset();
    }
  }
  return out;
}

int Process::stop(int grace_ms) {
  if (pid_ <= 0) return -1;
  // Reaped before (wrk, run to its end): its group is no business of ours any more; the number may be reused.
  if (status_) return *status_;
  if (!poll()) {
    ::kill(-pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
    while (!poll() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Whatever the leader left behind in its group (a CGI child that ignores SIGTERM) goes too. While a member is
  // alive the group's number cannot be given to a new process, so this reaches only ours.
  ::kill(-pid_, SIGKILL);
  return wait();
}

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking wait returns EINTR, and the loops look at interrupted()
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  // wrk and the servers die while we write to them only through pipes we read; still, never die of SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
}

bool interrupted() noexcept { return g_interrupted.load(); }

std::optional<std::string> run_capture(const std::vector<std::string>& argv) {
  try {
    ProcessSpec spec;
    spec.argv = argv;
    spec.capture_stdout = true;
    Process p(spec);
    std::string out = p.read_all_stdout();
    int status = p.wait();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
    return out;
  } catch (const std::runtime_error&) {
    return std::nullopt;
  }
}

namespace {

struct StatLine {
  pid_t ppid = 0;
  unsigned long long ticks = 0;  // utime + stime + cutime + cstime
};

// True if /proc/PID/status shows SIGCHLD among the ignored signals ("SigIgn:" is a hex mask, bit N-1 for signal N).
bool ignores_sigchld(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("SigIgn:")) continue;
    const unsigned long long mask = std::strtoull(line.c_str() + 7, nullptr, 16);
    return (mask >> (SIGCHLD - 1)) & 1U;
  }
  return false;
}

// /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and ')', so parse after the LAST ')'.
std::optional<StatLine> read_stat(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string text;
  if (!std::getline(in, text)) return std::nullopt;
  size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 1));
  std::string state;
  StatLine s;
  long long skip = 0;
  long long utime = 0, stime = 0, cutime = 0, cstime = 0;
  fields >> state >> s.ppid;
  for (int i = 0; i < 9; ++i) fields >> skip;  // pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
  fields >> utime >> stime >> cutime >> cstime;
  if (!fields) return std::nullopt;
  s.ticks = static_cast<unsigned long long>(utime + stime + cutime + cstime);
  return s;
}

}  // namespace

TreeCpu tree_cpu(pid_t root) {
  std::map<pid_t, StatLine> procs;
  if (DIR* dir = opendir("/proc")) {
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
      if (auto s = read_stat(e->d_name)) procs[static_cast<pid_t>(std::atol(e->d_name))] = *s;
    }
    closedir(dir);
  }
  TreeCpu cpu;
  if (!procs.count(root)) return cpu;
  std::multimap<pid_t, pid_t> children;
  for (const auto& [pid, s] : procs) children.emplace(s.ppid, pid);
  unsigned long long ticks = 0;
  std::vector<pid_t> todo{root};
  while (!todo.empty()) {
    pid_t pid = todo.back();
    todo.pop_back();
    ticks += procs[pid].ticks;
    if (ignores_sigchld(pid)) cpu.is_complete = false;
    auto [first, last] = children.equal_range(pid);
    for (auto it = first; it != last; ++it) todo.push_back(it->second);
  }
  cpu.seconds = static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return cpu;
}

std::string find_executable(const std::string& name) {
  std::string path = getenv("PATH") ? getenv("PATH") : "";
  path += ":/usr/local/sbin:/usr/sbin:/sbin";
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

}  // namespace spawnd::bench
