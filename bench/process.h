// bench/process.h — the processes spawnd-bench starts (servers, wrk, helper commands), and how it stops them.
//
// Every process is started with posix_spawn in a process group of its own, and the group is remembered in a small
// table until the process is reaped. So the driver can stop a server together with everything it started (CGI
// children, fork servers, workers) by signalling the group, and a Ctrl-C does the same: install_interrupt_handler()
// catches SIGINT/SIGTERM/SIGHUP, sends SIGTERM to every group in the table (kill(2) is async-signal-safe) and sets
// interrupted(), which the driver's loops check to unwind; destructors then reap what is left. Single-threaded use:
// only the signal handler runs concurrently with the rest, and it only reads the table.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/fd.h"

namespace spawnd::bench {

struct ProcessSpec {
  std::vector<std::string> argv;      // argv[0] is the executable's path (or a name looked up in PATH)
  std::vector<std::string> env;       // NAME=VALUE; empty: the driver's own environment
  std::string stdout_path;            // file to write stdout to (truncated); empty: /dev/null, unless capture_stdout
  std::string stderr_path;            // file for stderr; empty: /dev/null
  bool capture_stdout = false;        // stdout into a pipe, read with Process::read_all_stdout()
  int stdin_fd = -1;                  // given to the child as fd 0 (e.g. a listening socket); -1: /dev/null
};

class Process {
 public:
  // Starts the process in a new process group. Throws std::runtime_error if posix_spawn fails (e.g. no such file).
  explicit Process(const ProcessSpec& spec);
  ~Process();  // stop() if still running
  Process(Process&& other) noexcept;
  Process& operator=(Process&&) = delete;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  // The wait status if the process has exited (reaping it), nullopt while it runs.
  [[nodiscard]] std::optional<int> poll();
  // Waits for the exit (EINTR-safe) and returns the wait status.
  int wait();
  // Reads the captured stdout until EOF (the process exited or closed it). Only with capture_stdout.
  [[nodiscard]] std::string read_all_stdout();
  // SIGTERM to the process group, up to `grace_ms` for the leader to exit, then SIGKILL to the group. Returns the
  // leader's wait status. Idempotent.
  int stop(int grace_ms = 5000);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  Fd stdout_pipe_;
};

// Catches SIGINT, SIGTERM and SIGHUP as described above. Call once, before starting anything.
void install_interrupt_handler();
// True once one of those signals arrived.
[[nodiscard]] bool interrupted() noexcept;

// Runs argv to completion with stdout captured (stderr to /dev/null) and returns its stdout, or nullopt if it
// could not start or exited non-zero. For short commands: version strings, `git describe`.
[[nodiscard]] std::optional<std::string> run_capture(const std::vector<std::string>& argv);

struct TreeCpu {
  double seconds = 0;
  // False if a process of the tree ignores SIGCHLD: the kernel then reaps its children itself and their CPU time
  // is added to no one's cutime, so `seconds` misses it (fcgiwrap does this, for one).
  bool is_complete = true;
};
// CPU time used so far by `root` and all its live descendants, including what their already reaped children used
// (utime + stime + cutime + cstime of each, /proc/PID/stat). The difference of two readings is the CPU a process
// tree spent in between: a child that exits and is reaped with wait() moves its time into its parent's
// cutime/cstime, so it is still counted. 0 if `root` is gone.
[[nodiscard]] TreeCpu tree_cpu(pid_t root);

// Looks `name` up in PATH (or the sbin directories, where Debian puts servers); empty if not found.
[[nodiscard]] std::string find_executable(const std::string& name);

}  // namespace spawnd::bench
