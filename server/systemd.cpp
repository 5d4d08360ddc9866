#include "server/systemd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstring>

#include "common/error.h"
#include "common/log.h"
#include "common/sys.h"

namespace spawnd::server::systemd {

namespace {

// Sends `state` (newline-separated VARIABLE=value assignments, sd_notify(3)) to the service manager, if there is one
// (NOTIFY_SOCKET set). A failure is logged, once, and otherwise ignored: the service manager's bookkeeping never
// stops spawnd from serving.
void notify(const std::string& state) {
  static bool has_reported_failure = false;
  const int rc = ::sd_notify(0, state.c_str());
  if (rc < 0 && !has_reported_failure) {
    has_reported_failure = true;
    SPAWND_LOG_WARN("sd_notify(%s): %s", state.substr(0, state.find('\n')).c_str(), std::strerror(-rc));
  }
}

}  // namespace

std::optional<Fd> take_listen_socket() {
  // 1: unset LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, so that no child sees them.
  const int n = ::sd_listen_fds(1);
  if (n < 0) throw ConfigError(std::string("socket activation: sd_listen_fds: ") + std::strerror(-n));
  if (n == 0) return std::nullopt;
  // Every passed fd is ours now: close the ones we refuse, as we leave.
  for (int fd = SD_LISTEN_FDS_START + 1; fd < SD_LISTEN_FDS_START + n; ++fd) ::close(fd);
  Fd socket(SD_LISTEN_FDS_START);
  if (n > 1)
    throw ConfigError("socket activation: " + std::to_string(n) +
                      " sockets passed; spawnd serves exactly one (one ListenStream= in the socket unit; "
                      "ListenStream=80 takes IPv4 and IPv6 on one socket)");
  const int is_inet = ::sd_is_socket_inet(socket.get(), AF_UNSPEC, SOCK_STREAM, 1, 0);
  if (is_inet < 0) throw ConfigError(std::string("socket activation: fd 3: ") + std::strerror(-is_inet));
  if (is_inet == 0)
    throw ConfigError("socket activation: fd 3 is not a listening TCP socket (AF_INET/AF_INET6, SOCK_STREAM, "
                      "listening); spawnd serves HTTP on ListenStream=[ADDRESS:]PORT only");
  const int flags = ::fcntl(socket.get(), F_GETFD);
  if (flags < 0 || ::fcntl(socket.get(), F_SETFD, flags | FD_CLOEXEC) != 0)
    throw Error(errno, "socket activation: fcntl(FD_CLOEXEC)");
  if (!sys::set_nonblocking(socket.get())) throw Error(errno, "socket activation: fcntl(O_NONBLOCK)");
  return socket;
}

void notify_ready(const std::string& status) { notify("READY=1\nSTATUS=" + status); }

void notify_stopping() { notify("STOPPING=1\nSTATUS=shutting down: finishing in-flight responses"); }

void notify_reloading() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const unsigned long long usec =
      static_cast<unsigned long long>(now.tv_sec) * 1'000'000ULL + static_cast<unsigned long long>(now.tv_nsec) / 1000;
  notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\nSTATUS=reloading");
}

void notify_reloaded(const std::string& status) { notify("READY=1\nSTATUS=" + status); }

}  // namespace spawnd::server::systemd
