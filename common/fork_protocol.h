// common/fork_protocol.h — the control protocol between spawnd and a handler running as a fork server
// (`--mode fork`). Shared by server/gateway/fork_server.cpp and the SDK's fork-server runtime.
//
// A handler executable announces that it can run as a fork server by containing kForkServerMarker (the SDK
// embeds it); spawnd never starts any other program in this mode. spawnd starts the executable once with:
//   - fd kControlFd (3): its end of a SOCK_SEQPACKET socketpair (one message per send, fds by SCM_RIGHTS);
//   - environment: spawnd's base handler environment (PATH, SPAWND_DB, SPAWND_PRAGMAS, --pass-env) plus
//     kForkServerEnv=3, which selects this runtime; stdin /dev/null, stdout /dev/null, stderr spawnd's stderr;
//   - its own process group.
// The fork server initialises what is safe to share across fork() (code, static data) but never opens SQLite,
// then sends Ready. For each Spawn it forks a child which: puts itself in a new process group (setpgid(0, 0)),
// installs the three received fds as 0, 1 and 2, closes every other fd, replaces its environment with the
// message's meta-variables, restores default signal dispositions and an empty mask, runs the handler exactly as
// under CGI, and exits. The fork server answers Spawned: the child's pid, with a pidfd for the child attached by
// SCM_RIGHTS (exactly one fd); or -errno and no fd if fork() failed. The fork server takes that pidfd with
// pidfd_open() right after fork(), which is race-free because the child is its own and not yet reaped; spawnd then
// tracks the child by the pidfd only (poll for its exit, pidfd_send_signal), because by the time spawnd looks, the
// child may have exited, been reaped and its pid number reused. If no pidfd can be had (EMFILE, ...), the fork
// server SIGKILLs the child at once and sends the pid with no fd: spawnd cannot watch that child, which may still
// have answered through its pipes before the kill, so spawnd lets the pipes decide (a response, or 502). When it reaps
// a child, the fork server sends Exited (the Spawn's token, pid, wait status). It is the child subreaper of its
// children's descendants, so it also reaps (and reports with Exited, token 0) the orphans a handler leaves behind.
// Exited is informational: spawnd learns of every exit from the pidfd, and uses Exited only to log an abnormal status.
// When the control socket closes, the fork server exits once it has read what was queued (its children live on,
// re-parented to init); spawnd SIGKILLs a fork server it retires, so that Spawns still queued to it are never forked.
//
//
// Pre-forked children (`spawnd --prefork N`, given to the fork server as kPreforkEnv=N; absent or 0: none). The
// fork server keeps up to N children forked ahead of need. Each one, right after its fork, builds its own Context
// and runs the handler's warm_up (spawnd/handler.h: its own SQLite connection opened, migrated, statements
// prepared), then waits on its own SOCK_SEQPACKET pair for exactly one Spawn, which the fork server forwards to it
// as received (bytes and the three fds). A Spawn goes to the most recently forked waiting child, and a replacement is
// forked once the queued Spawns are served and the children handed them have exited, or kPreforkRefillDelayMs after
// the last hand-off if they still run; a Spawn that finds no child waiting is served by a fork as above and
// grows the pool's target by one (at most N). A child left waiting kPreforkIdleMs is retired unused and the target
// shrinks by one, down to kPreforkMinimum, whose children are then replaced by fresh ones. Waiting children stay in
// the fork server's process group (so a group SIGKILL of a retired fork server ends them too: copy-to-deploy never
// serves a request with the old executable); the fork server moves one into a group of its own before forwarding
// its Spawn, then sends Spawned with the pidfd it took at the fork. The database file is checked before a hand-off:
// the fork server retires, unused, every waiting child forked while another file (device, inode) was at SPAWND_DB,
// and the child itself closes its warm connection if the file at the path is no longer the one it opened, so a
// request never reads a replaced database through a stale connection. A waiting child that dies (SIGKILL) is reaped
// and replaced; it never reaches spawnd. Waiting children exit when their socket closes (the fork server exited).
//
// Every message starts with ForkMessageHeader (native byte order: both ends are on one machine).
#pragma once

#include <cstddef>
#include <cstdint>

namespace spawnd::fork_protocol {

inline constexpr int kControlFd = 3;
inline constexpr const char* kForkServerEnv = "SPAWND_FORK_SERVER";
// Present in the executable's bytes (the SDK defines it as a used, exported string).
// Version 2: Spawned carries the child's pidfd, Exited the Spawn's token.
inline constexpr const char* kForkServerMarker = "spawnd-fork-server-protocol-2";
// Largest message: header + environment block. Bigger requests are served by plain CGI instead.
inline constexpr std::uint32_t kMaxMessageBytes = 128 * 1024;
// In the fork server's environment: how many pre-forked children it may keep waiting (decimal; 0 or absent: none).
inline constexpr const char* kPreforkEnv = "SPAWND_PREFORK";
// A pre-forked child that waited this long is retired unused: the pool follows the request rate down within a few
// seconds of a burst, and a child never serves with a warm-up older than this.
inline constexpr int kPreforkIdleMs = 2000;
// The pool's target never shrinks below this (when N > 0): a lone request after a quiet spell still finds a child.
inline constexpr std::size_t kPreforkMinimum = 1;
// After a hand-off, the pool's refill waits for the children handed requests to exit, at most this long. A fork
// copies the fork server's page tables (milliseconds of CPU on a VM), and made at once it would take a core from the
// request just handed off; on a lightly loaded server it now runs between requests instead.
inline constexpr int kPreforkRefillDelayMs = 5;

enum class MessageType : std::uint32_t {
  Ready = 1,    // fork server → spawnd: initialised, accepting Spawn
  Spawn = 2,    // spawnd → fork server: header + environment block, SCM_RIGHTS [stdin, stdout, stderr]
  Spawned = 3,  // fork server → spawnd: `token` of the Spawn, `pid` of the child + SCM_RIGHTS [pidfd] (no fd: a
                // child it had to kill), or -errno
  Exited = 4,   // fork server → spawnd: `pid` reaped with waitpid() status `status`; `token` of the Spawn that forked
                // it, 0 for an adopted orphan
};

struct ForkMessageHeader {
  MessageType type;
  std::uint32_t env_bytes;  // Spawn: length of the environment block that follows the header
  std::uint64_t token;      // Spawn / Spawned / Exited: spawnd's id for the request (Exited: 0 for an orphan)
  std::int32_t pid;         // Spawned / Exited
  std::int32_t status;      // Exited: the waitpid() status
};
static_assert(sizeof(ForkMessageHeader) == 24);

// The environment block of a Spawn message: "NAME=value\0NAME=value\0...", env_bytes long (the last entry is
// NUL-terminated too). It is the child's whole environment, nothing of the fork server's is kept: so it is what a
// CGI child would get, spawnd's base handler environment (PATH, SPAWND_DB, SPAWND_PRAGMAS, --pass-env) plus the
// request's meta-variables.
//
// The fork server refuses with Spawned, pid = -EINVAL, a message that is longer than kMaxMessageBytes, is not a
// Spawn, has an env_bytes other than the rest of the message, does not carry exactly 3 fds, or has an environment
// entry without "NAME=" or a block not ending with NUL. A message shorter than the header has no token and gets no
// answer. Each refusal is one line on stderr; the fds are closed and the fork server carries on.

}  // namespace spawnd::fork_protocol
