// server/systemd.h — what spawnd does for systemd (libsystemd, Debian's libsystemd-dev): socket activation and the
// readiness protocol of Type=notify services. Outside systemd every function here does nothing.
//
// Socket activation (sd_listen_fds(3), the LISTEN_PID/LISTEN_FDS protocol): a spawnd.socket unit, or
// `systemd-socket-activate -l ADDR spawnd ...`, binds the port itself and starts spawnd with the listening socket as
// fd 3. spawnd then serves on that socket instead of binding --listen, so it needs no privilege to bind port 80 and
// connections that arrive while it (re)starts wait in the socket's backlog instead of being refused.
//
// Readiness (sd_notify(3), the NOTIFY_SOCKET protocol): READY=1 once spawnd serves, RELOADING=1 … READY=1 around a
// reload, STOPPING=1 when a graceful shutdown begins; each with a STATUS= line that `systemctl status` shows.
#pragma once

#include <optional>
#include <string>

#include "common/fd.h"

namespace spawnd::server::systemd {

// The listening socket systemd passed to this process, if any. Returns nullopt when LISTEN_PID/LISTEN_FDS do not
// name this process (spawnd was not socket-activated: bind --listen). Otherwise exactly one socket must have been
// passed and it must be a listening AF_INET/AF_INET6 stream socket (sd_is_socket_inet(3)): a unit with several
// ListenStream= lines, or a datagram or unix socket, throws spawnd::ConfigError (exit 2) naming what was passed.
// The socket is returned close-on-exec (so no handler inherits it) and non-blocking (the event loop accepts in a
// loop until EAGAIN). The LISTEN_* variables are removed from the environment. Call once, at start-up.
[[nodiscard]] std::optional<Fd> take_listen_socket();

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
