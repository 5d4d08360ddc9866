// tests/e2e/proc.h — processes as end-to-end tests see them from outside: through /proc (Linux only).
//
// Nothing here waits: every function reads /proc once and returns what it saw. Poll with wait_until (harness.h) for
// a state to come or go. A process that vanishes while it is being read is simply left out.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace spawnd::e2e {

// The fields of /proc/PID/stat that tests look at.
struct ProcStat {
  pid_t pid = 0;
  char state = '?';  // 'R', 'S', 'D', 'Z' (zombie: exited, not yet reaped), ... (proc(5))
  pid_t ppid = 0;    // parent
  pid_t pgid = 0;    // process group
};

// /proc/PID/stat of `pid`, or nullopt if there is no such process (any more).
[[nodiscard]] std::optional<ProcStat> proc_stat(pid_t pid);
// Every process visible in /proc, in no particular order.
[[nodiscard]] std::vector<ProcStat> all_processes();
// The processes whose parent is `parent`, zombies included.
[[nodiscard]] std::vector<ProcStat> children_of(pid_t parent);
// The children of `parent` that are still running (not zombies).
[[nodiscard]] std::vector<ProcStat> live_children_of(pid_t parent);
// The children of `parent` that have exited and wait to be reaped by it.
[[nodiscard]] std::vector<ProcStat> zombie_children_of(pid_t parent);
// The live (non-zombie) members of process group `pgid`, whoever their parent. A zombie is dead already; reaping it
// is its parent's business (an orphaned grandchild's belongs to init), so it does not count.
[[nodiscard]] std::vector<ProcStat> live_group_members(pid_t pgid);
// The number of open file descriptors of `pid` (entries of /proc/PID/fd); 0 if the process is gone.
[[nodiscard]] std::size_t fd_count(pid_t pid);
// What the open fds of `pid` refer to ("socket:[123]", "/dev/null", "/srv/site.db", ...), from /proc/PID/fd; empty if
// the process is gone.
[[nodiscard]] std::vector<std::string> fd_targets(pid_t pid);
// The resident set size of `pid` (VmRSS of /proc/PID/status) in KiB, or -1 if the process is gone.
[[nodiscard]] long vm_rss_kib(pid_t pid);
// The thread of `pid` named `name` (its /proc/PID/task/TID/comm, e.g. "db-keeper"), or 0 if there is none. The main
// thread's id is `pid` itself.
[[nodiscard]] pid_t thread_named(pid_t pid, const std::string& name);
// How often thread `tid` of `pid` has gone to sleep (voluntary_ctxt_switches of /proc/PID/task/TID/status): each wait
// of an idle thread between two wake-ups (an epoll_wait that times out, a condition variable's timed wait) is one.
// -1 if the thread is gone.
[[nodiscard]] long voluntary_switches(pid_t pid, pid_t tid);
// The whole of /proc/PID/NAME (e.g. "cmdline", "environ": NUL-separated strings), or "" if the process is gone.
[[nodiscard]] std::string proc_file(pid_t pid, const char* name);

}  // namespace spawnd::e2e
