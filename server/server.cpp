#include "server/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>

#include "common/error.h"
#include "common/log.h"
#include "common/net_addr.h"
#include "common/result.h"
#include "common/sys.h"
#include "server/gateway/cgi_gateway.h"
#include "server/gateway/fastcgi_gateway.h"
#include "server/gateway/inproc_gateway.h"
#include "server/connection.h"
#include "server/db_keeper.h"
#include "server/http_date.h"

namespace spawnd::server {

namespace {

// The listening socket for --listen HOST:PORT or [IPV6]:PORT (an empty HOST: every local address; port 0: the kernel
// picks), on the first address HOST resolves to that binds. `bound` gets what it is bound to, for the start-up line.
// Throws spawnd::Error naming `addr` if it is malformed, does not resolve, or binds nowhere.
Fd open_listener(const std::string& addr, int backlog, std::string& bound) {
  Result<net::HostPort> hp = net::split_host_port(addr);
  if (!hp) throw Error("--listen " + addr + ": " + hp.error().message());
  Result<std::vector<net::SockAddr>> candidates = net::resolve(*hp, net::Use::Listen);
  if (!candidates) throw Error("--listen " + addr + ": " + candidates.error().message());
  std::error_code last_error;
  for (const net::SockAddr& candidate : *candidates) {
    Result<Fd> fd = net::listen_on(candidate, {.backlog = backlog, .is_nonblocking = true});
    if (!fd) {
      last_error = fd.error();
      continue;
    }
    Result<net::SockAddr> local = net::local_address(fd->get());
    bound = local ? net::to_string(*local) : addr;
    return std::move(*fd);
  }
  throw Error(last_error ? last_error.value() : EADDRNOTAVAIL, "--listen " + addr);
}

}  // namespace

Server::Server(Config config)
    : config_(std::move(config)),
      static_files_(config_.root, config_.follow_symlinks, config_.index_names),
      site_metrics_(&metrics_.add_site("default")),
      status_allow_(config_.status_allow),
      access_log_(config_.access_log, !config_.is_quiet),
      body_budget_(config_.body_memory_limit, config_.max_buffered_body_bytes),
      children_(loop_, config_.kill_grace_ms) {
  if (config_.body_temp_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    config_.body_temp_dir = tmp && *tmp ? tmp : "/tmp";
  }
  // Request bodies past --body-buffer-bytes go to unlinked files there: find out now, not at the first large POST.
  if (!open_unlinked_temp_file(config_.body_temp_dir))
    throw ConfigError("--body-temp-dir " + config_.body_temp_dir + ": cannot create a temporary file there: " +
                      std::strerror(errno));
  static_files_.set_precompressed(parse_content_codings(config_.precompressed));
  if (!config_.error_pages.empty()) {
    error_pages_ = ErrorPages::load(config_.error_pages);
    SPAWND_LOG_INFO("error pages: %zu from %s", error_pages_.size(), config_.error_pages.c_str());
  }
  listener_.fd = open_listener(config_.listen, config_.backlog, bound_address_);

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

  // Before any gateway exists: the database file is created, in WAL mode, before the first handler runs.
  if (!config_.db_path.empty()) {
    db_keeper_ = std::make_unique<DbKeeper>(DbKeeperConfig{
        .path = config_.db_path,
        .pragmas = config_.pragmas,
        .checkpoint_interval = std::chrono::milliseconds(config_.checkpoint_interval_ms),
        .policy = {.wal_max_bytes = config_.wal_max_bytes},
    });
  }
  router_.set_static_files(&static_files_);
  for (const std::string& prefix : config_.deny) router_.deny(prefix);
  // First match wins: the external FastCGI applications' prefixes before the cgi-bin mount.
  fastcgi_apps_ = std::make_unique<FastCgiApps>(loop_);
  for (const std::string& spec : config_.fastcgi_pass) mount_fastcgi_pass(parse_fastcgi_pass(spec));
  // --cgi-ext: programs anywhere under the root run as CGI by their extension (Apache's AddHandler cgi-script),
  // always as plain CGI, whatever --mode says.
  for (const std::string& extension : config_.cgi_extensions) {
    CgiConfig cgi = cgi_config("*" + extension, std::string());
    cgi.directory = cgi.document_root;
    SPAWND_LOG_INFO("cgi: *%s under %s", extension.c_str(), cgi.directory.c_str());
    std::string prefix = cgi.prefix;
    mount(std::move(prefix), std::make_unique<CgiGateway>(loop_, children_, std::move(cgi)));
  }
  if (!config_.cgi_bin.empty()) mount(config_.cgi_prefix, make_cgi_gateway());
}

MountConfig Server::mount_config(std::string prefix) const {
  MountConfig mount;
  mount.prefix = std::move(prefix);
  char* root = ::realpath(config_.root.c_str(), nullptr);
  mount.document_root = root ? root : config_.root;
  std::free(root);
  mount.pass_authorization = config_.pass_authorization;
  mount.timeout_ms = config_.cgi_timeout_ms;
  mount.kill_grace_ms = config_.kill_grace_ms;
  mount.max_queue = config_.max_queue;
  return mount;
}

CgiConfig Server::cgi_config(std::string prefix, std::string directory) const {
  CgiConfig cgi;
  static_cast<MountConfig&>(cgi) = mount_config(std::move(prefix));
  cgi.directory = std::move(directory);
  // A clean environment (RFC 3875 §4.1 plus what the operator names): PATH, so that "#!/usr/bin/env perl" works.
  const char* path = std::getenv("PATH");
  cgi.base_env.push_back(std::string("PATH=") + (path ? path : "/usr/local/bin:/usr/bin:/bin"));
  for (const auto& name : config_.pass_env) {
    if (const char* v = std::getenv(name.c_str())) cgi.base_env.push_back(name + "=" + v);
  }
  if (!config_.db_path.empty()) cgi.base_env.push_back("SPAWND_DB=" + config_.db_path);
  if (!config_.pragmas.empty()) cgi.base_env.push_back("SPAWND_PRAGMAS=" + config_.pragmas);
  // The handlers' commits keep the WAL under the same bound as the keeper (db::Connection::set_wal_max_bytes).
  if (!config_.db_path.empty()) cgi.base_env.push_back("SPAWND_WAL_MAX_BYTES=" + std::to_string(config_.wal_max_bytes));
  cgi.max_children = config_.max_children;
  cgi.argv_from_query = config_.cgi_argv;
  cgi.spawn_method = config_.spawn_method;
  cgi.spawn_threads = static_cast<std::size_t>(config_.spawn_threads);
  return cgi;
}

std::unique_ptr<Gateway> Server::make_cgi_gateway() {
  CgiConfig cgi = cgi_config(config_.cgi_prefix, config_.cgi_bin);
  if (config_.mode == Mode::Fork) cgi.fork_servers = config_.fork_servers;
  if (config_.mode == Mode::InProc) {
    // The handlers' shared objects run in-process; every other program of the directory still runs as CGI.
    InProcConfig inproc;
    inproc.cgi = cgi;
    inproc.workers = config_.workers;
    auto gateway = std::make_unique<InProcGateway>(loop_, std::move(inproc),
                                                   std::make_unique<CgiGateway>(loop_, children_, std::move(cgi)));
    SPAWND_LOG_INFO("inproc: %s mounted at %s (%zu handler shared objects, %zu worker threads, %zu queued; other "
                    "programs as cgi)",
                    config_.cgi_bin.c_str(), config_.cgi_prefix.c_str(), gateway->handler_count(), config_.workers,
                    config_.max_queue);
    return gateway;
  }
  SPAWND_LOG_INFO("%s: %s mounted at %s (%zu children at most, %zu queued)", mode_name(config_.mode),
                  cgi.directory.c_str(), cgi.prefix.c_str(), cgi.max_children, cgi.max_queue);
  if (config_.mode != Mode::FastCgi) return std::make_unique<CgiGateway>(loop_, children_, std::move(cgi));

  // --mode fastcgi: SDK handlers as persistent workers; every other program still runs as CGI.
  FastCgiConfig fcgi;
  static_cast<MountConfig&>(fcgi) = cgi;
  fcgi.workers = config_.workers;
  fcgi.max_requests = config_.max_requests;
  return std::make_unique<FastCgiGateway>(loop_, children_, std::move(fcgi),
                                          std::make_unique<CgiGateway>(loop_, children_, std::move(cgi)));
}

void Server::mount_fastcgi_pass(const FastCgiPass& pass) {
  FastCgiConfig fcgi;
  static_cast<MountConfig&>(fcgi) = mount_config(pass.prefix);
  // Without DIR, scripts are resolved under --root: "/php/" → <root>/php/NAME, "/app.php" → <root>/app.php,
  // "*.php" → <root>/PATH.
  if (!pass.directory.empty()) {
    fcgi.directory = pass.directory;
  } else if (pass.prefix.starts_with("*.")) {
    fcgi.directory = fcgi.document_root;
  } else {
    const std::string_view prefix = pass.prefix;
    fcgi.directory = fcgi.document_root + std::string(prefix.substr(0, prefix.rfind('/')));
  }
  fcgi.max_connections = config_.max_children;
  fcgi.keep_conn = config_.fastcgi_keep_conn;
  fcgi.idle_timeout_ms = config_.fastcgi_idle_timeout_ms;
  SPAWND_LOG_INFO("fastcgi: %s → %s (scripts in %s)", pass.prefix.c_str(), pass.address.c_str(),
                  fcgi.directory.c_str());
  const FastCgiAddress address = parse_fastcgi_address(pass.address);
  mount(pass.prefix, std::make_unique<FastCgiGateway>(loop_, std::move(fcgi), *fastcgi_apps_, address));
}

Server::~Server() {
  // Connections reference the loop and the gateways: drop them first.
  connections_.clear();
  loop_.run_deferred();  // cancelled exchanges still reference their gateways
  router_.unmount_all();
  access_log_.flush();
}

void Server::mount(std::string prefix, std::unique_ptr<Gateway> gateway) {
  router_.mount(std::move(prefix), std::move(gateway));
}

const std::string& Server::http_date() {
  std::time_t now = std::time(nullptr);
  if (now != date_second_) {
    date_second_ = now;
    date_ = format_http_date(now);
  }
  return date_;
}

std::string Server::status_text() const {
  StatusFigures figures;
  figures.connections_open = connections_.size();
  figures.connections_total = connection_count_;
  StatusFigures::Site& site = figures.sites.emplace_back();
  site.name = site_metrics_->name();
  const LoadReport add = [&site](ServedBy mode, const GatewayLoad& load) {
    std::optional<GatewayLoad>& sum = site.load[static_cast<std::size_t>(mode)];
    if (!sum) sum.emplace();
    sum->running += load.running;
    sum->queued += load.queued;
    sum->queue_full += load.queue_full;
    sum->queue_timeout += load.queue_timeout;
    sum->spawn_failures += load.spawn_failures;
  };
  router_.report_load(add);
  fastcgi_apps_->report_load(add);
  if (db_keeper_) {
    site.db = db_keeper_->stats();
    site.wal_max_bytes = db_keeper_->wal_max_bytes();
  }
  return render_status(metrics_, figures);
}

void Server::release(Connection& connection) {
  std::uint64_t id = connection.id();
  loop_.defer([this, id] {
    connections_.erase(id);
    if (is_shutting_down_ && connections_.empty()) loop_.stop();
  });
}

void Server::run() {
  listener_.watch = loop_.watch(listener_.get(), EPOLLIN, [this](std::uint32_t) { on_accept(); });
  if (!listener_.watch)
    throw Error(errno, "epoll_ctl(listener)");
  signal_fd_.watch = loop_.watch(signal_fd_.get(), EPOLLIN, [this](std::uint32_t) { on_signal(); });
  if (!signal_fd_.watch)
    throw Error(errno, "epoll_ctl(signalfd)");
  // Printed even with --quiet: tests and scripts read the port from this line when they asked for port 0.
  std::fprintf(stderr, "spawnd: info: listening on http://%s\n", bound_address_.c_str());
  // The access log is written once per loop turn rather than once per request.
  std::function<void()> flush_log = [this, &flush_log] {
    access_log_.flush();
    loop_.add_timer(200, flush_log);
  };
  loop_.add_timer(200, flush_log);
  loop_.run();
  access_log_.flush();
  SPAWND_LOG_INFO("stopped");
}

void Server::pause_accept(std::int64_t ms) {
  if (is_accept_paused_) return;
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
  if (listener_.watch.modify(EPOLLIN)) return;
  // Left paused, spawnd would never accept again: try again later rather than go deaf.
  SPAWND_LOG_ERROR("epoll_ctl(listener): %s: accept stays paused for %lld ms more", std::strerror(errno),
                   static_cast<long long>(retry_ms));
  is_accept_paused_ = true;
  loop_.add_timer(retry_ms, [this, retry_ms] { resume_accept(retry_ms); });
}

void Server::on_accept() {
  // Accept a bounded batch per wakeup so that a connection storm cannot starve established connections.
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    int fd = ::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
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
    if (connections_.size() >= config_.max_connections) {
      // Over --max-connections: a short 503 on the fresh socket (its send buffer is empty, so this cannot block).
      static constexpr char kBusy[] =
          "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n"
          "Content-Length: 20\r\nConnection: close\r\n\r\nToo many connections";
      [[maybe_unused]] ssize_t n = ::send(socket.get(), kBusy, sizeof kBusy - 1, MSG_NOSIGNAL);
      ++metrics_.rejected_connections;
      continue;
    }
    int one = 1;
    ::setsockopt(socket.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::uint64_t id = ++connection_count_;
    auto conn = std::make_unique<Connection>(*this, std::move(socket), id, peer);
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
      SPAWND_LOG_INFO("SIGHUP: reopening nothing (no configuration files to reload)");
    }
  }
}

void Server::begin_shutdown() {
  is_shutting_down_ = true;
  SPAWND_LOG_INFO("shutting down: finishing %zu connection(s), at most %lld ms", connections_.size(),
                  static_cast<long long>(config_.shutdown_grace_ms));
  listener_.close();
  // Copy the ids: on_shutdown() may close (and release) connections.
  std::vector<Connection*> all;
  for (auto& [id, conn] : connections_) all.push_back(conn.get());
  for (Connection* c : all) c->on_shutdown();
  if (connections_.empty()) loop_.stop();
  loop_.add_timer(config_.shutdown_grace_ms, [this] {
    SPAWND_LOG_WARN("grace period over: closing %zu connection(s)", connections_.size());
    loop_.stop();
  });
}

}  // namespace spawnd::server
