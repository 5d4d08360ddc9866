// server/server.h — the spawnd process: listening socket, signals, connections, the sites, logs, reloads and
// graceful shutdown.
//
// Server::run() is the whole life of the process after configuration: it listens, accepts connections (surviving
// EMFILE by pausing accept for a moment instead of spinning), owns the current Sites (site.h: each site's static
// files and Router, which sends a request to a mounted Gateway or to the static files), and returns after
// SIGTERM/SIGINT once in-flight responses have finished or the grace period has passed.
//
// SIGHUP reopens the access log and the error log (logrotate's postrotate), then, with a configuration loader
// (--config), reloads: a new Sites is built from the reloaded Config and becomes current; each request holds the
// Sites it started on, and an old one is destroyed (its handler processes stopped, its keepers closed) once no
// request holds it. A configuration that fails to load or build is logged and the running one stays. Settings that
// cannot change without a restart (the listening socket, the body budget...) keep their running values, logged.
// Single-threaded: everything runs on the EventLoop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "server/access_log.h"
#include "server/config.h"
#include "server/db_keeper.h"
#include "server/event_loop.h"
#include "server/gateway/process.h"
#include "server/metrics.h"
#include "server/output_buffer.h"
#include "server/request_body_buffer.h"
#include "server/site.h"
#include "server/status_page.h"

namespace spawnd::server {

class Connection;
class TicketKeys;
class TlsContexts;

class Server {
 public:
  // Takes the listening sockets (systemd's, else binds --listen and --tls-listen), switches to --user (privileges.h),
  // then opens the root and the access log, the database and the gateways. Throws spawnd::Error on failure
  // (ConfigError for what the configuration got wrong: an unknown --user, a bad --body-temp-dir, ...).
  explicit Server(Config config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Checks `config` as the constructor would, binding, opening and starting nothing (--check-config): the listen
  // address's form, --body-temp-dir, the log files' directories, and every site (Sites::check). Throws
  // spawnd::ConfigError.
  static void check(const Config& config);

  // What SIGHUP reloads: `load` returns the configuration as it is now (the command line over the --config file),
  // or throws spawnd::Error. Without a loader, SIGHUP only reopens the logs.
  void set_config_loader(std::function<Config()> load) { load_config_ = std::move(load); }

  // Serves until SIGTERM/SIGINT and the end of the graceful shutdown. Logs the listening address first.
  void run();

  // The bound address as "127.0.0.1:PORT" (the real port when the configuration said 0).
  [[nodiscard]] const std::string& bound_address() const noexcept { return bound_address_; }
  // HTTPS (--tls-listen): the port of the TLS listener (for --redirect-https), 0 without one.
  [[nodiscard]] std::uint16_t tls_port() const noexcept { return tls_port_; }

  // --- for Connection ---
  [[nodiscard]] EventLoop& loop() noexcept { return loop_; }
  // The current configuration (process-wide settings; they apply to each connection's next use of them).
  [[nodiscard]] const Config& config() const noexcept { return sites_->config(); }
  // The current sites: a request takes them (and its Site, Sites::select) when its head is complete, and holds them
  // until it ends.
  [[nodiscard]] const std::shared_ptr<Sites>& sites() const noexcept { return sites_; }
  [[nodiscard]] AccessLog& access_log() noexcept { return access_log_; }
  // What every connection's request body buffer draws on (memory and temp-file bytes).
  [[nodiscard]] BodyBudget& body_budget() noexcept { return body_budget_; }
  [[nodiscard]] SpoolBudget& spool_budget() noexcept { return spool_budget_; }
  // The current Date field value (RFC 9110 §6.6.1), refreshed once per second.
  [[nodiscard]] const std::string& http_date();
  [[nodiscard]] std::uint64_t next_request_id() noexcept { return ++request_count_; }
  [[nodiscard]] bool is_shutting_down() const noexcept { return is_shutting_down_; }
  // Destroys the connection after the current dispatch pass.
  void release(Connection& connection);
  // Counters of the status page: the server's, and the site's that connections count their responses in.
  [[nodiscard]] Metrics& metrics() noexcept { return metrics_; }
  // The counters of the site named `name` (Site::name(): "-" for the default site, labelled "default"), made on
  // first use.
  [[nodiscard]] SiteMetrics& site_metrics(std::string_view name);
  // Whether `path` (a request's raw path) is the status page's (--status-path; never when that is empty).
  [[nodiscard]] bool is_status_path(std::string_view path) const noexcept {
    return !config_.status_path.empty() && path == config_.status_path;
  }
  // Who may read the status page (--status-allow).
  [[nodiscard]] const AllowList& status_allow() const noexcept { return status_allow_; }
  // The status page's body, built now (status_page.h).
  [[nodiscard]] std::string status_text() const;

 private:
  // The listening socket and what it is bound to ("127.0.0.1:8080"), for the start-up line.
  struct ListenSocket {
    Fd fd;
    std::string address;
    Fd tls_fd;  // --tls-listen's, if any
    std::string tls_address;
    std::shared_ptr<const TlsContexts> tls;  // its certificates, read before the switch to --user
    std::shared_ptr<TicketKeys> ticket_keys;  // --tls-ticket-key-rotation's ring; null: no tickets
  };
  // Server's first act: the listening sockets (systemd's, else bound to --listen and --tls-listen), the TLS one's
  // certificates (a private key is often readable by root only), then the switch to --user.
  static ListenSocket take_listen_socket_and_drop_privileges(const Config& config);
  // Accepts on `listener`; `tls`: the certificates its connections speak TLS with (null: plain HTTP).
  void on_accept(EventLoop::WatchedFd& listener, const std::shared_ptr<const TlsContexts>& tls);
  void on_signal();
  void begin_shutdown();
  // SIGHUP: reopens the logs, and reloads the configuration with the loader.
  void on_hangup();
  void reload();
  // Opens the error log file (--error-log) as error_log_; false (errno set) if it cannot be opened.
  [[nodiscard]] bool open_error_log(const std::string& path);
  // Makes stderr the error log file (dup2); a no-op without --error-log.
  void redirect_stderr() noexcept;
  // Gives `fresh` the running values of the settings a reload cannot change, logging each one that differs.
  void keep_restart_only(Config& fresh) const;
  // Destroys the retired sites no request holds any more, keeping what they counted (keep_retired_counters).
  void drop_retired_sites();
  // Runs drop_retired_sites() every kRetiredSitesCheckMs while there are retired sites (and only then: an idle
  // server is not woken).
  void schedule_drop_retired_sites();
  static constexpr std::int64_t kRetiredSitesCheckMs = 200;
  // Adds the counters of `retiring`'s gateways, and of its database keepers that no other live configuration
  // shares, to the SiteMetrics of their sites (metrics.h: counters go on across reloads).
  void keep_retired_counters(const Sites& retiring);
  // The counters of the site named `name` ("-": the default site's), or null if none were made yet.
  [[nodiscard]] const SiteMetrics* find_site_metrics(std::string_view name) const;
  // Stops accepting for `ms` (out of descriptors: the pending connections wait in the backlog).
  void pause_accept(std::int64_t ms);
  // The end of a pause: the listener is watched again (or, if epoll_ctl fails, retried `retry_ms` later).
  void resume_accept(std::int64_t retry_ms);
  Config config_;  // as at start-up: the settings a reload cannot change are read from here
  std::string body_temp_dir_given_;  // --body-temp-dir as given (config_ has the default filled in)
  // Taken before every other member, as whoever started spawnd (binding port 80 needs root): the socket systemd passed
  // (systemd.h) or one bound to --listen. --user/--group take effect right after (privileges.h), so that every
  // member below — the access log, the database, temporary files, handler processes — is created as that user.
  ListenSocket listen_socket_;
  EventLoop loop_;
  Metrics metrics_;
  SiteMetrics* site_metrics_ = nullptr;  // in metrics_: the default site's (label "default")
  std::unordered_map<std::string, SiteMetrics*> site_metrics_by_name_;  // the [[site]]s', made on first use
  AllowList status_allow_;  // --status-allow as at start-up
  AccessLog access_log_;
  Fd error_log_;  // --error-log: the file stderr is redirected to
  BodyBudget body_budget_;
  SpoolBudget spool_budget_;  // response spools (output_buffer.h): --max-response-temp-bytes, restart only
  EventLoop::WatchedFd listener_;
  EventLoop::WatchedFd signal_fd_;
  ChildTable children_;  // every child process of the server, whichever gateway started it; outlives the gateways
  std::string bound_address_;
  // HTTPS: the TLS listener and the current configuration's certificates (a reload replaces them; a connection
  // keeps those it was accepted with).
  EventLoop::WatchedFd tls_listener_;
  std::shared_ptr<const TlsContexts> tls_;
  std::shared_ptr<TicketKeys> ticket_keys_;  // every configuration's contexts seal tickets with it; rotated by a timer
  std::string tls_bound_address_;
  std::uint16_t tls_port_ = 0;
  std::function<Config()> load_config_;  // SIGHUP's reload; empty: no --config
  DbKeepers db_keepers_;  // the sites' database keepers, shared across reloads (weak references only)
  std::shared_ptr<Sites> sites_;  // the current configuration's sites
  std::vector<std::shared_ptr<Sites>> retired_sites_;  // replaced by a reload; destroyed once no request holds them
  EventLoop::TimerId retired_sites_timer_ = 0;         // schedule_drop_retired_sites()'s; 0: none
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections_;
  std::uint64_t connection_count_ = 0;
  std::uint64_t request_count_ = 0;
  bool is_accept_paused_ = false;
  bool is_shutting_down_ = false;
  std::time_t date_second_ = 0;
  std::string date_;
};

}  // namespace spawnd::server
