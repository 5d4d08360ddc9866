// server/systemd.h — what spawnd does for systemd (libsystemd, Debian's libsystemd-dev): socket activation and the
// readiness protocol of Type=notify services. Outside systemd every function here does nothing.
//
// Socket activation (sd_listen_fds(3), the LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES protocol): spawnd.socket (and, for
// HTTPS, spawnd-https.socket), or `systemd-socket-activate -l ADDR spawnd ...`, binds the ports itself and starts
// spawnd with the listening sockets from fd 3 on. spawnd then serves those sockets instead of binding --listen (and
// --tls-listen, when a socket for HTTPS is passed), so it needs no privilege to bind ports 80 and 443, and
// connections that arrive while it (re)starts wait in the sockets' backlog instead of being refused.
//
// Readiness (sd_notify(3), the NOTIFY_SOCKET protocol): READY=1 once spawnd serves, RELOADING=1 … READY=1 around a
// reload, STOPPING=1 when a graceful shutdown begins; each with a STATUS= line that `systemctl status` shows.
#pragma once

#include <optional>
#include <string>

#include "common/fd.h"

namespace spawnd::server::systemd {

// The listening sockets systemd passed, told apart by their names (FileDescriptorName= in the socket unit,
// sd_listen_fds_with_names(3)).
struct ListenSockets {
  Fd http;   // plain HTTP: the socket named "http", or the only one passed whatever its name
  Fd https;  // HTTPS, served as --tls-listen's would be: the socket named "https"; empty if none is
};

// The listening sockets systemd passed to this process, if any. Returns nullopt when LISTEN_PID/LISTEN_FDS do not
// name this process (spawnd was not socket-activated: bind --listen). Otherwise the sockets are named "http" (plain
// HTTP) and "https" (HTTPS), at most one of each, and the plain one must be there (spawnd always serves plain HTTP:
// ACME challenges, the redirect to HTTPS); a single socket of another name (a unit without FileDescriptorName=, or
// systemd-socket-activate without --fdname) is the plain one. Each must be a listening AF_INET/AF_INET6 stream
// socket (sd_is_socket_inet(3)). Anything else throws spawnd::ConfigError (exit 2) naming what was passed: a
// datagram or unix socket, two sockets of one name, another name among several sockets, no plain one. The sockets
// are returned close-on-exec (so no handler inherits them) and non-blocking (the event loop accepts in a loop until
// EAGAIN); the LISTEN_* variables are removed from the environment. Call once, at start-up.
[[nodiscard]] std::optional<ListenSockets> take_listen_sockets();

// READY=1: start-up is complete and spawnd accepts connections (Type=notify: `systemctl start` returns now, and
// units ordered After= spawnd start). `status` becomes the unit's STATUS= line ("listening on http://...").
void notify_ready(const std::string& status);

// STOPPING=1: a graceful shutdown has begun (SIGTERM/SIGINT); in-flight responses are finishing.
void notify_stopping();

// For the reload on SIGHUP (the configuration file, the log files). Bracket the reload with these two:
//
//   systemd::notify_reloading();              // RELOADING=1 + MONOTONIC_USEC=now: `systemctl status` says
//   ... re-read the configuration, reopen    //   "reloading"; the unit is not "active" again until READY=1
//   systemd::notify_reloaded(outcome);        // READY=1 + STATUS=outcome ("reloaded" / "reload failed: ...")
//
// Call notify_reloaded() on every path out of the reload, also when the new configuration is bad and the old one
// keeps running (then say so in `status`): without READY=1 the unit stays "reloading" for good. MONOTONIC_USEC is
// what systemd 253's Type=notify-reload requires; systemd 252 (Debian 12) ignores it.
void notify_reloading();
void notify_reloaded(const std::string& status);

}  // namespace spawnd::server::systemd
