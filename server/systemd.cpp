#include "server/systemd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

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

std::optional<ListenSockets> take_listen_sockets() {
  // 1: unset LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, so that no child sees them.
  char** names = nullptr;
  const int n = ::sd_listen_fds_with_names(1, &names);
  if (n < 0) throw ConfigError(std::string("socket activation: sd_listen_fds: ") + std::strerror(-n));
  // Every passed fd is ours now: owned at once, so that the ones we refuse are closed as we leave.
  std::vector<std::pair<Fd, std::string>> passed;
  for (int i = 0; i < n; ++i) {
    passed.emplace_back(Fd(SD_LISTEN_FDS_START + i), names != nullptr && names[i] != nullptr ? names[i] : "unknown");
    if (names != nullptr) std::free(names[i]);
  }
  std::free(names);
  if (n == 0) return std::nullopt;

  ListenSockets sockets;
  for (auto& [socket, name] : passed) {
    const std::string which = "fd " + std::to_string(socket.get()) + " (named " + name + ")";
    const int is_inet = ::sd_is_socket_inet(socket.get(), AF_UNSPEC, SOCK_STREAM, 1, 0);
    if (is_inet < 0) throw ConfigError("socket activation: " + which + ": " + std::strerror(-is_inet));
    if (is_inet == 0)
      throw ConfigError("socket activation: " + which + " is not a listening TCP socket (AF_INET/AF_INET6, "
                        "SOCK_STREAM, listening); spawnd serves HTTP on ListenStream=[ADDRESS:]PORT only");
    const bool is_https = name == "https";
    if (!is_https && name != "http" && n > 1)
      throw ConfigError("socket activation: " + std::to_string(n) + " sockets passed and " + which +
                        " is neither http nor https: spawnd serves plain HTTP on the socket named http and HTTPS on "
                        "the one named https (FileDescriptorName= in each socket unit; one ListenStream= per unit: "
                        "ListenStream=80 takes IPv4 and IPv6 on one socket)");
    Fd& slot = is_https ? sockets.https : sockets.http;
    if (slot) throw ConfigError("socket activation: two sockets named " + name + "; spawnd serves one of each");
    const int flags = ::fcntl(socket.get(), F_GETFD);
    if (flags < 0 || ::fcntl(socket.get(), F_SETFD, flags | FD_CLOEXEC) != 0)
      throw Error(errno, "socket activation: fcntl(FD_CLOEXEC)");
    if (!sys::set_nonblocking(socket.get())) throw Error(errno, "socket activation: fcntl(O_NONBLOCK)");
    slot = std::move(socket);
  }
  if (!sockets.http)
    throw ConfigError("socket activation: no socket named http: spawnd serves plain HTTP (ACME challenges, the "
                      "redirect to HTTPS) on a socket named http beside the one named https (FileDescriptorName=)");
  return sockets;
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
