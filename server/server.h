// server/server.h — the spawnd process: listening socket, signals, connections, routing and graceful shutdown.
//
// Server::run() is the whole life of the process after configuration: it listens, accepts connections (surviving
// EMFILE by pausing accept for a moment instead of spinning), owns the Router that sends each request to a mounted
// Gateway (by URL prefix) or to the static files, and returns after SIGTERM/SIGINT once in-flight responses have
// finished or the grace period has passed. Single-threaded: everything runs on the EventLoop.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "server/access_log.h"
#include "server/config.h"
#include "server/error_pages.h"
#include "server/event_loop.h"
#include "server/gateway/cgi_gateway.h"
#include "server/gateway/gateway.h"
#include "server/gateway/mount_config.h"
#include "server/gateway/process.h"
#include "server/metrics.h"
#include "server/request_body_buffer.h"
#include "server/router.h"
#include "server/static_files.h"
#include "server/status_page.h"

namespace spawnd::server {

class Connection;
class DbKeeper;
struct FastCgiPass;
class FastCgiApps;

class Server {
 public:
  // Binds the listening socket and opens the root and the access log. Throws spawnd::Error on failure.
  explicit Server(Config config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Routes request paths under `prefix` (e.g. "/cgi-bin/") to `gateway` (Router::mount). Call before run().
  void mount(std::string prefix, std::unique_ptr<Gateway> gateway);

  // Serves until SIGTERM/SIGINT and the end of the graceful shutdown. Logs the listening address first.
  void run();

  // The bound address as "127.0.0.1:PORT" (the real port when the configuration said 0).
  [[nodiscard]] const std::string& bound_address() const noexcept { return bound_address_; }

  // --- for Connection ---
  [[nodiscard]] EventLoop& loop() noexcept { return loop_; }
  [[nodiscard]] const Config& config() const noexcept { return config_; }
  [[nodiscard]] const StaticFiles& static_files() const noexcept { return static_files_; }
  [[nodiscard]] AccessLog& access_log() noexcept { return access_log_; }
  // What every connection's request body buffer draws on (memory and temp-file bytes).
  [[nodiscard]] BodyBudget& body_budget() noexcept { return body_budget_; }
  // Who answers a request path: a mounted gateway or the static files; and where a local redirect goes.
  [[nodiscard]] const Router& router() const noexcept { return router_; }
  // The current Date field value (RFC 9110 §6.6.1), refreshed once per second.
  [[nodiscard]] const std::string& http_date();
  [[nodiscard]] std::uint64_t next_request_id() noexcept { return ++request_count_; }
  [[nodiscard]] bool is_shutting_down() const noexcept { return is_shutting_down_; }
  // Destroys the connection after the current dispatch pass.
  void release(Connection& connection);
  // The custom error pages (--error-pages; none: built-in pages).
  [[nodiscard]] const ErrorPages& error_pages() const noexcept { return error_pages_; }
  // Counters of the status page: the server's, and the site's that connections count their responses in.
  [[nodiscard]] Metrics& metrics() noexcept { return metrics_; }
  [[nodiscard]] SiteMetrics& site_metrics() noexcept { return *site_metrics_; }
  // Whether `path` (a request's raw path) is the status page's (--status-path; never when that is empty).
  [[nodiscard]] bool is_status_path(std::string_view path) const noexcept {
    return !config_.status_path.empty() && path == config_.status_path;
  }
  // Who may read the status page (--status-allow).
  [[nodiscard]] const AllowList& status_allow() const noexcept { return status_allow_; }
  // The status page's body, built now (status_page.h).
  [[nodiscard]] std::string status_text() const;

 private:
  void on_accept();
  void on_signal();
  void begin_shutdown();
  // Stops accepting for `ms` (out of descriptors: the pending connections wait in the backlog).
  void pause_accept(std::int64_t ms);
  // The end of a pause: the listener is watched again (or, if epoll_ctl fails, retried `retry_ms` later).
  void resume_accept(std::int64_t retry_ms);
  // The settings every mount shares, from the command line: document root, limits, timeouts (no directory and no
  // base_env: those are the mount's own).
  [[nodiscard]] MountConfig mount_config(std::string prefix) const;
  // A CGI mount's settings: the mount's, the clean environment (PATH, --pass-env, SPAWND_DB, SPAWND_PRAGMAS) and
  // the spawn limits (no fork servers).
  [[nodiscard]] CgiConfig cgi_config(std::string prefix, std::string directory) const;
  // The --cgi-bin mount: the gateway --mode names (fastcgi and inproc with a CGI gateway for other programs).
  std::unique_ptr<Gateway> make_cgi_gateway();
  // Mounts a --fastcgi-pass application at its prefix. Throws spawnd::ConfigError if its address does not resolve.
  void mount_fastcgi_pass(const FastCgiPass& pass);

  Config config_;
  EventLoop loop_;
  StaticFiles static_files_;
  ErrorPages error_pages_;
  Metrics metrics_;
  SiteMetrics* site_metrics_ = nullptr;  // in metrics_: the one site's, "default"
  AllowList status_allow_;
  AccessLog access_log_;
  BodyBudget body_budget_;
  EventLoop::WatchedFd listener_;
  EventLoop::WatchedFd signal_fd_;
  std::unique_ptr<DbKeeper> db_keeper_;  // with --db: holds a connection and checkpoints; outlives the gateways
  ChildTable children_;  // every child process of the server, whichever gateway started it; outlives the gateways
  std::unique_ptr<FastCgiApps> fastcgi_apps_;  // --fastcgi-pass: one connection pool per address; outlives the gateways
  std::string bound_address_;
  Router router_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections_;
  std::uint64_t connection_count_ = 0;
  std::uint64_t request_count_ = 0;
  bool is_accept_paused_ = false;
  bool is_shutting_down_ = false;
  std::time_t date_second_ = 0;
  std::string date_;
};

}  // namespace spawnd::server
