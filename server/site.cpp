#include "server/site.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <utility>

#include "common/error.h"
#include "common/log.h"
#include "common/net_addr.h"
#include "pragmas/presets.h"
#include "server/content_coding.h"
#include "server/db_keeper.h"
#include "server/gateway/fastcgi_gateway.h"
#include "server/gateway/inproc_gateway.h"

namespace spawnd::server {

// ---- Site ----

Site::Site(EventLoop& loop, ChildTable& children, FastCgiApps& apps, DbKeepers& keepers, Config settings,
           std::string name)
    : loop_(loop),
      children_(children),
      fastcgi_apps_(apps),
      settings_(std::move(settings)),
      name_(std::move(name)),
      static_files_(settings_.root, settings_.follow_symlinks, settings_.index_names, settings_.static_cache) {
  static_files_.set_precompressed(parse_content_codings(settings_.precompressed));
  if (!settings_.error_pages.empty()) {
    error_pages_ = ErrorPages::load(settings_.error_pages);
    SPAWND_LOG_INFO("error pages: %zu from %s", error_pages_.size(), settings_.error_pages.c_str());
  }
  // Before any gateway exists: the database file is created, in WAL mode, before the first handler runs.
  if (!settings_.db_path.empty()) {
    db_keeper_ = keepers.get(DbKeeperConfig{
        .path = settings_.db_path,
        .pragmas = settings_.pragmas,
        .checkpoint_interval = std::chrono::milliseconds(settings_.checkpoint_interval_ms),
        .policy = {.wal_max_bytes = settings_.wal_max_bytes},
    });
  }
  router_.set_static_files(&static_files_);
  for (const std::string& prefix : settings_.deny) router_.deny(prefix);
  // First match wins: the external FastCGI applications' prefixes before the cgi-bin mount.
  for (const std::string& spec : settings_.fastcgi_pass) mount_fastcgi_pass(parse_fastcgi_pass(spec));
  // --cgi-ext: programs anywhere under the root run as CGI by their extension (Apache's AddHandler cgi-script),
  // always as plain CGI, whatever --mode says.
  for (const std::string& extension : settings_.cgi_extensions) {
    CgiConfig cgi = cgi_config("*" + extension, std::string());
    cgi.directory = cgi.document_root;
    SPAWND_LOG_INFO("cgi: *%s under %s", extension.c_str(), cgi.directory.c_str());
    std::string prefix = cgi.prefix;
    router_.mount(std::move(prefix), std::make_unique<CgiGateway>(loop_, children_, std::move(cgi)));
  }
  if (!settings_.cgi_bin.empty()) router_.mount(settings_.cgi_prefix, make_cgi_gateway());
}

// The gateways go first (router_ is the last member), then the static files, then the keeper.
Site::~Site() = default;

void Site::note_gateway_request() const noexcept {
  if (db_keeper_) db_keeper_->note_request();
}

void Site::check(const Config& settings, std::string_view name) {
  const std::string site = name == "-" ? std::string() : " (site " + std::string(name) + ")";
  try {
    StaticFiles root(settings.root, settings.follow_symlinks, settings.index_names);
  } catch (const Error& e) {
    throw ConfigError(std::string("root") + site + ": " + e.what());
  }
  std::error_code ec;
  if (!settings.cgi_bin.empty() && !std::filesystem::is_directory(settings.cgi_bin, ec))
    throw ConfigError("cgi-bin" + site + ": " + settings.cgi_bin + ": not a directory");
  for (const std::string& spec : settings.fastcgi_pass) {
    try {
      const FastCgiPass pass = parse_fastcgi_pass(spec);
      (void)parse_fastcgi_address(pass.address);
    } catch (const Error& e) {
      throw ConfigError("fastcgi-pass" + site + ": " + e.what());
    }
  }
  if (!settings.db_path.empty()) {
    const std::filesystem::path dir = std::filesystem::path(settings.db_path).parent_path();
    if (!std::filesystem::is_directory(dir, ec))
      throw ConfigError("db" + site + ": " + settings.db_path + ": its directory does not exist");
    try {
      (void)pragmas::find_preset(settings.pragmas);
    } catch (const Error& e) {
      throw ConfigError("pragmas" + site + ": " + e.what());
    }
  }
}

MountConfig Site::mount_config(std::string prefix) const {
  MountConfig mount;
  mount.prefix = std::move(prefix);
  char* root = ::realpath(settings_.root.c_str(), nullptr);
  mount.document_root = root ? root : settings_.root;
  std::free(root);
  mount.pass_authorization = settings_.pass_authorization;
  mount.timeout_ms = settings_.cgi_timeout_ms;
  mount.kill_grace_ms = settings_.kill_grace_ms;
  mount.max_queue = settings_.max_queue;
  return mount;
}

CgiConfig Site::cgi_config(std::string prefix, std::string directory) const {
  CgiConfig cgi;
  static_cast<MountConfig&>(cgi) = mount_config(std::move(prefix));
  cgi.directory = std::move(directory);
  // A clean environment (RFC 3875 §4.1 plus what the operator names): PATH, so that "#!/usr/bin/env perl" works.
  const char* path = std::getenv("PATH");
  cgi.base_env.push_back(std::string("PATH=") + (path ? path : "/usr/local/bin:/usr/bin:/bin"));
  for (const auto& env_name : settings_.pass_env) {
    if (const char* v = std::getenv(env_name.c_str())) cgi.base_env.push_back(env_name + "=" + v);
  }
  if (!settings_.db_path.empty()) cgi.base_env.push_back("SPAWND_DB=" + settings_.db_path);
  if (!settings_.pragmas.empty()) cgi.base_env.push_back("SPAWND_PRAGMAS=" + settings_.pragmas);
  // The handlers' commits keep the WAL under the same bound as the keeper (db::Connection::set_wal_max_bytes).
  if (!settings_.db_path.empty())
    cgi.base_env.push_back("SPAWND_WAL_MAX_BYTES=" + std::to_string(settings_.wal_max_bytes));
  cgi.max_children = settings_.max_children;
  cgi.argv_from_query = settings_.cgi_argv;
  cgi.spawn_method = settings_.spawn_method;
  cgi.spawn_threads = static_cast<std::size_t>(settings_.spawn_threads);
  return cgi;
}

std::unique_ptr<Gateway> Site::make_cgi_gateway() {
  CgiConfig cgi = cgi_config(settings_.cgi_prefix, settings_.cgi_bin);
  if (settings_.mode == Mode::Fork) {
    cgi.fork_servers = settings_.fork_servers;
    cgi.prefork = settings_.prefork;
  }
  if (settings_.mode == Mode::InProc) {
    // The handlers' shared objects run in-process; every other program of the directory still runs as CGI.
    InProcConfig inproc;
    inproc.cgi = cgi;
    inproc.workers = settings_.workers;
    auto gateway = std::make_unique<InProcGateway>(loop_, std::move(inproc),
                                                   std::make_unique<CgiGateway>(loop_, children_, std::move(cgi)));
    SPAWND_LOG_INFO("inproc: %s mounted at %s (%zu handler shared objects, %zu worker threads, %zu queued; other "
                    "programs as cgi)",
                    settings_.cgi_bin.c_str(), settings_.cgi_prefix.c_str(), gateway->handler_count(),
                    settings_.workers, settings_.max_queue);
    return gateway;
  }
  SPAWND_LOG_INFO("%s: %s mounted at %s (%zu children at most, %zu queued)", mode_name(settings_.mode),
                  cgi.directory.c_str(), cgi.prefix.c_str(), cgi.max_children, cgi.max_queue);
  if (settings_.mode != Mode::FastCgi) return std::make_unique<CgiGateway>(loop_, children_, std::move(cgi));

  // --mode fastcgi: SDK handlers as persistent workers; every other program still runs as CGI.
  FastCgiConfig fcgi;
  static_cast<MountConfig&>(fcgi) = cgi;
  fcgi.workers = settings_.workers;
  fcgi.max_requests = settings_.max_requests;
  return std::make_unique<FastCgiGateway>(loop_, children_, std::move(fcgi),
                                          std::make_unique<CgiGateway>(loop_, children_, std::move(cgi)));
}

void Site::mount_fastcgi_pass(const FastCgiPass& pass) {
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
  fcgi.max_connections = settings_.max_children;
  fcgi.keep_conn = settings_.fastcgi_keep_conn;
  fcgi.idle_timeout_ms = settings_.fastcgi_idle_timeout_ms;
  SPAWND_LOG_INFO("fastcgi: %s → %s (scripts in %s)", pass.prefix.c_str(), pass.address.c_str(),
                  fcgi.directory.c_str());
  const FastCgiAddress address = parse_fastcgi_address(pass.address);
  router_.mount(pass.prefix, std::make_unique<FastCgiGateway>(loop_, std::move(fcgi), fastcgi_apps_, address));
}

// ---- Sites ----

Sites::Sites(EventLoop& loop, ChildTable& children, DbKeepers& keepers, Config config, std::uint64_t generation)
    : config_(std::move(config)), generation_(generation), fastcgi_apps_(std::make_unique<FastCgiApps>(loop)) {
  sites_.push_back(std::make_unique<Site>(loop, children, *fastcgi_apps_, keepers, config_, "-"));
  for (const SiteConfig& site : config_.sites) {
    SPAWND_LOG_INFO("site %s: root %s%s%s", site.hosts.front().c_str(), site.settings.root.c_str(),
                    site.settings.cgi_bin.empty() ? "" : ", cgi-bin ", site.settings.cgi_bin.c_str());
    sites_.push_back(std::make_unique<Site>(loop, children, *fastcgi_apps_, keepers, site.settings, site.hosts.front()));
    for (const std::string& host : site.hosts) by_host_.emplace(host, sites_.back().get());
  }
}

// The sites (their gateways) go before the FastCGI pools they use.
Sites::~Sites() { sites_.clear(); }

void Sites::check(const Config& config) {
  Site::check(config, "-");
  for (const SiteConfig& site : config.sites) Site::check(site.settings, site.hosts.front());
}

Site& Sites::select(const Request& request) const {
  if (!by_host_.empty()) {
    if (auto it = by_host_.find(request_host(request)); it != by_host_.end()) return *it->second;
  }
  return *sites_.front();
}

std::string request_host(const Request& request) {
  // An absolute-form request-target's authority is in the Host field by now (http_parser.cpp, RFC 9112 §3.2.2).
  return net::host_name_key(net::host_without_port(request.field("Host").value_or(std::string_view())));
}

}  // namespace spawnd::server
