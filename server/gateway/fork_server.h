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
// With `prefork` > 0 each fork server keeps that many children forked ahead of need, each with its own database
// connection (common/fork_protocol.h); spawnd sees no difference: Spawn in, Spawned with a pidfd out. Retiring a fork
// server SIGKILLs its group, which its waiting children are still in, so none of them serves after a replace.
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
  struct Server {
    std::string script;
    EventLoop::WatchedFd control;
    State state = State::Dead;
    std::unordered_set<std::uint64_t> pending;  // Spawn sent, Spawned not yet received
    std::unique_ptr<SupervisedProcess> process;  // started, watched and restarted by its handler's supervisor
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

  EventLoop& loop_;
  ChildTable& children_;
  std::string directory_;
  std::vector<std::string> base_env_;
  std::size_t servers_per_handler_;
  std::size_t prefork_;  // kPreforkEnv for each fork server: children it keeps forked ahead of need
  int dev_null_;
  SpawnedCallback on_spawned_;
  std::unordered_map<std::string, Handler> handlers_;
};

// True if the file at `path` is an SDK handler: an ELF executable carrying the SDK's marker
// (fork_protocol::kForkServerMarker, which every handler's main() embeds). Such a program can run as a fork server
// (--mode fork) and as a FastCGI worker (--mode fastcgi); any other program runs as plain CGI in those modes.
[[nodiscard]] bool is_sdk_handler(const std::string& path);

}  // namespace spawnd::server
