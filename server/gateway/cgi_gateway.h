// server/gateway/cgi_gateway.h — runs one handler executable per request (RFC 3875): `--mode cgi`.
//
// For each request under the mount prefix we map "/cgi-bin/NAME/extra/path" to the program DIR/NAME with
// PATH_INFO "/extra/path", spawn it (clone(CLONE_VM|CLONE_VFORK); posix_spawn or fork+exec with --spawn) with the CGI environment
// (common/cgi_env.h), stream the request body to its stdin and parse its stdout with CgiResponseParser, streaming the
// body on to the client with backpressure. stderr lines go to the error log tagged with the request id and script.
// Names beginning with "nph-" are non-parsed-header scripts: their stdout is the raw HTTP response.
//
// Limits (admission.h): at most `max_children` children run at once; further requests wait in a FIFO of
// `max_queue`, beyond which they get 503 with Retry-After. A child that has not finished its response after `timeout_ms` gets 504 (if nothing
// was sent yet) and its process group SIGTERM, then SIGKILL after --kill-grace (the ChildTable's).
//
// The child belongs to the server's ChildTable, not to the request: if the client disconnects we signal the group and drop
// the exchange, but the child stays in the table until its pidfd reports exit, so every child is reaped. A slot of
// max_children is freed when the child is reaped, not when the request ends. Single-threaded: loop thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/fd.h"
#include "server/event_loop.h"
#include "server/gateway/admission.h"
#include "server/gateway/fork_server.h"
#include "server/gateway/gateway.h"
#include "server/gateway/mount_config.h"
#include "server/gateway/process.h"
#include "server/gateway/spawn_pool.h"

namespace spawnd::server {

// The mount (mount_config.h: directory is --cgi-bin, where only regular executables directly inside run), and:
struct CgiConfig : MountConfig {
  std::size_t max_children = 8;
  bool argv_from_query = false;  // RFC 3875 §4.4 search-string argv; off by default (CVE-2012-1823)
  SpawnMethod spawn_method = SpawnMethod::Vfork;
  std::size_t spawn_threads = 2;  // threads that start children (0: on the loop thread); see spawn_pool.h
  std::size_t fork_servers = 0;   // --mode fork: fork servers per SDK handler (0: plain CGI); see fork_server.h
  std::size_t prefork = 0;        // --prefork: children each fork server keeps forked ahead of need (0: none)
};

class CgiExchange;

class CgiGateway final : public Gateway {
 public:
  // `children`: the server's child table, which watches and reaps every child (and fork server) started here.
  // Throws spawnd::Error if /dev/null cannot be opened.
  CgiGateway(EventLoop& loop, ChildTable& children, CgiConfig config);
  ~CgiGateway() override;

  [[nodiscard]] std::unique_ptr<Exchange> start(const Request& request, ResponseSink& sink,
                                                RequestBody& body) override;
  // Fork with fork servers (--mode fork), else Cgi.
  [[nodiscard]] ServedBy served_by() const noexcept override;
  void report_load(const LoadReport& report) const override;

 private:
  friend class CgiExchange;
  // Spawns the child of `ex` on a slot taken now; if that fails, gives the slot back and answers the request (500).
  void spawn(CgiExchange& ex);
  // Starts the prepared child: through a fork server when one serves `script`, else with the spawn pool.
  void spawn_job(const std::string& script, SpawnPool::Job job);
  void on_spawned(std::uint64_t token, Result<ChildProcess> spawned);
  void forget(CgiExchange& ex);
  // A child slot is free again (its child was reaped, or never started): a queued request may take it.
  void free_slot();
  // The exit callback of a child no exchange listens to any more: free_slot(), unless the gateway is gone by then.
  [[nodiscard]] ChildTable::ExitCallback slot_release();

  EventLoop& loop_;
  CgiConfig config_;
  ChildTable& children_;
  Fd dev_null_;  // stdin of children whose request has no body (and stdio of fork servers)
  std::size_t running_ = 0;  // child slots taken: from spawn() until the child is reaped (or the spawn failed)
  std::uint64_t spawn_failures_ = 0;  // children that could not be started for a request
  Admission admission_;
  std::unordered_map<std::uint64_t, CgiExchange*> spawning_;  // spawn token → exchange, while the spawn is in flight
  std::uint64_t next_spawn_token_ = 0;
  std::unique_ptr<ForkServers> fork_servers_;  // --mode fork only
  std::shared_ptr<const bool> alive_ = std::make_shared<const bool>(true);  // see slot_release()
  SpawnPool spawner_;  // last: stopped first, while everything its completions touch still exists
};

}  // namespace spawnd::server
