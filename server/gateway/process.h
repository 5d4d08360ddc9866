// server/gateway/process.h — starting handler processes and keeping track of them until they are reaped.
//
// spawn_process() starts a program with pipes as fds 0, 1, 2 and nothing else open, in a new process group, with
// default signal dispositions and an empty signal mask (lighttpd's posix_spawn recipe). ChildTable watches each
// child through a pidfd in the event loop and reaps it with waitpid(WNOHANG) when the pidfd turns readable. A child
// belongs to the table, never to a request: when a request is cancelled the child is signalled, the owner's callback
// is dropped, and the table still reaps it whenever it exits, so no zombie is ever left. Loop thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "server/event_loop.h"

namespace spawnd::server {

enum class SpawnMethod {
  // clone(CLONE_VM|CLONE_VFORK) done by spawnd on a stack kept per thread: posix_spawn's technique without what glibc
  // adds per call for its generality (an mmap/munmap of a fresh child stack, whose munmap interrupts every other
  // thread of spawnd to flush its TLB; a getrlimit to size it; ~130 sigaction calls in the child to reset every
  // signal). The default. Under ThreadSanitizer it is posix_spawn (TSan cannot follow a CLONE_VM child).
  Vfork,
  PosixSpawn,  // posix_spawn(3): glibc uses clone(CLONE_VM|CLONE_VFORK), cost independent of our size
  Fork,        // fork(2) + execve(2): for comparison in the benchmark
};

struct SpawnSpec {
  std::string path;               // program to execute
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> envp;  // "NAME=value"
  std::string cwd;                // working directory of the child (RFC 3875 §7.2: the script's directory)
  int stdin_fd = -1;              // become fds 0, 1, 2 in the child; every other fd is closed
  int stdout_fd = -1;
  int stderr_fd = -1;
  int fd3 = -1;  // when set, also becomes fd 3 in the child (a fork server's control socket)
  SpawnMethod method = SpawnMethod::Vfork;
};

// Starts the child; returns its pid (also its process-group id), or the errno of the failure: ENOENT / EACCES /
// ENOEXEC (program or its interpreter missing or not executable; posix_spawn reports exec failures), EAGAIN / ENOMEM
// (out of processes or memory). With SpawnMethod::Fork an exec failure shows up as exit status 127 instead.
[[nodiscard]] Result<pid_t> spawn_process(const SpawnSpec& spec);

// A waitpid() status (or ChildTable::kUnknownStatus) for log lines: "exit status 3", "signal Segmentation fault".
[[nodiscard]] std::string describe_exit(int wait_status);

class ChildTable {
 public:
  // The status passed for a process that is not our child (a fork server's child): it exited, but its waitpid()
  // status belongs to its parent.
  static constexpr int kUnknownStatus = -1;
  // Called once with the waitpid() status (or kUnknownStatus) when the child has been reaped.
  using ExitCallback = std::function<void(int wait_status)>;

  explicit ChildTable(EventLoop& loop, std::int64_t kill_grace_ms = 2000) : loop_(loop), kill_grace_ms_(kill_grace_ms) {}
  ChildTable(const ChildTable&) = delete;
  ChildTable& operator=(const ChildTable&) = delete;
  // Kills every remaining child's process group with SIGKILL and reaps them (blocking; only at exit).
  ~ChildTable();

  // Takes `pid` into the table. `pid` may also be a process that is not our child (a fork server's child, in its
  // own process group): its pidfd still reports the exit; waitpid() then fails with ECHILD and the callback gets
  // kUnknownStatus (also when it is already gone: ESRCH from pidfd_open). If such a process is orphaned into
  // spawnd (a child subreaper) it is reaped like our own. `on_exit` runs on the loop after the child is reaped (it may be replaced or dropped
  // with set_owner_callback). Returns false (errno set) if pidfd_open or the loop registration fails; the child is
  // then killed and reaped before returning.
  [[nodiscard]] bool watch(pid_t pid, ExitCallback on_exit);
  // Replaces the exit callback (nullptr: nobody is interested any more, as when a request is cancelled).
  void set_exit_callback(pid_t pid, ExitCallback on_exit);
  // Sends SIGTERM to the child's process group, and SIGKILL to the group kill_grace_ms later if the child has not
  // been reaped by then. Idempotent.
  void terminate_group(pid_t pid);
  // terminate_group() `delay_ms` from now, unless the child has been reaped by then.
  void terminate_group_after(pid_t pid, std::int64_t delay_ms);
  [[nodiscard]] std::size_t size() const noexcept { return children_.size(); }

 private:
  struct Child {
    int pidfd = -1;
    int signal_sent = 0;
    EventLoop::TimerId kill_timer = 0;
    ExitCallback on_exit;
  };
  void on_pidfd_readable(pid_t pid);

  EventLoop& loop_;
  std::int64_t kill_grace_ms_;
  std::unordered_map<pid_t, Child> children_;
};

}  // namespace spawnd::server
