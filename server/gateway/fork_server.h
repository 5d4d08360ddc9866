// server/gateway/fork_server.h — `--mode fork`: each SDK handler runs as warm fork servers that fork a fresh child per
// request, so a request pays fork() instead of exec + dynamic start-up (protocol: common/fork_protocol.h).
//
// For the CGI gateway this is only another way to start the child: CgiGateway prepares the pipes and the
// environment exactly as for posix_spawn and offers the job here first; spawn() sends it to a ready fork server
// of that script, and the child (its pid, and the pidfd the fork server took right after fork() and passed with
// Spawned) comes back through the same completion callback as from SpawnPool. From then on pipes, response parsing,
// limits, timeouts and the process-group kill are the CGI gateway's.
//
// Per script, ForkServers keeps `servers_per_handler` fork servers. It starts them on the first request for the
// script, and only if the executable contains the fork-server marker (scripts and third-party programs run as
// plain CGI). Every spawn() stats the file: when it was replaced (supervisor.h's reload rule) the old servers
// retire and new ones start, so the next request runs the new version: deploy by copying, as with CGI. Retiring a
// fork server reads the answers it has already sent, then takes its control socket out of the loop and closes it,
// SIGKILLs it (so that none of them forks after all; its children live on), and fails the Spawns it has not
// answered. Each fork server is a SupervisedProcess: one that dies is restarted as supervisor.h says (at once, then
// back-off from 100 ms up to 10 s) and logged; requests meanwhile fall back to plain CGI spawning. Spawns a dead or retired fork server had been sent but not answered
// are reported with ECONNRESET, and never hang: the CGI gateway then lets the pipes decide, since a child may have
// been forked (and be answering) without its Spawned ever reaching us; if none was, the pipes close empty: 502.
// Such a request is not spawned again: it may have run already (a POST would run twice).
//
// With `prefork` > 0 spawnd keeps, per fork server, a pool of children forked ahead of need (PreFork; each has its
// own database connection, common/fork_protocol.h) and sends a request's Spawn straight to the most recently forked
// waiting child, so neither fork() nor the fork server is on the request's path. The pool's policy is here:
//   - its target starts at kPreforkMinimum; a request that finds no child waiting is sent to the fork server as a
//     Spawn (forked at once) and raises the target by one, up to `prefork`;
//   - it is refilled up to the target when a child of the fork server exits (usually the one that just served: by
//     then its response has left, and the fork does not compete with it for a core) and kPreforkRefillDelayMs after a
//     hand-off at the latest (a child that serves for long);
//   - a child left waiting kPreforkIdleMs is retired unused (its socket closed: it exits) and lowers the target by
//     one, down to kPreforkMinimum, whose children are then replaced by fresh ones;
//   - a waiting child that dies (its fork server's Exited names it) is dropped and replaced, logged as "died waiting".
// Retiring a fork server SIGKILLs its group, which its waiting children are still in, so none of them serves after a
// replace.
//
// Fork servers are spawnd's children (in the ChildTable). Their children are not: spawnd watches them by pidfd, and
// their parent reaps them. spawnd is not a child subreaper: it could only reap the pids it knows, and orphans come
// with pids it never learns (what a handler leaves behind in its group; a child forked by a fork server that died
// before it could send Spawned). So each fork server is the subreaper of its own children's orphans instead
// (fork_server_runtime.cpp), and when a fork server dies, whatever it leaves goes to init, as under CGI. Loop thread
// only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "server/event_loop.h"
#include "server/gateway/process.h"
#include "server/gateway/spawn_pool.h"
#include "server/gateway/supervisor.h"

namespace spawnd::server {

// The pre-forked pool's policy (see ForkServers).
// A child left waiting this long is retired unused: the pool follows the request rate down within a few seconds of a
// burst, and a child never serves with a warm-up older than this.
inline constexpr std::int64_t kPreforkIdleMs = 2000;
// The pool's target never shrinks below this (when --prefork > 0): a lone request after a quiet spell finds a child.
inline constexpr std::size_t kPreforkMinimum = 1;
// The latest refill after a hand-off, when no child of the fork server has exited by then.
inline constexpr std::int64_t kPreforkRefillDelayMs = 5;

class ForkServers {
 public:
  // Same shape as SpawnPool's: the child for `token` (is_own_child false: its fork server reaps it), or an errno.
  // ECONNRESET: no child we can watch was reported, whether or not one was forked (its fork server died or was
  // retired before reporting one, or could not give its pidfd and killed it); its pipes decide.
  using SpawnedCallback = std::function<void(std::uint64_t token, Result<ChildProcess> child)>;

  // `directory`: --cgi-bin (absolute); `base_env`: the handlers' environment without meta-variables;
  // `prefork`: --prefork, the pool of pre-forked children each fork server keeps (0: none; fork_protocol.h);
  // `dev_null`: an fd open O_RDWR on /dev/null (kept open by the caller).
  ForkServers(EventLoop& loop, ChildTable& children, std::string directory, std::vector<std::string> base_env,
              std::size_t servers_per_handler, std::size_t prefork, int dev_null, SpawnedCallback on_spawned);
  ForkServers(const ForkServers&) = delete;
  ForkServers& operator=(const ForkServers&) = delete;
  ~ForkServers();

  // Hands `job` to a ready fork server of `script` (a file name in the directory). Returns false if the script is
  // not an SDK handler, none of its fork servers is ready, or the message could not be sent: the caller then
  // spawns the job itself. On true the job's child fds have been passed on (the caller closes its copies).
  [[nodiscard]] bool spawn(const std::string& script, const SpawnPool::Job& job);
  // Fork servers that could not be started (Supervisor::start_failures), all handlers together.
  [[nodiscard]] std::uint64_t start_failures() const;

 private:
  // Dead: not running (between an exit and its restart, or retired).
  enum class State { Starting, Ready, Dead };
  // A pre-forked child of a fork server, waiting for the one request we send it.
  struct Waiting {
    ChildProcess child;          // its pid and pidfd (is_own_child false: its fork server reaps it)
    Fd socket;                   // our end of its SOCK_SEQPACKET pair
    std::uint64_t token = 0;     // of the PreFork that made it (its Exited carries it)
    std::int64_t since_ms = 0;   // EventLoop::now_ms() when its Waiting arrived
  };
  struct Server {
    std::string script;
    EventLoop::WatchedFd control;
    State state = State::Dead;
    std::unordered_set<std::uint64_t> pending;  // Spawn sent, Spawned not yet received
    std::unique_ptr<SupervisedProcess> process;  // started, watched and restarted by its handler's supervisor
    // The pre-forked pool (empty without --prefork): oldest first, so a request takes the back and the front ages out.
    std::vector<Waiting> waiting;
    std::size_t pre_forking = 0;    // PreForks sent, Waiting not yet received
    std::size_t target = 0;         // between kPreforkMinimum and prefork_: what top_up() keeps
    bool is_pre_fork_failing = false;  // the last PreFork failed: none is sent again until the next request
    EventLoop::TimerId idle_timer = 0;    // the oldest waiting child's retirement
    EventLoop::TimerId refill_timer = 0;  // kPreforkRefillDelayMs after a hand-off
  };
  struct Handler {
    std::unique_ptr<Supervisor> supervisor;  // the version and back-off (before servers: outlives them)
    bool is_sdk = false;
    std::vector<std::shared_ptr<Server>> servers;
    std::size_t next = 0;
  };

  // The handler's fork servers, started.
  void start_servers(const std::string& script, Handler& handler);
  // Ends `server`'s service for good (see the header comment); the caller drops it.
  void retire(const std::shared_ptr<Server>& server);
  // Reads and handles up to `max_messages` messages from the server's control socket.
  void on_control(const std::shared_ptr<Server>& server, int max_messages);
  // The fork server exited (its supervisor restarts it).
  void on_server_exit(const std::shared_ptr<Server>& server);
  void fail_pending(Server& server);
  // Sends `message` with `fds` to the most recently forked waiting child of `server` that takes it; its child
  // reaches on_spawned_ on the next loop turn. False if none took it (none waiting, or all died waiting).
  [[nodiscard]] bool hand_off(const std::shared_ptr<Server>& server, std::uint64_t token, const std::string& message,
                              std::span<const int> fds);
  // Sends PreForks until the pool (waiting and being forked) holds the server's target.
  void top_up(Server& server);
  // Retires the children that waited kPreforkIdleMs, and arms the timer for the next one.
  void retire_idle(const std::shared_ptr<Server>& server);
  // Closes the pool (the children read EOF and exit) and cancels its timers.
  void drop_pool(Server& server);
  // Runs on_spawned_ for the children handed requests since the last call.
  void deliver_handed_off();

  EventLoop& loop_;
  ChildTable& children_;
  std::string directory_;
  std::vector<std::string> base_env_;
  std::size_t servers_per_handler_;
  std::size_t prefork_;  // --prefork: the most children each fork server's pool keeps waiting
  std::uint64_t next_pre_fork_token_ = 0;
  // Children handed a request, for on_spawned_ after the current dispatch pass (never from inside spawn(), which
  // the CGI gateway is still in); `alive_` tells that deferred task whether we still exist.
  std::vector<std::pair<std::uint64_t, ChildProcess>> handed_off_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  int dev_null_;
  SpawnedCallback on_spawned_;
  std::unordered_map<std::string, Handler> handlers_;
};

// True if the file at `path` is an SDK handler: an ELF executable carrying the SDK's marker
// (fork_protocol::kForkServerMarker, which every handler's main() embeds). Such a program can run as a fork server
// (--mode fork) and as a FastCGI worker (--mode fastcgi); any other program runs as plain CGI in those modes.
[[nodiscard]] bool is_sdk_handler(const std::string& path);

}  // namespace spawnd::server
