#include "server/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/error.h"
#include "common/log.h"
#include "common/net_addr.h"
#include "common/result.h"
#include "common/sys.h"
#include "server/connection.h"
#include "server/db_keeper.h"
#include "server/gateway/fastcgi_gateway.h"
#include "server/http_date.h"
#include "server/privileges.h"
#include "server/systemd.h"
#include "server/tls.h"

namespace spawnd::server {

namespace {

// The address listening socket `fd` is bound to, as text ("127.0.0.1:8080"), or `otherwise` if getsockname fails.
std::string listener_address(int fd, const std::string& otherwise) {
  Result<net::SockAddr> local = net::local_address(fd);
  return local ? net::to_string(*local) : otherwise;
}

// The listening socket for --listen HOST:PORT or [IPV6]:PORT (an empty HOST: every local address; port 0: the kernel
// picks), on the first address HOST resolves to that binds. `bound` gets what it is bound to, for the start-up line.
// Throws spawnd::Error naming `addr` if it is malformed, does not resolve, or binds nowhere.
Fd open_listener(const std::string& addr, int backlog, std::string& bound, const char* option = "--listen") {
  Result<net::HostPort> hp = net::split_host_port(addr);
  if (!hp) throw Error(std::string(option) + " " + addr + ": " + hp.error().message());
  Result<std::vector<net::SockAddr>> candidates = net::resolve(*hp, net::Use::Listen);
  if (!candidates) throw Error(std::string(option) + " " + addr + ": " + candidates.error().message());
  std::error_code last_error;
  for (const net::SockAddr& candidate : *candidates) {
    Result<Fd> fd = net::listen_on(candidate, {.backlog = backlog, .is_nonblocking = true});
    if (!fd) {
      last_error = fd.error();
      continue;
    }
    bound = listener_address(fd->get(), addr);
    return std::move(*fd);
  }
  throw Error(last_error ? last_error.value() : EADDRNOTAVAIL, std::string(option) + " " + addr);
}

// --body-temp-dir as given, or its default: $TMPDIR, else /tmp.
std::string body_temp_dir_of(const std::string& given) {
  if (!given.empty()) return given;
  const char* tmp = std::getenv("TMPDIR");
  return tmp && *tmp ? tmp : "/tmp";
}

// The HTTPS settings of `config` that need no file: --tls-listen's form. Throws spawnd::ConfigError.
void check_tls(const Config& config) {
  if (config.tls_listen.empty()) return;
  Result<net::HostPort> hp = net::split_host_port(config.tls_listen);
  if (!hp) throw ConfigError("tls-listen " + config.tls_listen + ": " + hp.error().message());
}

// --redirect-https needs a TLS listener (--tls-listen's, or a socket named https from systemd). Throws
// spawnd::ConfigError.
void check_redirect_https(const Config& config, bool has_tls_listener) {
  if (config.redirect_https && !has_tls_listener)
    throw ConfigError("redirect-https needs tls-listen (or a socket named https from systemd)");
}

// The session ticket key ring for --tls-ticket-key-rotation (tls.h); null for 0 (no tickets). A ticket lives about
// two rotation periods (its key seals for one and opens for one more), within TLS 1.3's bound of 7 days (RFC 8446
// §4.6.1).
std::shared_ptr<TicketKeys> make_ticket_keys(const Config& config) {
  if (config.tls_ticket_key_rotation_ms <= 0) return nullptr;
  const std::int64_t lifetime_s = (2 * config.tls_ticket_key_rotation_ms + 999) / 1000;
  return std::make_shared<TicketKeys>(static_cast<long>(std::min<std::int64_t>(lifetime_s, 7 * 24 * 3600)));
}

}  // namespace

Server::ListenSocket Server::take_listen_socket_and_drop_privileges(const Config& config) {
  const Credentials who = resolve_credentials(config.user, config.group);  // an unknown name: before binding anything
  check_tls(config);
  ListenSocket socket;
  std::optional<systemd::ListenSockets> passed = systemd::take_listen_sockets();
  if (passed) {
    socket.fd = std::move(passed->http);
    socket.address = listener_address(socket.fd.get(), "the socket systemd passed");
    SPAWND_LOG_INFO("socket activation: serving the socket systemd passed (%s); --listen is not used",
                    socket.address.c_str());
  } else {
    socket.fd = open_listener(config.listen, config.backlog, socket.address);
  }
  const bool has_https_socket = passed && passed->https;
  if (has_https_socket && (config.tls_cert.empty() || config.tls_key.empty()))
    throw ConfigError("socket activation: the socket named https is served as HTTPS: it needs tls-cert and tls-key");
  if (has_https_socket || !config.tls_listen.empty()) {
    socket.ticket_keys = make_ticket_keys(config);
    socket.tls = std::make_shared<const TlsContexts>(config, socket.ticket_keys);
  }
  if (has_https_socket) {
    socket.tls_fd = std::move(passed->https);
    socket.tls_address = listener_address(socket.tls_fd.get(), "the socket systemd passed");
    SPAWND_LOG_INFO("socket activation: serving HTTPS on the socket named https (%s)%s", socket.tls_address.c_str(),
                    config.tls_listen.empty() ? "" : "; --tls-listen is not used");
  } else if (!config.tls_listen.empty()) {
    socket.tls_fd = open_listener(config.tls_listen, config.backlog, socket.tls_address, "--tls-listen");
  }
  check_redirect_https(config, static_cast<bool>(socket.tls_fd));
  drop_privileges(who);
  return socket;
}

Server::Server(Config config)
    : config_(std::move(config)),
      body_temp_dir_given_(config_.body_temp_dir),
      listen_socket_(take_listen_socket_and_drop_privileges(config_)),
      site_metrics_(&metrics_.add_site("default")),
      status_allow_(config_.status_allow),
      access_log_(loop_, config_.access_log, !config_.is_quiet),
      body_budget_(config_.body_memory_limit, config_.max_buffered_body_bytes),
      spool_budget_{config_.max_response_temp_bytes},
      children_(loop_, config_.kill_grace_ms) {
  config_.body_temp_dir = body_temp_dir_of(config_.body_temp_dir);
  // Request bodies past --body-buffer-bytes go to unlinked files there: find out now, not at the first large POST.
  if (!open_unlinked_temp_file(config_.body_temp_dir))
    throw ConfigError("--body-temp-dir " + config_.body_temp_dir + ": cannot create a temporary file there: " +
                      std::strerror(errno));
  if (!config_.error_log.empty() && !open_error_log(config_.error_log))
    throw Error(errno, "--error-log " + config_.error_log);
  listener_.fd = std::move(listen_socket_.fd);
  bound_address_ = std::move(listen_socket_.address);
  if (listen_socket_.tls_fd) {
    tls_ = std::move(listen_socket_.tls);
    ticket_keys_ = std::move(listen_socket_.ticket_keys);
    tls_listener_.fd = std::move(listen_socket_.tls_fd);
    tls_bound_address_ = std::move(listen_socket_.tls_address);
    if (Result<net::SockAddr> local = net::local_address(tls_listener_.get()))
      (void)net::format_host(local->storage, tls_port_);
  }

  // Signals arrive through a signalfd, so that handling them is ordinary loop work. SIGPIPE is ignored: a client
  // that goes away shows up as EPIPE on send (which we also ask for with MSG_NOSIGNAL). SIGCHLD goes back to its
  // default, whatever we inherited: ignored, it would make the kernel reap our children behind the ChildTable's back,
  // and a pid could then be reused before spawn_process() takes its pidfd (process.h).
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGCHLD, SIG_DFL);
  sigset_t mask;
  ::sigemptyset(&mask);
  ::sigaddset(&mask, SIGTERM);
  ::sigaddset(&mask, SIGINT);
  ::sigaddset(&mask, SIGHUP);
  if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) throw Error(errno, "sigprocmask");
  signal_fd_.fd.reset(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) throw Error(errno, "signalfd");

  sites_ = std::make_shared<Sites>(loop_, children_, db_keepers_, config_, 1);
  access_log_.set_virtual_hosts(sites_->has_virtual_hosts());
}

void Server::check(const Config& config) {
  Result<net::HostPort> hp = net::split_host_port(config.listen);
  if (!hp) throw ConfigError("listen " + config.listen + ": " + hp.error().message());
  const std::string temp_dir = body_temp_dir_of(config.body_temp_dir);
  if (!open_unlinked_temp_file(temp_dir))
    throw ConfigError("body-temp-dir " + temp_dir + ": cannot create a temporary file there: " + std::strerror(errno));
  // The logs are opened (and created) only when spawnd runs: here their directories must exist.
  for (const auto& [key, path] : {std::pair<const char*, std::string>{"access-log", config.access_log},
                                  std::pair<const char*, std::string>{"error-log", config.error_log}}) {
    if (path.empty() || path == "-") continue;
    std::error_code ec;
    const std::filesystem::path dir = std::filesystem::absolute(path, ec).parent_path();
    if (!std::filesystem::is_directory(dir, ec))
      throw ConfigError(std::string(key) + " " + path + ": its directory does not exist");
  }
  Sites::check(config);
  check_tls(config);
  // The certificates load, and match their keys. (--redirect-https without tls-listen is left to start-up: systemd
  // may pass a socket for HTTPS.)
  if (!config.tls_listen.empty()) TlsContexts loaded(config, nullptr);
}

Server::~Server() {
  // Connections reference the loop and the sites' gateways: drop them first.
  connections_.clear();
  loop_.run_deferred();  // cancelled exchanges still reference their gateways
  retired_sites_.clear();
  sites_.reset();
  access_log_.flush();
}

const std::string& Server::http_date() {
  std::time_t now = std::time(nullptr);
  if (now != date_second_) {
    date_second_ = now;
    date_ = format_http_date(now);
  }
  return date_;
}

SiteMetrics& Server::site_metrics(std::string_view name) {
  if (name == "-") return *site_metrics_;
  auto it = site_metrics_by_name_.find(std::string(name));
  if (it == site_metrics_by_name_.end())
    it = site_metrics_by_name_.emplace(std::string(name), &metrics_.add_site(std::string(name))).first;
  return *it->second;
}

const SiteMetrics* Server::find_site_metrics(std::string_view name) const {
  if (name == "-") return site_metrics_;
  auto it = site_metrics_by_name_.find(std::string(name));
  return it == site_metrics_by_name_.end() ? nullptr : it->second;
}

std::string Server::status_text() const {
  StatusFigures figures;
  figures.connections_open = connections_.size();
  figures.connections_total = connection_count_;
  figures.response_temp_bytes = spool_budget_.in_use;
  // Per site (Site::name()): its entry of `figures`, and its distinct live database keepers, the current
  // configuration's first.
  std::vector<std::pair<std::string, std::vector<const DbKeeper*>>> by_site;
  auto site_entry = [&](const Site& s) -> std::size_t {
    for (std::size_t i = 0; i < by_site.size(); ++i)
      if (by_site[i].first == s.name()) return i;
    by_site.emplace_back(s.name(), std::vector<const DbKeeper*>());
    figures.sites.emplace_back().name = s.name() == "-" ? "default" : s.name();  // as in site_metrics()
    return by_site.size() - 1;
  };
  // The current configuration (its sites give the page's order), then the retired ones that still finish requests:
  // their handlers run, and what they counted is not in their sites' retired counters until they are destroyed.
  auto report = [&](const Sites& sites) {
    bool is_first = true;
    sites.for_each([&](const Site& s) {
      const std::size_t i = site_entry(s);
      StatusFigures::Site& site = figures.sites[i];
      const LoadReport add = [&site](ServedBy mode, const GatewayLoad& load) {
        std::optional<GatewayLoad>& sum = site.load[static_cast<std::size_t>(mode)];
        if (!sum) sum.emplace();
        sum->running += load.running;
        sum->queued += load.queued;
        SiteMetrics::add_counters(*sum, load);
      };
      s.router().report_load(add);
      // The --fastcgi-pass pools are shared by every site of a configuration: counted once, with the default site.
      if (is_first) sites.fastcgi_apps().report_load(add);
      is_first = false;
      std::vector<const DbKeeper*>& keepers = by_site[i].second;
      const DbKeeper* keeper = s.db_keeper();
      if (keeper != nullptr && std::find(keepers.begin(), keepers.end(), keeper) == keepers.end())
        keepers.push_back(keeper);
    });
  };
  report(*sites_);
  for (const auto& retired : retired_sites_) report(*retired);
  // What destroyed configurations counted, where the live ones have the same gateway mode or a database.
  for (std::size_t i = 0; i < by_site.size(); ++i) {
    StatusFigures::Site& site = figures.sites[i];
    const SiteMetrics* metrics = find_site_metrics(by_site[i].first);
    for (std::size_t mode = 0; mode < kServedByCount; ++mode) {
      if (site.load[mode] && metrics)
        SiteMetrics::add_counters(*site.load[mode], metrics->retired(static_cast<ServedBy>(mode)));
    }
    const std::vector<const DbKeeper*>& keepers = by_site[i].second;
    if (keepers.empty()) continue;
    site.db = keepers.front()->stats();  // the gauges (the -wal file now) are the current keeper's
    site.wal_max_bytes = keepers.front()->wal_max_bytes();
    for (std::size_t k = 1; k < keepers.size(); ++k) SiteMetrics::add_counters(*site.db, keepers[k]->stats());
    if (metrics) SiteMetrics::add_counters(*site.db, metrics->retired_db());
  }
  return render_status(metrics_, figures);
}

void Server::keep_retired_counters(const Sites& retiring) {
  // A keeper another live configuration still uses goes on counting there: only the others are added.
  auto is_live_elsewhere = [this, &retiring](const DbKeeper* keeper) {
    bool is_live = false;
    auto look = [&](const Sites& sites) {
      if (&sites == &retiring) return;
      sites.for_each([&](const Site& s) { is_live = is_live || s.db_keeper() == keeper; });
    };
    look(*sites_);
    for (const auto& retired : retired_sites_) look(*retired);
    return is_live;
  };
  bool is_first = true;
  retiring.for_each([&](const Site& s) {
    SiteMetrics& metrics = site_metrics(s.name());
    const LoadReport add = [&metrics](ServedBy mode, const GatewayLoad& load) { metrics.add_retired(mode, load); };
    s.router().report_load(add);
    if (is_first) retiring.fastcgi_apps().report_load(add);
    is_first = false;
    const DbKeeper* keeper = s.db_keeper();
    if (keeper != nullptr && !is_live_elsewhere(keeper)) metrics.add_retired(keeper->stats());
  });
}

void Server::release(Connection& connection) {
  std::uint64_t id = connection.id();
  loop_.defer([this, id] {
    connections_.erase(id);
    if (is_shutting_down_ && connections_.empty()) loop_.stop();
  });
}

void Server::run() {
  listener_.watch = loop_.watch(listener_.get(), EPOLLIN, [this](std::uint32_t) { on_accept(listener_, nullptr); });
  if (!listener_.watch)
    throw Error(errno, "epoll_ctl(listener)");
  if (tls_listener_) {
    tls_listener_.watch =
        loop_.watch(tls_listener_.get(), EPOLLIN, [this](std::uint32_t) { on_accept(tls_listener_, tls_); });
    if (!tls_listener_.watch) throw Error(errno, "epoll_ctl(tls listener)");
    std::fprintf(stderr, "spawnd: info: listening on https://%s\n", tls_bound_address_.c_str());
    SPAWND_LOG_INFO("TLS: %zu certificate(s); kernel TLS %s", tls_->certificate_count(),
                    TlsContexts::kernel_has_ktls()
                        ? "available: static files over HTTPS go out with sendfile where the cipher allows"
                        : "not available (no kernel tls module): static files over HTTPS are encrypted in user space");
    if (ticket_keys_) {
      SPAWND_LOG_INFO("TLS: session tickets: a new key every %g s",
                      static_cast<double>(config_.tls_ticket_key_rotation_ms) / 1000.0);
    } else {
      SPAWND_LOG_INFO("TLS: no session tickets (--tls-ticket-key-rotation 0)");
    }
  }
  signal_fd_.watch = loop_.watch(signal_fd_.get(), EPOLLIN, [this](std::uint32_t) { on_signal(); });
  if (!signal_fd_.watch)
    throw Error(errno, "epoll_ctl(signalfd)");
  // Printed even with --quiet: tests and scripts read the port from this line when they asked for port 0. It goes
  // to the stderr spawnd was started with; from here on, with --error-log, stderr is that file.
  std::fprintf(stderr, "spawnd: info: listening on http://%s\n", bound_address_.c_str());
  systemd::notify_ready("listening on http://" + bound_address_);
  if (error_log_) {
    std::fprintf(stderr, "spawnd: info: error log: %s\n", config_.error_log.c_str());
    redirect_stderr();
  }
  // The session ticket keys change every --tls-ticket-key-rotation, whatever the reloads (tls.h: TicketKeys).
  std::function<void()> rotate_ticket_keys = [this, &rotate_ticket_keys] {
    if (ticket_keys_->rotate()) SPAWND_LOG_DEBUG("TLS: new session ticket key");
    loop_.add_timer(config_.tls_ticket_key_rotation_ms, rotate_ticket_keys);
  };
  if (ticket_keys_) loop_.add_timer(config_.tls_ticket_key_rotation_ms, rotate_ticket_keys);
  loop_.run();
  access_log_.flush();
  SPAWND_LOG_INFO("stopped");
}

void Server::pause_accept(std::int64_t ms) {
  if (is_accept_paused_) return;
  if (tls_listener_.watch) (void)tls_listener_.watch.modify(0);  // best effort: the same EMFILE would follow
  if (!listener_.watch.modify(0)) {
    // Still watched: the next accept() fails the same way and brings us back here.
    SPAWND_LOG_ERROR("epoll_ctl(listener): %s: cannot pause accept", std::strerror(errno));
    return;
  }
  is_accept_paused_ = true;
  loop_.add_timer(ms, [this, ms] { resume_accept(ms); });
}

void Server::resume_accept(std::int64_t retry_ms) {
  is_accept_paused_ = false;
  if (is_shutting_down_) return;  // the listener is closed
  if (tls_listener_.watch && !tls_listener_.watch.modify(EPOLLIN))
    SPAWND_LOG_ERROR("epoll_ctl(tls listener): %s", std::strerror(errno));
  if (listener_.watch.modify(EPOLLIN)) return;
  // Left paused, spawnd would never accept again: try again later rather than go deaf.
  SPAWND_LOG_ERROR("epoll_ctl(listener): %s: accept stays paused for %lld ms more", std::strerror(errno),
                   static_cast<long long>(retry_ms));
  is_accept_paused_ = true;
  loop_.add_timer(retry_ms, [this, retry_ms] { resume_accept(retry_ms); });
}

void Server::on_accept(EventLoop::WatchedFd& listener, const std::shared_ptr<const TlsContexts>& tls) {
  // Accept a bounded batch per wakeup so that a connection storm cannot starve established connections.
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    int fd = ::accept4(listener.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: the pending connection stays in the backlog. Stop accepting for a moment instead of
        // spinning on a listener that stays readable.
        SPAWND_LOG_WARN("accept: %s; pausing accept for 100 ms", std::strerror(errno));
        pause_accept(100);
        return;
      }
      SPAWND_LOG_ERROR("accept: %s", std::strerror(errno));
      return;
    }
    Fd socket(fd);
    if (connections_.size() >= config().max_connections) {
      // Over --max-connections: a short 503 on the fresh socket (its send buffer is empty, so this cannot block);
      // a TLS client would read it as garbage, so it only sees the close.
      static constexpr char kBusy[] =
          "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n"
          "Content-Length: 20\r\nConnection: close\r\n\r\nToo many connections";
      if (!tls) {
        [[maybe_unused]] ssize_t n = ::send(socket.get(), kBusy, sizeof kBusy - 1, MSG_NOSIGNAL);
      }
      ++metrics_.rejected_connections;
      continue;
    }
    int one = 1;
    ::setsockopt(socket.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::uint64_t id = ++connection_count_;
    auto conn = std::make_unique<Connection>(*this, std::move(socket), id, peer, tls);
    if (!conn->start()) {
      SPAWND_LOG_ERROR("epoll_ctl(connection): %s", std::strerror(errno));
      continue;
    }
    connections_.emplace(id, std::move(conn));
  }
}

void Server::on_signal() {
  signalfd_siginfo info{};
  while (sys::read(signal_fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) {
      if (is_shutting_down_) {
        SPAWND_LOG_INFO("second signal: stopping now");
        loop_.stop();
        return;
      }
      begin_shutdown();
    } else if (info.ssi_signo == SIGHUP) {
      on_hangup();
    }
  }
}

bool Server::open_error_log(const std::string& path) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd) return false;
  error_log_ = std::move(fd);
  return true;
}

void Server::redirect_stderr() noexcept {
  // dup2 leaves fd 2 without close-on-exec: programs that inherit spawnd's stderr write into the file too.
  if (error_log_ && ::dup2(error_log_.get(), STDERR_FILENO) < 0)
    SPAWND_LOG_ERROR("--error-log: dup2: %s", std::strerror(errno));
}

void Server::on_hangup() {
  // The logs first (logrotate renamed them and sends SIGHUP from postrotate): what the reload logs lands in the new
  // error log.
  const std::string error_log = config().error_log;
  if (!error_log.empty()) {
    if (open_error_log(error_log)) {
      redirect_stderr();
    } else {
      SPAWND_LOG_ERROR("SIGHUP: --error-log %s: %s: still writing to the old file", error_log.c_str(),
                       std::strerror(errno));
    }
  }
  const std::string access_log = config().access_log;
  access_log_.reopen(access_log);
  if (!load_config_) {
    SPAWND_LOG_INFO("SIGHUP: logs reopened (no --config to reload)");
    return;
  }
  if (is_shutting_down_) {
    SPAWND_LOG_INFO("SIGHUP: logs reopened; no reload while shutting down");
    return;
  }
  reload();
}

void Server::reload() {
  const std::uint64_t running = sites_->generation();
  const std::string error_log = config().error_log;
  const std::string access_log = config().access_log;
  systemd::notify_reloading();
  try {
    Config fresh = load_config_();
    keep_restart_only(fresh);
    Sites::check(fresh);
    check_tls(fresh);
    check_redirect_https(fresh, static_cast<bool>(tls_listener_));
    // New certificates (re-read from their files: a renewal) for new connections; established ones keep theirs.
    // The ticket keys stay: sessions made before the reload still resume.
    auto tls = tls_listener_ ? std::make_shared<const TlsContexts>(fresh, ticket_keys_) : nullptr;
    auto next = std::make_shared<Sites>(loop_, children_, db_keepers_, std::move(fresh), running + 1);
    retired_sites_.push_back(std::move(sites_));
    sites_ = std::move(next);
    schedule_drop_retired_sites();
    if (tls) tls_ = std::move(tls);
  } catch (const std::exception& e) {
    SPAWND_LOG_ERROR("reload: %s; still serving configuration %llu", e.what(), static_cast<unsigned long long>(running));
    systemd::notify_reloaded(std::string("reload failed: ") + e.what());
    return;
  }
  access_log_.set_virtual_hosts(sites_->has_virtual_hosts());
  // The log files may have moved with the configuration.
  if (config().error_log != error_log && !config().error_log.empty()) {
    if (open_error_log(config().error_log)) {
      redirect_stderr();
    } else {
      SPAWND_LOG_ERROR("reload: --error-log %s: %s", config().error_log.c_str(), std::strerror(errno));
    }
  }
  if (config().access_log != access_log) access_log_.reopen(config().access_log);
  SPAWND_LOG_INFO("reload: configuration %llu from %s: %zu site(s); configuration %llu serves its %zu "
                  "connection(s) in flight and then retires",
                  static_cast<unsigned long long>(sites_->generation()), config().config_file.c_str(),
                  sites_->size(), static_cast<unsigned long long>(running), connections_.size());
  systemd::notify_reloaded("reloaded: configuration " + std::to_string(sites_->generation()));
}

void Server::keep_restart_only(Config& fresh) const {
  std::string ignored;
  auto keep = [&ignored](auto& value, const auto& running, const char* key) {
    if (value == running) return;
    value = running;
    ignored += ignored.empty() ? key : std::string(", ") + key;
  };
  keep(fresh.listen, config_.listen, "listen");
  keep(fresh.tls_listen, config_.tls_listen, "tls-listen");
  keep(fresh.tls_ticket_key_rotation_ms, config_.tls_ticket_key_rotation_ms, "tls-ticket-key-rotation");
  keep(fresh.body_memory_limit, config_.body_memory_limit, "body-memory-limit");
  keep(fresh.max_buffered_body_bytes, config_.max_buffered_body_bytes, "max-buffered-body-bytes");
  keep(fresh.max_response_temp_bytes, config_.max_response_temp_bytes, "max-response-temp-bytes");
  keep(fresh.body_temp_dir, body_temp_dir_given_, "body-temp-dir");
  fresh.body_temp_dir = config_.body_temp_dir;  // with its default filled in
  keep(fresh.kill_grace_ms, config_.kill_grace_ms, "kill-grace");
  keep(fresh.is_quiet, config_.is_quiet, "quiet");
  keep(fresh.user, config_.user, "user");  // privileges are dropped for good at start-up
  keep(fresh.group, config_.group, "group");
  if (!ignored.empty()) SPAWND_LOG_WARN("reload: %s changed: ignored until restart", ignored.c_str());
}

void Server::schedule_drop_retired_sites() {
  if (retired_sites_timer_ != 0) return;
  retired_sites_timer_ = loop_.add_timer(kRetiredSitesCheckMs, [this] {
    retired_sites_timer_ = 0;
    drop_retired_sites();
    if (!retired_sites_.empty()) schedule_drop_retired_sites();
  });
}

void Server::drop_retired_sites() {
  // Only this list holds them: no request runs on them any more, and what their exchanges deferred has run (a
  // request lets go of its sites after its exchanges are destroyed, and this runs from a timer). Their gateways
  // stop their handler processes (the ChildTable reaps them) and their keepers close.
  // One at a time, not std::erase_if: keep_retired_counters() looks at every other configuration in the list, which
  // must be whole while it does.
  for (auto it = retired_sites_.begin(); it != retired_sites_.end();) {
    if (it->use_count() > 1) {
      ++it;
      continue;
    }
    keep_retired_counters(**it);
    SPAWND_LOG_INFO("configuration %llu retired", static_cast<unsigned long long>((*it)->generation()));
    it = retired_sites_.erase(it);
  }
}

void Server::begin_shutdown() {
  is_shutting_down_ = true;
  systemd::notify_stopping();
  SPAWND_LOG_INFO("shutting down: finishing %zu connection(s), at most %lld ms", connections_.size(),
                  static_cast<long long>(config().shutdown_grace_ms));
  listener_.close();
  tls_listener_.close();
  // Copy the ids: on_shutdown() may close (and release) connections.
  std::vector<Connection*> all;
  for (auto& [id, conn] : connections_) all.push_back(conn.get());
  for (Connection* c : all) c->on_shutdown();
  if (connections_.empty()) loop_.stop();
  loop_.add_timer(config().shutdown_grace_ms, [this] {
    SPAWND_LOG_WARN("grace period over: closing %zu connection(s)", connections_.size());
    loop_.stop();
  });
}

}  // namespace spawnd::server
