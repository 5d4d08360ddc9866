// server/privileges.h — --user and --group: who spawnd runs as once it holds its listening socket.
//
// The order is the point (Server's constructor keeps it): spawnd starts as root so that it can bind port 80 (or is
// handed the socket by systemd), then switches to the unprivileged user for good — initgroups(3), setresgid(2),
// setresuid(2), all three ids of each — and only then creates anything: the access log, the database and its -wal
// and -shm files, request bodies' temporary files, FastCGI workers' sockets, handler processes. So all of those
// belong to that user and every handler runs as it. The switch is checked: every real, effective and saved id must
// be the new one, and setuid(0) must fail afterwards (no way back to root). What nginx's and lighttpd's `user`
// directives do, except that spawnd has no root master left behind: nothing stays privileged.
#pragma once

#include <sys/types.h>

#include <string>

namespace spawnd::server {

// Whom spawnd switches to: the result of resolving --user and --group.
struct Credentials {
  std::string user;       // the user's name ("" : no --user, nothing to switch to)
  uid_t uid = 0;          // the user's id
  gid_t gid = 0;          // --group's id, else the user's primary group (from the passwd entry)
  std::string group;      // the name of gid, for log lines
};

// Looks up `user` (a name in the passwd database, getpwnam_r(3)) and `group` (a name in the group database; empty:
// the user's primary group). Empty `user` gives an empty Credentials (then `group` must be empty too: main.cpp
// makes --group need --user). Throws spawnd::ConfigError ("--user NAME: no such user") for a name that does not
// exist; call it before binding anything, so a typo costs nothing.
[[nodiscard]] Credentials resolve_credentials(const std::string& user, const std::string& group);

// Switches the process to `who` for good: initgroups(who.user, who.gid), then setresgid and setresuid to who.gid and
// who.uid, then checks that no id is left behind and that setuid(0) fails. Call it before any thread is started.
//   - empty `who` (no --user): nothing changes; if spawnd runs as root it logs a warning that it and its handlers
//     run as root (a warning, not a refusal: a container's root may be meant);
//   - `who` is the user spawnd already runs as (ids and group): nothing to do, logged;
//   - anything else without the privilege to switch (spawnd not started as root, or without CAP_SETUID and
//     CAP_SETGID): throws spawnd::Error naming the user and errno (EPERM) — a start-up failure, exit 1.
// Throws spawnd::Error too if a step fails or the check finds a way back to root.
void drop_privileges(const Credentials& who);

}  // namespace spawnd::server
