// server/gateway/supervisor.h — the rules every persistent handler process follows, whichever mode keeps it: a fork
// server (--mode fork, fork_server.h) and a FastCGI worker (--mode fastcgi, fastcgi_gateway.h).
//
//   - Restart (RestartBackoff): a process that ends unexpectedly is restarted at once the first time, then after
//     100 ms, doubling up to 10 s while it keeps ending before it proves healthy (a fork server's Ready, a FastCGI
//     worker's completed request), which resets the count. Each restart is logged with its delay.
//   - Recycle: a process stopped on purpose (FastCGI --max-requests, a replaced handler) is restarted at once and
//     counts as no failure.
//   - Reload (HandlerVersion): the handler's file is identified by device, inode, size and modification time. When
//     it changes (a deploy by copy or rename) the processes of the old version serve no new request: idle ones are
//     recycled at once, busy ones when their request ends, and the next request is served by the new version.
//     In-process mode cannot do this (a shared object cannot be unloaded safely): it loads the handlers at start-up,
//     so a replaced .so is served after a restart.
//
// Supervisor is one handler's group of persistent processes (the fork servers of a script, the workers of a FastCGI
// application): the back-off they share and the version of the file they should run. SupervisedProcess is one of
// them: it starts the process, watches it in the server's ChildTable and restarts it by these rules; the mode keeps
// only what is its own (a fork server's control socket, a worker's listening socket and connection).
//
// Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <sys/types.h>

#include "common/result.h"
#include "server/event_loop.h"
#include "server/gateway/process.h"

namespace spawnd::server {

class RestartBackoff {
 public:
  static constexpr std::int64_t kFirstDelayMs = 100;
  static constexpr std::int64_t kMaxDelayMs = 10'000;

  // A process ended unexpectedly: the delay before restarting it, in milliseconds (0, 100, 200, 400, ... 10'000).
  [[nodiscard]] std::int64_t next_delay_ms() noexcept;
  // It proved healthy: the next failure restarts at once again.
  void reset() noexcept { failures_ = 0; }
  [[nodiscard]] int failures() const noexcept { return failures_; }

 private:
  int failures_ = 0;
};

// Which version of a handler file a process runs.
struct HandlerVersion {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const HandlerVersion&) const = default;

  // The version of the file at `path` now (stat, following symlinks); nullopt if it cannot be stat'ed.
  [[nodiscard]] static std::optional<HandlerVersion> of(const std::string& path);
};

// One handler's processes: what they share.
class Supervisor {
 public:
  // `name` prefixes the log lines ("fork: guestbook", "fastcgi guestbook"); `path` is the handler's file.
  Supervisor(EventLoop& loop, ChildTable& children, std::string name, std::string path);
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // The reload rule: stats the file (one stat(2)). True if it was replaced since it was last seen; version() is then
  // the new one and the back-off starts afresh. A file that cannot be stat'ed (removed meanwhile) keeps the
  // current version: its processes go on serving until it is back.
  [[nodiscard]] bool check_replaced();
  // The version the group's processes should run: the file's when the group was made or last check_replaced().
  // A zeroed version if it could not be stat'ed then.
  [[nodiscard]] const HandlerVersion& version() const noexcept { return version_; }
  // A process proved healthy (a fork server's Ready, a worker's completed request): the next unexpected end
  // restarts at once again.
  void healthy() noexcept { backoff_.reset(); }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  // Starts of the group's processes that failed (the spawn hook's error, or a process that could not be watched),
  // since the group was made: the status page's spawn failures.
  [[nodiscard]] std::uint64_t start_failures() const noexcept { return start_failures_; }

 private:
  friend class SupervisedProcess;
  EventLoop& loop_;
  ChildTable& children_;
  std::string name_;
  std::string path_;
  HandlerVersion version_;
  RestartBackoff backoff_;
  std::uint64_t start_failures_ = 0;
};

// One persistent process of a Supervisor's group, kept running from start() until retire() or destruction.
class SupervisedProcess {
 public:
  struct Hooks {
    // Starts the process from the group's path (the mode's SpawnSpec and sockets). An error is logged and start
    // is retried after the back-off.
    std::function<Result<ChildProcess>()> spawn;
    // It runs (and is watched), as `pid`.
    std::function<void(pid_t pid)> on_started;
    // It has exited with `wait_status` (ChildTable's), on the loop, before its restart is scheduled. Not called
    // after retire() or destruction.
    std::function<void(int wait_status)> on_exited;
  };

  // `role` names the process in log lines ("fork server", "worker"). Does not start it.
  SupervisedProcess(Supervisor& group, std::string role, Hooks hooks);
  SupervisedProcess(const SupervisedProcess&) = delete;
  SupervisedProcess& operator=(const SupervisedProcess&) = delete;
  // Stops it for good: a pending restart is cancelled and a running process gets SIGTERM to its group (SIGKILL
  // after ChildTable's grace); no hook runs any more.
  ~SupervisedProcess();

  // Starts it now (a no-op while it runs). Records the version it runs.
  void start();
  // The recycle rule: stopped on purpose (SIGTERM to its group, SIGKILL after the grace) and restarted as soon as
  // it has exited, counting as no failure. A no-op unless it runs.
  void recycle();
  // Stopped because it misbehaves (hung, garbage on its socket): SIGTERM to its group (SIGKILL after the grace);
  // its exit counts as a failure (back-off). A no-op unless it runs.
  void terminate();
  // The same with SIGKILL at once, for a process that must not do anything more (a fork server with Spawns queued
  // that were already failed).
  void kill();
  // Stops it for good with SIGKILL to its group at once: never restarted, no hook runs any more.
  void retire();

  [[nodiscard]] bool is_running() const noexcept { return child_ != 0; }
  // Its pid while it runs (-1 otherwise).
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  // The version of the file it was last started from.
  [[nodiscard]] const HandlerVersion& version() const noexcept { return version_; }
  // Runs the version its group should run (not yet replaced on disk as far as check_replaced() has seen).
  [[nodiscard]] bool is_current() const noexcept { return version_ == group_.version(); }

 private:
  void on_exit(int wait_status);
  void schedule_start(std::int64_t delay_ms);
  void stop_watching();

  Supervisor& group_;
  std::string role_;
  Hooks hooks_;
  ChildTable::ChildId child_ = 0;  // in the group's ChildTable while it runs (0: not running)
  pid_t pid_ = -1;
  HandlerVersion version_;
  bool is_recycling_ = false;
  bool is_retired_ = false;
  EventLoop::TimerId start_timer_ = 0;
};

}  // namespace spawnd::server
