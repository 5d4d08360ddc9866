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
// Loop thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <sys/types.h>

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

}  // namespace spawnd::server
