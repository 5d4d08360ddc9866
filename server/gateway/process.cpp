#include "server/gateway/process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

#include "common/log.h"

namespace spawnd::server {

namespace {

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

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

Result<pid_t> spawn_with_posix_spawn(const SpawnSpec& spec, char* const* argv, char* const* envp) {
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
  return pid;
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

Result<pid_t> spawn_with_vfork(const SpawnSpec& spec, char* const* argv, char* const* envp) {
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
  pid_t pid = ::clone(vfork_child, top, CLONE_VM | CLONE_VFORK | SIGCHLD, &child);
  const int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return errno_code(clone_errno);
  if (child.error != 0) {
    // A step before execve failed, or execve itself: the child has exited with 127; reap it here, as posix_spawn
    // does, and report the errno (ENOENT, EACCES, ENOEXEC, ...).
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return errno_code(child.error);
  }
  return pid;
}

Result<pid_t> spawn_with_fork(const SpawnSpec& spec, char* const* argv, char* const* envp) {
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
  return pid;
}

}  // namespace

Result<pid_t> spawn_process(const SpawnSpec& spec) {
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

ChildTable::~ChildTable() {
  for (auto& [pid, child] : children_) {
    ::kill(-pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    loop_.remove(child.pidfd);
    ::close(child.pidfd);
    if (child.kill_timer) loop_.cancel(child.kill_timer);
  }
}

bool ChildTable::watch(pid_t pid, ExitCallback on_exit) {
  int pidfd = pidfd_open(pid);  // always close-on-exec (pidfd_open(2))
  if (pidfd < 0 && errno == ESRCH) {
    // A fork server's child that has already exited and been reaped by its parent before we heard its pid.
    loop_.defer([cb = std::move(on_exit)] {
      if (cb) cb(kUnknownStatus);
    });
    return true;
  }
  if (pidfd < 0 || !loop_.add(pidfd, EPOLLIN, [this, pid](std::uint32_t) { on_pidfd_readable(pid); })) {
    int err = errno;
    if (pidfd >= 0) ::close(pidfd);
    ::kill(-pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    errno = err;
    return false;
  }
  children_[pid] = Child{pidfd, 0, 0, std::move(on_exit)};
  return true;
}

void ChildTable::set_exit_callback(pid_t pid, ExitCallback on_exit) {
  auto it = children_.find(pid);
  if (it != children_.end()) it->second.on_exit = std::move(on_exit);
}

void ChildTable::terminate_group(pid_t pid) {
  auto it = children_.find(pid);
  if (it == children_.end() || it->second.signal_sent) return;
  it->second.signal_sent = SIGTERM;
  // The whole group: a shell script's own children (sleep, curl, ...) must go too.
  ::kill(-pid, SIGTERM);
  it->second.kill_timer = loop_.add_timer(kill_grace_ms_, [this, pid] {
    auto c = children_.find(pid);
    if (c == children_.end()) return;
    c->second.kill_timer = 0;
    c->second.signal_sent = SIGKILL;
    ::kill(-pid, SIGKILL);
  });
}

void ChildTable::terminate_group_after(pid_t pid, std::int64_t delay_ms) {
  auto it = children_.find(pid);
  if (it == children_.end() || it->second.signal_sent || it->second.kill_timer) return;
  it->second.kill_timer = loop_.add_timer(delay_ms, [this, pid] {
    auto c = children_.find(pid);
    if (c == children_.end()) return;
    c->second.kill_timer = 0;
    SPAWND_LOG_WARN("child %d still running after its response and its timeout: terminating its group",
                    static_cast<int>(pid));
    terminate_group(pid);
  });
}

void ChildTable::on_pidfd_readable(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return;  // not yet (spurious wakeup)
  auto it = children_.find(pid);
  if (it == children_.end()) return;
  if (r < 0) {
    // Not our child (a fork server's): the pidfd says it exited; its parent collects the status.
    if (errno != ECHILD) SPAWND_LOG_ERROR("waitpid(%d): %s", static_cast<int>(pid), std::strerror(errno));
    status = kUnknownStatus;
  }
  Child child = std::move(it->second);
  children_.erase(it);
  loop_.remove(child.pidfd);
  ::close(child.pidfd);
  if (child.kill_timer) loop_.cancel(child.kill_timer);
  // The leader is gone, but members of its group may linger (a script's background job); if we had to signal the
  // group, make sure they go too.
  if (child.signal_sent) ::kill(-pid, SIGKILL);
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
