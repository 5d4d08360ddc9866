#include "server/gateway/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>

#include "common/log.h"
#include "common/sys.h"

namespace spawnd::server {

namespace {

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

struct FileActions {
  posix_spawn_file_actions_t fa;
  FileActions() { ::posix_spawn_file_actions_init(&fa); }
  ~FileActions() { ::posix_spawn_file_actions_destroy(&fa); }
};

struct SpawnAttr {
  posix_spawnattr_t attr;
  SpawnAttr() { ::posix_spawnattr_init(&attr); }
  ~SpawnAttr() { ::posix_spawnattr_destroy(&attr); }
};

// Our child `pid`, just started by posix_spawn() or fork(), with a pidfd for it. Race-free: we are its parent and
// have not reaped it, so `pid` is still it (process.h). If no pidfd can be had (EMFILE, ENFILE, ENOMEM) the child
// is killed and reaped here, and the errno returned: a child the table cannot watch must not run.
Result<ChildProcess> with_pidfd(pid_t pid) {
  Fd pidfd(sys::pidfd_open(pid));  // always close-on-exec (pidfd_open(2))
  if (pidfd) return ChildProcess{pid, std::move(pidfd), true};
  const int err = errno;
  // The leader, and its group (it may not have made the group yet: fork() children call setpgid themselves).
  ::kill(pid, SIGKILL);
  ::kill(-pid, SIGKILL);
  int status = 0;
  (void)sys::retry_eintr([&] { return ::waitpid(pid, &status, 0); });
  SPAWND_LOG_ERROR("pidfd_open(%d): %s: child killed", static_cast<int>(pid), std::strerror(err));
  return errno_code(err);
}

Result<ChildProcess> spawn_with_posix_spawn(const SpawnSpec& spec, char* const* argv, char* const* envp) {
  FileActions actions;
  SpawnAttr attr;
  // Reset to default only what we changed: SIGPIPE is ignored by spawnd (ignored dispositions survive exec).
  // glibc resets handled signals in the child anyway, and each signal in this set costs the child a sigaction call.
  sigset_t changed, none;
  ::sigemptyset(&changed);
  ::sigaddset(&changed, SIGPIPE);
  ::sigemptyset(&none);
  // posix_spawn returns its error number rather than setting errno. The chain stops at the first failure.
  int rc = 0;
  (0 == (rc = ::posix_spawn_file_actions_adddup2(&actions.fa, spec.stdin_fd, 0))) &&
      (0 == (rc = ::posix_spawn_file_actions_adddup2(&actions.fa, spec.stdout_fd, 1))) &&
      (0 == (rc = ::posix_spawn_file_actions_adddup2(&actions.fa, spec.stderr_fd, 2))) &&
      (spec.fd3 < 0 || 0 == (rc = ::posix_spawn_file_actions_adddup2(&actions.fa, spec.fd3, 3))) &&
      (0 == (rc = ::posix_spawn_file_actions_addclosefrom_np(&actions.fa, spec.fd3 < 0 ? 3 : 4))) &&
      (spec.cwd.empty() || 0 == (rc = ::posix_spawn_file_actions_addchdir_np(&actions.fa, spec.cwd.c_str()))) &&
      (0 == (rc = ::posix_spawnattr_setflags(&attr.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                                        POSIX_SPAWN_SETSIGMASK))) &&
      (0 == (rc = ::posix_spawnattr_setpgroup(&attr.attr, 0))) &&
      (0 == (rc = ::posix_spawnattr_setsigdefault(&attr.attr, &changed))) &&
      (0 == (rc = ::posix_spawnattr_setsigmask(&attr.attr, &none)));
  if (rc != 0) return errno_code(rc);
  pid_t pid = -1;
  rc = ::posix_spawn(&pid, spec.path.c_str(), &actions.fa, &attr.attr, argv, envp);
  if (rc != 0) return errno_code(rc);
  return with_pidfd(pid);
}

#if defined(__SANITIZE_THREAD__)
constexpr bool kHasVfork = false;  // TSan would see the child's calls as its parent thread's: use posix_spawn
#else
constexpr bool kHasVfork = true;
#endif

// What the vfork child reads, and where it leaves the errno of a failed step (it shares our memory until execve).
struct VforkChild {
  const SpawnSpec* spec;
  char* const* argv;
  char* const* envp;
  int error;
};

// The child of spawn_with_vfork(): runs on the borrowed stack, in our address space, while the thread that cloned it
// is suspended. Only async-signal-safe syscall wrappers; no allocation, no locks, nothing instrumented (a sanitizer's
// bookkeeping would be written into the parent's memory). Never returns: execve() or _exit(127). Unblocking every
// signal before execve is safe only because spawnd installs no signal handlers (its signals come through a
// signalfd): a handler would run here, on the parent's memory.
// dup2() onto itself is a no-op that keeps FD_CLOEXEC (fds are opened close-on-exec): clear the flag instead.
__attribute__((no_sanitize("address", "undefined"))) int install_fd(int from, int to) {
  return from == to ? ::fcntl(to, F_SETFD, 0) : ::dup2(from, to);
}

__attribute__((no_sanitize("address", "undefined"))) int vfork_child(void* arg) {
  auto* c = static_cast<VforkChild*>(arg);
  const SpawnSpec& spec = *c->spec;
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigset_t none;
  ::sigemptyset(&none);
  // SIGPIPE is the one disposition spawnd changed (ignored dispositions survive exec); handlers do not survive exec.
  if (::setpgid(0, 0) == 0 && ::sigaction(SIGPIPE, &dfl, nullptr) == 0 && install_fd(spec.stdin_fd, 0) >= 0 &&
      install_fd(spec.stdout_fd, 1) >= 0 && install_fd(spec.stderr_fd, 2) >= 0 &&
      (spec.fd3 < 0 || install_fd(spec.fd3, 3) >= 0) &&
      ::close_range(spec.fd3 < 0 ? 3 : 4, ~0U, 0) == 0 && (spec.cwd.empty() || ::chdir(spec.cwd.c_str()) == 0) &&
      ::sigprocmask(SIG_SETMASK, &none, nullptr) == 0) {
    ::execve(spec.path.c_str(), c->argv, c->envp);
  }
  c->error = errno;
  ::_exit(127);
}

Result<ChildProcess> spawn_with_vfork(const SpawnSpec& spec, char* const* argv, char* const* envp) {
  // The child's stack: allocated once per thread, reused by every spawn of the thread (the thread is suspended while
  // the child uses it). The child needs little: a few frames of syscall wrappers.
  constexpr std::size_t kStackBytes = 64 * 1024;
  thread_local std::unique_ptr<char[]> stack(new char[kStackBytes]);
  VforkChild child{&spec, argv, envp, 0};
  // No signal handler may run in the child on our memory: block everything until it has exec'd (the child unblocks
  // all signals for the program it runs).
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  char* top = stack.get() + kStackBytes;
  top -= reinterpret_cast<std::uintptr_t>(top) % 16;
  // CLONE_PIDFD: the kernel creates the pidfd with the process (close-on-exec) and stores it in `pidfd`.
  int pidfd = -1;
  pid_t pid = ::clone(vfork_child, top, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &child, &pidfd);
  const int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return errno_code(clone_errno);
  Fd owned(pidfd);
  if (child.error != 0) {
    // A step before execve failed, or execve itself: the child has exited with 127; reap it here, as posix_spawn
    // does, and report the errno (ENOENT, EACCES, ENOEXEC, ...).
    int status = 0;
    (void)sys::retry_eintr([&] { return ::waitpid(pid, &status, 0); });
    return errno_code(child.error);
  }
  return ChildProcess{pid, std::move(owned), true};
}

Result<ChildProcess> spawn_with_fork(const SpawnSpec& spec, char* const* argv, char* const* envp) {
  pid_t pid = ::fork();
  if (pid < 0) return errno_code();
  if (pid == 0) {
    // Child: only async-signal-safe calls from here on.
    ::setpgid(0, 0);
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (install_fd(spec.stdin_fd, 0) < 0 || install_fd(spec.stdout_fd, 1) < 0 || install_fd(spec.stderr_fd, 2) < 0)
      ::_exit(127);
    if (spec.fd3 >= 0 && install_fd(spec.fd3, 3) < 0) ::_exit(127);
    ::close_range(spec.fd3 < 0 ? 3 : 4, ~0U, 0);
    if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) ::_exit(127);
    ::execve(spec.path.c_str(), argv, envp);
    ::_exit(127);
  }
  return with_pidfd(pid);
}

}  // namespace

Result<ChildProcess> spawn_process(const SpawnSpec& spec) {
  auto argv = c_strings(spec.argv);
  auto envp = c_strings(spec.envp);
  switch (spec.method) {
    case SpawnMethod::Vfork:
      if (kHasVfork) return spawn_with_vfork(spec, argv.data(), envp.data());
      break;
    case SpawnMethod::Fork: return spawn_with_fork(spec, argv.data(), envp.data());
    case SpawnMethod::PosixSpawn: break;
  }
  return spawn_with_posix_spawn(spec, argv.data(), envp.data());
}

std::string describe_exit(int wait_status) {
  if (wait_status == ChildTable::kUnknownStatus) return "an exit status known only to its fork server";
  if (WIFEXITED(wait_status)) return "exit status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return std::string("signal ") + ::strsignal(WTERMSIG(wait_status));
  return "status " + std::to_string(wait_status);
}

namespace {

// True if the process behind `pidfd` has exited (a pidfd turns readable then).
bool has_exited(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

// Reaps our child through its pidfd: waitid(P_PIDFD) can only ever reap that process, whatever became of its pid
// number. Returns its wait status (as waitpid() would give it), or std::nullopt if it has not exited yet (only
// with `wait` false).
std::optional<int> reap(const ChildProcess& child, bool wait) {
  siginfo_t info{};
  const int r = sys::retry_eintr(
      [&] { return ::waitid(P_PIDFD, static_cast<id_t>(child.pidfd.get()), &info, WEXITED | (wait ? 0 : WNOHANG)); });
  if (r < 0) {
    SPAWND_LOG_ERROR("waitid(pidfd of %d): %s", static_cast<int>(child.pid), std::strerror(errno));
    return ChildTable::kUnknownStatus;
  }
  if (info.si_pid == 0) return std::nullopt;  // WNOHANG: still running
  switch (info.si_code) {
    case CLD_EXITED: return W_EXITCODE(info.si_status, 0);
    case CLD_KILLED: return W_EXITCODE(0, info.si_status);
    case CLD_DUMPED: return W_EXITCODE(0, info.si_status) | WCOREFLAG;
    default: return ChildTable::kUnknownStatus;
  }
}

}  // namespace

void ChildTable::signal_group(const Child& child, int sig) {
  const ChildProcess& p = child.process;
  // The leader through its pidfd: exact, even if it left its group.
  sys::pidfd_send_signal(p.pidfd.get(), sig);
  // The group by number. Our child's number is held by the process (a zombie at worst) until we reap it, which is
  // after its entry is gone. A fork server's child is reaped by its fork server, so its number is trusted only while
  // the pidfd says the process lives.
  if (p.is_own_child || !has_exited(p.pidfd.get())) ::kill(-p.pid, sig);
}

ChildTable::~ChildTable() {
  for (auto& [id, child] : children_) {
    signal_group(child, SIGKILL);
    if (child.process.is_own_child) (void)reap(child.process, true);
    child.watch.reset();
    if (child.kill_timer) loop_.cancel(child.kill_timer);
  }
}

Result<ChildTable::ChildId> ChildTable::watch(ChildProcess child, ExitCallback on_exit) {
  for (const auto& [other_id, other] : children_) {
    // The same pid is the same process only while that entry's process lives: a fork server's child may have
    // exited, been reaped and its number reused before its pidfd event reached us.
    if (other.process.pid == child.pid && !has_exited(other.process.pidfd.get())) {
      SPAWND_LOG_ERROR("child %d is already watched (as child #%llu): refusing it a second time",
                       static_cast<int>(child.pid), static_cast<unsigned long long>(other_id));
      return errno_code(EEXIST);
    }
  }
  const ChildId id = next_id_++;
  EventLoop::Watch watch = loop_.watch(child.pidfd.get(), EPOLLIN, [this, id](std::uint32_t) { on_pidfd_readable(id); });
  if (!watch) {
    const int err = errno;
    SPAWND_LOG_ERROR("cannot watch child %d: %s: killing it", static_cast<int>(child.pid), std::strerror(err));
    Child doomed{std::move(child), {}, 0, 0, nullptr};
    signal_group(doomed, SIGKILL);
    if (doomed.process.is_own_child) (void)reap(doomed.process, true);
    return errno_code(err);
  }
  children_.emplace(id, Child{std::move(child), std::move(watch), 0, 0, std::move(on_exit)});
  return id;
}

void ChildTable::set_exit_callback(ChildId id, ExitCallback on_exit) {
  auto it = children_.find(id);
  if (it != children_.end()) it->second.on_exit = std::move(on_exit);
}

void ChildTable::terminate_group(ChildId id) {
  auto it = children_.find(id);
  if (it == children_.end() || it->second.signal_sent) return;
  it->second.signal_sent = SIGTERM;
  // The whole group: a shell script's own children (sleep, curl, ...) must go too.
  signal_group(it->second, SIGTERM);
  it->second.kill_timer = loop_.add_timer(kill_grace_ms_, [this, id] {
    auto c = children_.find(id);
    if (c == children_.end()) return;
    c->second.kill_timer = 0;
    c->second.signal_sent = SIGKILL;
    signal_group(c->second, SIGKILL);
  });
}

void ChildTable::kill_group(ChildId id) {
  auto it = children_.find(id);
  if (it == children_.end() || it->second.signal_sent == SIGKILL) return;
  if (it->second.kill_timer) {
    loop_.cancel(it->second.kill_timer);
    it->second.kill_timer = 0;
  }
  it->second.signal_sent = SIGKILL;
  signal_group(it->second, SIGKILL);
}

void ChildTable::terminate_group_after(ChildId id, std::int64_t delay_ms) {
  auto it = children_.find(id);
  if (it == children_.end() || it->second.signal_sent || it->second.kill_timer) return;
  it->second.kill_timer = loop_.add_timer(delay_ms, [this, id] {
    auto c = children_.find(id);
    if (c == children_.end()) return;
    c->second.kill_timer = 0;
    SPAWND_LOG_WARN("child %d still running after its response and its timeout: terminating its group",
                    static_cast<int>(c->second.process.pid));
    terminate_group(id);
  });
}

void ChildTable::on_pidfd_readable(ChildId id) {
  auto it = children_.find(id);
  if (it == children_.end()) return;
  Child& c = it->second;
  // The leader is gone, but members of its group may linger (a script's background job); if we had to signal the
  // group, make sure they go too. Before reaping our own child, while its zombie still holds the group's number.
  if (c.signal_sent) ::kill(-c.process.pid, SIGKILL);
  int status = kUnknownStatus;  // not our child (a fork server's): the pidfd says it exited; its parent has the status
  if (c.process.is_own_child) {
    std::optional<int> reaped = reap(c.process, false);
    if (!reaped) return;  // not yet (spurious wakeup)
    status = *reaped;
  }
  Child child = std::move(c);
  children_.erase(it);
  child.watch.reset();
  if (child.kill_timer) loop_.cancel(child.kill_timer);
  const pid_t pid = child.process.pid;
  // A child we were stopping (client gone, timeout) may die of our signal or of SIGPIPE on its closed output: that
  // is no news. Any other signal (SIGSEGV, SIGABRT, ...) is, even if we had started to stop it.
  const bool is_expected_signal = WIFSIGNALED(status) && (WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGKILL ||
                                                          (child.signal_sent != 0 && WTERMSIG(status) == SIGPIPE));
  if (status != kUnknownStatus && WIFSIGNALED(status) && !is_expected_signal)
    SPAWND_LOG_WARN("child %d killed by signal %d (%s)", static_cast<int>(pid), WTERMSIG(status),
                    ::strsignal(WTERMSIG(status)));
  // Run the callback after the table is consistent: it may start another child (libuv's two phases).
  if (child.on_exit) child.on_exit(status);
}

}  // namespace spawnd::server
