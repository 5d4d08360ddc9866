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
// Pre-forked children (`spawnd --prefork N`). spawnd keeps a pool of children forked ahead of need and hands each
// request straight to one of them, so that neither fork() nor the fork server is on the request's path. For each
// PreFork it sends, the fork server forks a child which builds its own Context and runs the handler's warm_up
// (spawnd/handler.h: its own SQLite connection opened, migrated, statements prepared), then waits on its own
// SOCK_SEQPACKET pair for exactly one Spawn. Right after the fork the fork server answers Waiting: the PreFork's
// token and the child's pid, with the child's pidfd and spawnd's end of that pair attached (exactly 2 fds, in that
// order); or pid = -errno and no fd if it could not fork or take the pidfd (it then kills the child). spawnd sends a
// request's Spawn (the same bytes and three fds as to a fork server) on that pair's end, then closes it, and watches
// the child by the pidfd as after a Spawned; the child answers nothing on the pair. The child puts itself in a group
// of its own on receipt (until then it is in the fork server's group: a group SIGKILL of a retired fork server ends
// its waiting children too, so copy-to-deploy never serves a request with the old executable). A child that reads
// EOF instead (spawnd retired it unused, or is gone) exits 0. It checks the database file before serving: if the
// file at SPAWND_DB is no longer the one it opened (deleted and recreated, renamed over), it closes its warm
// connection and opens the new file, so a request never reads a replaced database through a stale connection. The
// fork server reaps it and sends Exited with the PreFork's token, like any child of its own. What pool to keep (its
// size, when to refill it, when to retire an idle child) is spawnd's policy (server/gateway/fork_server.h).
//
// Every message starts with ForkMessageHeader (native byte order: both ends are on one machine).
#pragma once

#include <cstddef>
#include <cstdint>

namespace spawnd::fork_protocol {

inline constexpr int kControlFd = 3;
inline constexpr const char* kForkServerEnv = "SPAWND_FORK_SERVER";
// Present in the executable's bytes (the SDK defines it as a used, exported string).
// Version 3: PreFork and Waiting (version 2: Spawned carries the child's pidfd, Exited the Spawn's token).
inline constexpr const char* kForkServerMarker = "spawnd-fork-server-protocol-3";
// Largest message: header + environment block. Bigger requests are served by plain CGI instead.
inline constexpr std::uint32_t kMaxMessageBytes = 128 * 1024;
enum class MessageType : std::uint32_t {
  Ready = 1,    // fork server → spawnd: initialised, accepting Spawn
  Spawn = 2,    // spawnd → fork server: header + environment block, SCM_RIGHTS [stdin, stdout, stderr]
  Spawned = 3,  // fork server → spawnd: `token` of the Spawn, `pid` of the child + SCM_RIGHTS [pidfd] (no fd: a
                // child it had to kill), or -errno
  Exited = 4,   // fork server → spawnd: `pid` reaped with waitpid() status `status`; `token` of the Spawn or PreFork
                // that forked it, 0 for an adopted orphan
  PreFork = 5,  // spawnd → fork server: header only (`token`, env_bytes 0), no fds: fork a waiting child
  Waiting = 6,  // fork server → spawnd: `token` of the PreFork, `pid` of the waiting child + SCM_RIGHTS [pidfd, its
                // socket], or -errno and no fds
};

struct ForkMessageHeader {
  MessageType type;
  std::uint32_t env_bytes;  // Spawn: length of the environment block that follows the header (else 0)
  std::uint64_t token;      // spawnd's id for the request (Spawn, Spawned, Exited) or the child (PreFork, Waiting,
                            // Exited); Exited: 0 for an orphan
  std::int32_t pid;         // Spawned / Waiting / Exited
  std::int32_t status;      // Exited: the waitpid() status
};
static_assert(sizeof(ForkMessageHeader) == 24);

// The environment block of a Spawn message: "NAME=value\0NAME=value\0...", env_bytes long (the last entry is
// NUL-terminated too). It is the child's whole environment, nothing of the fork server's is kept: so it is what a
// CGI child would get, spawnd's base handler environment (PATH, SPAWND_DB, SPAWND_PRAGMAS, --pass-env) plus the
// request's meta-variables.
//
// The fork server refuses with Spawned, pid = -EINVAL, a message that is longer than kMaxMessageBytes, is neither a
// Spawn nor a PreFork (a PreFork with fds or an environment block is refused with Waiting, pid = -EINVAL), has an
// env_bytes other than the rest of the message, does not carry exactly 3 fds, or has an environment entry without
// "NAME=" or a block not ending with NUL. A message shorter than the header has no token and gets no
// answer. Each refusal is one line on stderr; the fds are closed and the fork server carries on.

}  // namespace spawnd::fork_protocol
