// server/site.h — the sites of one configuration: each a document root with its static files, its mounts (gateways
// and their handler processes) and its database keeper; and the choice of a request's site by its host.
//
// A Site is what one [[site]] table of the configuration file (or the top level: the default site) builds. Sites
// holds every Site of one configuration generation, built together from one Config and torn down together: the
// Server keeps the current generation, and each request holds the generation it started on by shared_ptr (in the
// Connection), so that after a reload (SIGHUP) new requests use the new sites while in-flight ones finish on the
// old, whose gateways, handler processes and keepers go when its last request has ended (Server::run's retirement
// check). Loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/config.h"
#include "server/error_pages.h"
#include "server/event_loop.h"
#include "server/gateway/cgi_gateway.h"
#include "server/gateway/gateway.h"
#include "server/gateway/mount_config.h"
#include "server/gateway/process.h"
#include "server/http_request.h"
#include "server/router.h"
#include "server/static_files.h"

namespace spawnd::server {

class DbKeeper;
class DbKeepers;
class FastCgiApps;
struct FastCgiPass;

class Site {
 public:
  // Opens the root, the database (its DbKeeper from `keepers`: the one already open for the same file and settings,
  // or a new one, which creates it in WAL mode before any handler runs) and starts the gateways of
  // `settings` (--fastcgi-pass, --cgi-ext, --cgi-bin with its fork servers or FastCGI workers). `name` is the site's
  // first host name, or "-" for the default site. Throws spawnd::Error (ConfigError for what the configuration got
  // wrong: an address that does not resolve, a handler .so that does not load).
  Site(EventLoop& loop, ChildTable& children, FastCgiApps& apps, DbKeepers& keepers, Config settings,
       std::string name);
  ~Site();
  Site(const Site&) = delete;
  Site& operator=(const Site&) = delete;

  // Checks `settings` as the constructor would, starting nothing and creating no file: the root is a readable
  // directory, --cgi-bin a directory, every --fastcgi-pass well-formed with an address that resolves, the --db
  // file's directory exists, the --pragmas preset exists. Throws spawnd::ConfigError naming the key and the site.
  static void check(const Config& settings, std::string_view name);

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const Config& settings() const noexcept { return settings_; }
  [[nodiscard]] const StaticFiles& static_files() const noexcept { return static_files_; }
  // --error-pages: the pages of the error responses spawnd makes for this site (error_pages.h).
  [[nodiscard]] const ErrorPages& error_pages() const noexcept { return error_pages_; }
  // With --db: the keeper's figures (status page). Null without a database.
  [[nodiscard]] const DbKeeper* db_keeper() const noexcept { return db_keeper_.get(); }
  // A request of this site is being handed to a gateway: its handler may write the database, so an idle keeper
  // polls fast again (DbKeeper::note_request). Nothing without --db.
  void note_gateway_request() const noexcept;
  // Who answers a request path: a mounted gateway or the static files; and where a local redirect goes.
  [[nodiscard]] const Router& router() const noexcept { return router_; }

 private:
  // The settings every mount shares: document root, limits, timeouts (no directory and no base_env: those are the
  // mount's own).
  [[nodiscard]] MountConfig mount_config(std::string prefix) const;
  // A CGI mount's settings: the mount's, the clean environment (PATH, --pass-env, SPAWND_DB, SPAWND_PRAGMAS) and
  // the spawn limits (no fork servers).
  [[nodiscard]] CgiConfig cgi_config(std::string prefix, std::string directory) const;
  // The --cgi-bin mount: the gateway --mode names (fastcgi and inproc with a CGI gateway for other programs).
  std::unique_ptr<Gateway> make_cgi_gateway();
  // Mounts a --fastcgi-pass application at its prefix. Throws spawnd::ConfigError if its address does not resolve.
  void mount_fastcgi_pass(const FastCgiPass& pass);

  EventLoop& loop_;
  ChildTable& children_;
  FastCgiApps& fastcgi_apps_;
  Config settings_;
  std::string name_;
  std::shared_ptr<DbKeeper> db_keeper_;  // with --db: holds a connection and checkpoints; outlives the gateways
  StaticFiles static_files_;
  ErrorPages error_pages_;
  Router router_;  // owns the gateways: destroyed first
};

class Sites {
 public:
  // Builds the default site from `config` and one Site per config.sites entry, their keepers from `keepers` (a
  // process-wide DbKeepers: a reload shares the keepers of the configuration it replaces). `generation` numbers the
  // configurations of the process (1 at start-up, then one more per successful reload), for log lines. Throws as
  // Site's constructor.
  Sites(EventLoop& loop, ChildTable& children, DbKeepers& keepers, Config config, std::uint64_t generation);
  ~Sites();
  Sites(const Sites&) = delete;
  Sites& operator=(const Sites&) = delete;

  // Checks the whole configuration as building it would (Site::check for each site). Throws spawnd::ConfigError.
  static void check(const Config& config);

  // The site of `request` (RFC 9112 §3.2): its Host field without the port, case-insensitively; the default site
  // when no [[site]] lists that host.
  [[nodiscard]] Site& select(const Request& request) const;
  // The top-level site: requests whose Host names no [[site]], and error responses before a head parsed.
  [[nodiscard]] Site& default_site() const noexcept { return *sites_.front(); }
  // Calls `fn` with every site, the default one first.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (const auto& site : sites_) fn(static_cast<const Site&>(*site));
  }
  // The --fastcgi-pass pools every site shares.
  [[nodiscard]] FastCgiApps& fastcgi_apps() const noexcept { return *fastcgi_apps_; }
  // The top-level configuration (process-wide settings and the default site's).
  [[nodiscard]] const Config& config() const noexcept { return config_; }
  [[nodiscard]] std::uint64_t generation() const noexcept { return generation_; }
  [[nodiscard]] std::size_t size() const noexcept { return sites_.size(); }
  // True when the configuration has [[site]] tables: the access log then names each line's site.
  [[nodiscard]] bool has_virtual_hosts() const noexcept { return sites_.size() > 1; }

 private:
  Config config_;
  std::uint64_t generation_;
  std::unique_ptr<FastCgiApps> fastcgi_apps_;  // --fastcgi-pass: one pool per address; outlives the gateways
  std::vector<std::unique_ptr<Site>> sites_;   // [0]: the default site
  std::unordered_map<std::string, Site*> by_host_;
};

// The host a request names, lower-cased, without port and trailing dot: its Host field ("WWW.example.org:80" →
// "www.example.org", "[::1]:8080" → "[::1]"); "" without one (HTTP/1.0).
[[nodiscard]] std::string request_host(const Request& request);

}  // namespace spawnd::server
