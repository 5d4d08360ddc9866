// server/gateway/fastcgi_gateway.h — spawnd as a FastCGI client (FastCGI Specification 1.0): `--mode fastcgi`, where
// spawnd starts and manages the handler processes itself, and `--fastcgi-pass`, where it talks to an application it
// did not start (php-fpm, fcgiwrap, any libfcgi program).
//
// Per request: the same meta-variables as CGI mode (script_request.h) go out as FCGI_PARAMS after an
// FCGI_BEGIN_REQUEST (responder role), the request body streams as FCGI_STDIN records as it arrives, FCGI_STDOUT is
// parsed with the CGI response parser (common/cgi_response.h) and streamed to the client with backpressure,
// FCGI_STDERR lines go to the error log, FCGI_END_REQUEST ends the response. One request at a time per connection
// (request id 1, no multiplexing). Errors: malformed records, an application that closes before FCGI_END_REQUEST or
// answers with a bad header block → 502; no complete response within `timeout_ms` → 504 (logged with why: nothing
// came back at all, e.g. the application never accepted the connection, or the response did not end); no free
// connection and a full queue → 503 with Retry-After. A client that goes away gets FCGI_ABORT_REQUEST sent for its
// request.
//
// Connections (issue 19). An external application (--fastcgi-pass) has ONE pool of connections per address
// (FastCgiApps), shared by every mount that names the address, so that mounts cannot starve each other of the
// application's processes. By default each request has a connection of its own, closed at FCGI_END_REQUEST (no
// FCGI_KEEP_CONN: nginx's `fastcgi_keep_conn off`). A process of php-fpm serves one connection at a time, so a
// kept-open idle connection holds a process; with keep_conn N > 0 spawnd sets FCGI_KEEP_CONN, reuses idle
// connections first, keeps at most N idle (closed after idle_timeout_ms), and closes rather than keeps one while
// another of its requests has heard nothing back yet (it may wait in the application's listen backlog for the very
// process the idle connection would hold). Managed workers (--mode fastcgi) always keep their connection: each
// worker has its own socket and serves only spawnd.
//
// Managed mode (`--mode fastcgi`): every SDK handler in the directory (an executable carrying the SDK's marker, see
// is_sdk_handler() in fork_server.h) gets `workers` processes. Each process has a listening unix socket of its own
// as fd 0 (FCGI_LISTENSOCK_FILENO, spec §2.2), in a private directory spawnd creates and removes, so spawnd knows
// which process serves which connection: a request goes to an idle process, or waits in the bounded queue
// (admission.h). Processes follow supervisor.h: one that dies is restarted (at once the first time, then with
// back-off from 100 ms up to 10 s while it keeps dying, logged); one that does not answer within the timeout is
// stopped (SIGTERM, then SIGKILL) and restarted; with `max_requests` a process is replaced after that many requests;
// and when the handler's file is replaced on disk (checked at each request for it), its processes are replaced, so
// the next request runs the new version. Other programs in the directory (shell scripts,
// third-party CGI programs) run as CGI through `fallback`. All processes are stopped when the gateway is destroyed.
//
// Loop thread only; nothing blocks except starting a worker process (spawn_process(), whose vfork-style clone waits
// until the worker has exec'd).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/fd.h"
#include "common/net_addr.h"
#include "server/event_loop.h"
#include "server/gateway/gateway.h"
#include "server/gateway/mount_config.h"
#include "server/gateway/process.h"
#include "server/gateway/script_request.h"

namespace spawnd::server {

// Where a FastCGI application listens: "unix:PATH" or "HOST:PORT" ("[::1]:9000" for IPv6).
struct FastCgiAddress {
  net::SockAddr addr;
  std::string text;  // as given, for log lines
};
// Parses and resolves `text` (net::resolve_endpoint: numeric hosts and names from /etc/hosts or DNS; resolved once,
// at start-up). Throws spawnd::ConfigError (spawnd exits 2) with a message naming `text` if it is neither form or
// does not resolve.
[[nodiscard]] FastCgiAddress parse_fastcgi_address(std::string_view text);

// One --fastcgi-pass PREFIX=ADDR[@DIR].
struct FastCgiPass {
  // URL prefix: "/php/" (a directory of scripts) or "/app.php" (one script); or "*.php": every request path naming
  // an existing *.php file under --root (extension routing, router.h)
  std::string prefix;
  std::string address;    // ADDR as given
  std::string directory;  // DIR: scripts live here on the application's side; empty: under --root
};
// Parses "PREFIX=ADDR[@DIR]". Throws spawnd::ConfigError if PREFIX neither starts with '/' nor is "*.EXT", DIR is
// not absolute or ADDR is empty.
[[nodiscard]] FastCgiPass parse_fastcgi_pass(std::string_view spec);

// The mount (mount_config.h; timeout_ms counts from start(): 504, or 503 if still queued; max_queue is per
// application; base_env is for managed workers only), and:
struct FastCgiConfig : MountConfig {
  // Managed mode only:
  std::size_t workers = 2;            // processes per SDK handler
  std::uint64_t max_requests = 0;     // replace a process after this many requests; 0: never
  // External mode only (server-wide: the pool of an address takes them from the first mount naming it):
  std::size_t max_connections = 8;     // connections to the application at once (requests beyond wait in the queue)
  std::size_t keep_conn = 0;           // idle connections kept open per address (FCGI_KEEP_CONN); 0: one per request
  std::int64_t idle_timeout_ms = 10'000;  // an idle kept connection is closed after this long
};

class FastCgiApp;
class FastCgiExchange;

// The external FastCGI applications of one server, one FastCgiApp (connection pool and admission queue) per address
// (keyed by the resolved address, net::to_string), shared by every --fastcgi-pass mount naming that address. Owned
// by the Server; must outlive every gateway that uses it. Loop thread only.
class FastCgiApps {
 public:
  explicit FastCgiApps(EventLoop& loop);
  ~FastCgiApps();
  FastCgiApps(const FastCgiApps&) = delete;
  FastCgiApps& operator=(const FastCgiApps&) = delete;
  // The pool of `address`, created on first use with the limits of `config` (max_connections, keep_conn,
  // idle_timeout_ms, max_queue, timeout_ms).
  [[nodiscard]] FastCgiApp& get(const FastCgiAddress& address, const FastCgiConfig& config);
  // Every application's load, as ServedBy::FastCgiPass (once per address, however many mounts share it).
  void report_load(const LoadReport& report) const;

 private:
  EventLoop& loop_;
  std::unordered_map<std::string, std::unique_ptr<FastCgiApp>> apps_;
};

class FastCgiGateway final : public Gateway {
 public:
  // Managed mode: starts `config.workers` processes for every SDK handler found in `config.directory` now (and for
  // one that appears later, on its first request); requests for other programs go to `fallback` (the CGI gateway of
  // the same directory). Throws spawnd::Error if the socket directory cannot be created.
  // `children`: the server's child table, which watches and reaps the workers.
  FastCgiGateway(EventLoop& loop, ChildTable& children, FastCgiConfig config, std::unique_ptr<Gateway> fallback);
  // External mode: every request under config.prefix (or, for a prefix "*.EXT", every path the Router sends here:
  // an existing *.EXT file under the root, router.h) goes to the application at `address`, through its pool in
  // `apps`; scripts are not checked here (the Router checked an extension mount's; a prefix mount's belong to the
  // application's host).
  FastCgiGateway(EventLoop& loop, FastCgiConfig config, FastCgiApps& apps, const FastCgiAddress& address);
  ~FastCgiGateway() override;

  [[nodiscard]] std::unique_ptr<Exchange> start(const Request& request, ResponseSink& sink,
                                                RequestBody& body) override;
  // FastCgi (managed) or FastCgiPass (external).
  [[nodiscard]] ServedBy served_by() const noexcept override;
  // Managed: the workers' load and the fallback's. External: nothing (FastCgiApps reports the shared pools).
  void report_load(const LoadReport& report) const override;

 private:
  friend class FastCgiApp;
  friend class FastCgiExchange;
  // The managed application for SDK handler `name`, started on first use; nullptr if `name` is not an SDK handler.
  FastCgiApp* managed_app(const std::string& name);

  EventLoop& loop_;
  FastCgiConfig config_;
  // config_.base_env as FastCGI name-value pairs (§3.4), encoded once: every request's PARAMS stream starts with it.
  std::string base_params_;
  bool is_managed_;
  std::unique_ptr<Gateway> fallback_;
  std::string socket_dir_;  // managed: the workers' listening sockets
  ChildTable* children_ = nullptr;  // managed: the server's child table (external mode starts no process)
  Fd dev_null_;  // managed: the workers' stdout
  std::unordered_map<std::string, std::unique_ptr<FastCgiApp>> apps_;  // managed: by handler name
  FastCgiApp* external_app_ = nullptr;  // external: the address's pool (owned by FastCgiApps)
  std::unordered_map<std::string, bool> is_sdk_;                        // managed: handler name → has the marker
};

}  // namespace spawnd::server
