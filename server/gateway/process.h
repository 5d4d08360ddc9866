// server/gateway/process.h — starting handler processes and keeping track of them until they are reaped.
//
// spawn_process() starts a program with the fds it is given as 0, 1, 2 (pipes, /dev/null, a FastCGI worker's
// listening socket; a fork server also gets its control socket as 3) and nothing else open, in a new process group,
// with default signal dispositions and an empty signal mask (lighttpd's posix_spawn recipe), and returns it with a
// pidfd taken at creation. ChildTable watches each child through that pidfd in the event loop and reaps it with
// waitid(P_PIDFD) when the pidfd turns readable; entries are keyed by a ChildId that is never reused, never by a pid
// number (which wraps every few seconds at thousands of spawns per second). A child belongs to the table, never to
// a request: when a request is cancelled the child is signalled, the owner's callback is dropped, and the table
// still reaps it whenever it exits, so no zombie is ever left. Loop thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/fd.h"
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

// A started process: its pid, and a pidfd that refers to that process and no other. The pidfd is taken when the
// process is created (CLONE_PIDFD, or pidfd_open() by its unreaped parent), so that, unlike the pid number, it can
// never come to mean a later process that reused the number.
struct ChildProcess {
  pid_t pid = -1;  // also its process-group id (a new group per child)
  Fd pidfd;        // close-on-exec
  // True if spawnd is the parent (it reaps the process); false for a fork server's child, which its fork server
  // reaps: spawnd only learns from the pidfd that it exited.
  bool is_own_child = true;
};

// Starts the child; returns it, or the errno of the failure: ENOENT / EACCES / ENOEXEC (program or its interpreter
// missing or not executable; posix_spawn reports exec failures), EAGAIN / ENOMEM (out of processes or memory),
// EMFILE / ENFILE (no fd left for the pidfd: the child is then killed and reaped before returning). With
// SpawnMethod::Fork an exec failure shows up as exit status 127 instead.
//
// The pidfd: SpawnMethod::Vfork clones with CLONE_PIDFD, so the kernel creates it with the process. posix_spawn and
// fork() return only a pid; pidfd_open(pid) right after them is still race-free, because we are the parent and the
// child cannot be reaped (so its pid cannot be reused) before we wait for it: nothing in spawnd calls waitpid(-1)
// or lets SIGCHLD be ignored (which would make the kernel reap children), and ChildTable reaps each child through
// its own pidfd.
[[nodiscard]] Result<ChildProcess> spawn_process(const SpawnSpec& spec);

// A waitpid() status (or ChildTable::kUnknownStatus) for log lines: "exit status 3", "signal Segmentation fault".
[[nodiscard]] std::string describe_exit(int wait_status);

class ChildTable {
 public:
  // A child's handle in the table: never 0, never reused (unlike a pid or a pidfd number).
  using ChildId = std::uint64_t;
  // The status passed for a process that is not our child (a fork server's child): it exited, but its waitpid()
  // status belongs to its parent.
  static constexpr int kUnknownStatus = -1;
  // Called once with the waitpid() status (or kUnknownStatus) when the child has exited (and, if ours, been reaped).
  using ExitCallback = std::function<void(int wait_status)>;

  explicit ChildTable(EventLoop& loop, std::int64_t kill_grace_ms = 2000) : loop_(loop), kill_grace_ms_(kill_grace_ms) {}
  ChildTable(const ChildTable&) = delete;
  ChildTable& operator=(const ChildTable&) = delete;
  // Kills every remaining child's process group with SIGKILL and reaps our own (blocking; only at exit).
  ~ChildTable();

  // Takes `child` (and its pidfd) into the table and watches the pidfd in the loop. When it turns readable the
  // process has exited: our own child is reaped with waitid(P_PIDFD), which can only ever reap that process; a
  // fork server's child gets kUnknownStatus. Then `on_exit` runs on the loop (it may be replaced or dropped with
  // set_exit_callback). Returns the child's id, or:
  //   - EEXIST if the table already watches that process (a live entry with the same pid): the duplicate is
  //     refused and logged, its pidfd closed, and the process left to the entry that has it;
  //   - the errno of the loop registration: the process is then killed (our own child also reaped) before
  //     returning.
  [[nodiscard]] Result<ChildId> watch(ChildProcess child, ExitCallback on_exit);
  // Replaces the exit callback (nullptr: nobody is interested any more, as when a request is cancelled). A no-op
  // for an id that has exited.
  void set_exit_callback(ChildId id, ExitCallback on_exit);
  // Sends SIGTERM to the child's process group, and SIGKILL to the group kill_grace_ms later if the child has not
  // exited by then. Idempotent; a no-op for an id that has exited.
  void terminate_group(ChildId id);
  // Sends SIGKILL to the child's process group at once (and again to what is left of it when the leader has
  // exited). Idempotent; a no-op for an id that has exited.
  void kill_group(ChildId id);
  // terminate_group() `delay_ms` from now, unless the child has exited by then.
  void terminate_group_after(ChildId id, std::int64_t delay_ms);
  [[nodiscard]] std::size_t size() const noexcept { return children_.size(); }

 private:
  struct Child {
    ChildProcess process;
    EventLoop::Watch watch;  // its pidfd in the loop (after `process`: destroyed before the pidfd closes)
    int signal_sent = 0;
    EventLoop::TimerId kill_timer = 0;
    ExitCallback on_exit;
  };
  void on_pidfd_readable(ChildId id);
  // kill(-pid, sig) for the child's group, but only while the pid is provably still its: our child is not reaped
  // before its entry goes, and a fork server's child only while its pidfd says it is alive.
  static void signal_group(const Child& child, int sig);

  EventLoop& loop_;
  std::int64_t kill_grace_ms_;
  ChildId next_id_ = 1;
  std::unordered_map<ChildId, Child> children_;
};

}  // namespace spawnd::server
