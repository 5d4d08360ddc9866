// server/router.h — which part of the server answers a request: a mounted Gateway, chosen by URL prefix or by the
// extension of an existing script file ("*.php"), or the static files, or a refusal (--deny → 403); the index file
// of a directory URL (--index, which may be a script: "index.php"); and the re-routing of CGI local redirects
// (RFC 3875 §6.2.2).
//
// Each Site (site.h) owns one Router and mounts its gateways before the server runs; Connection asks the request's
// site for a Route with each request head and again when an exchange ends with a local redirect. The Router owns
// the gateways: its destructor destroys them, so every exchange must be gone by then (server.cpp drops the
// connections and runs the deferred work first). Loop thread only. route() is string work, except that with
// extension mounts it asks the static files (set_static_files()) whether a script exists and which index file a
// directory has: a stat of a few files, the kind of blocking call static serving makes anyway.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/gateway/gateway.h"
#include "server/http_request.h"

namespace spawnd::server {

// Where a request goes. Non-owning: the gateway belongs to the Router.
struct Route {
  Gateway* gateway = nullptr;  // nullptr: the static files answer (or `status`)
  int status = 0;              // non-zero: answer with this error status (403: --deny or a refused symlink; 404: an
                               // extension-routed script that does not exist)
  std::string path;            // non-empty: the request's path becomes this (a directory's index file, "/doku.php")
  [[nodiscard]] bool is_static() const noexcept { return gateway == nullptr && status == 0; }
  [[nodiscard]] static Route to(Gateway* gateway, std::string path = {}) {
    Route r;
    r.gateway = gateway;
    r.path = std::move(path);
    return r;
  }
  [[nodiscard]] static Route error(int status) {
    Route r;
    r.status = status;
    return r;
  }
};

class StaticFiles;

class Router {
 public:
  // Local redirects followed for one client request before the server gives up with 500: two scripts can redirect
  // to each other (RFC 3875 §6.2.2 sets no bound).
  static constexpr int kMaxLocalRedirects = 10;

  Router() = default;
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Routes request paths under `prefix` to `gateway`. Mounts are tried in the order they were made; the first match
  // wins. A prefix ending in '/' ("/cgi-bin/") owns every path below it and the path without its slash
  // ("/cgi-bin"); any other prefix names one script ("/app.php", --fastcgi-pass) and owns "/app.php" and
  // "/app.php/...", not "/app.phpx". The empty prefix owns every path.
  // A prefix "*.EXT" ("*.php") is an extension mount, tried after every prefix mount: a path whose first segment
  // ending in ".EXT" names a regular file under the root (through the static files, so --follow-symlinks applies)
  // goes to its gateway, split there into script and PATH_INFO ("/a.php/extra"); one naming no such file is 404
  // (403 if a symlink was refused) from the Router: it never reaches the application (nginx needs `try_files` for
  // this). Needs set_static_files().
  void mount(std::string prefix, std::unique_ptr<Gateway> gateway);
  // Refuses every path at or below `prefix` (normalised, at a segment boundary: "/conf" refuses "/conf" and
  // "/conf/x", not "/conference") with 403, before any mount (--deny: what .htaccess files protect elsewhere).
  void deny(std::string prefix);
  // The static files whose root extension mounts and index files are checked under (non-owning; must outlive
  // the Router's use).
  void set_static_files(const StaticFiles* files) noexcept { static_files_ = files; }
  // Every mounted gateway's load (Gateway::report_load), for the status page.
  void report_load(const LoadReport& report) const {
    for (const auto& [prefix, gateway] : mounts_) gateway->report_load(report);
    for (const auto& [extension, gateway] : extension_mounts_) gateway->report_load(report);
  }
  // True if any gateway is mounted: requests may then reach handlers, whatever their method.
  [[nodiscard]] bool has_gateways() const noexcept { return !mounts_.empty() || !extension_mounts_.empty(); }

  // The route of `raw_path` (a request-target's path, before '?', still percent-encoded). The raw path decides first:
  // a path under a mount belongs to it even if it climbs out with ".." (the gateway refuses it; the static files
  // must not serve "/cgi-bin/../x"). Else the path as the static files normalise it (static_path.h) decides, so
  // that "//app.php", "/app%2ephp" or "/x/../app.php" reach the gateway mounted at "/app.php" instead of the static
  // files answering with the script's source. A path the static files refuse (400, 404) routes to them. --deny is
  // checked on the normalised path first. With extension mounts, a directory's path ("/", "/docs/") becomes its
  // first existing index file (Route::path), which is then routed like any path (to an extension mount if it is
  // "index.php", else to the static files).
  [[nodiscard]] Route route(std::string_view raw_path) const;

  // A CGI local redirect (RFC 3875 §6.2.2): the script answered with "Location: /path?query" and no body, and the
  // server answers the client with what that path serves, as a GET without a message body. Rewrites `request` so
  // (method GET; target, path and query from `location`; Content-Length, Content-Type and Transfer-Encoding fields
  // and the body flags dropped; everything else, the HEAD-ness of the client's request included, stays with the
  // caller) and returns its route. `redirects` counts the redirects of this client request (the caller keeps it,
  // starting at 0); past kMaxLocalRedirects it logs one line and returns nullopt, leaving `request` as it was: the
  // caller answers 500.
  [[nodiscard]] std::optional<Route> route_local_redirect(Request& request, std::string_view location,
                                                          int& redirects) const;

 private:
  [[nodiscard]] Gateway* match(std::string_view path) const noexcept;
  // The extension mounts' part of route() for the normalised `path`; nullopt if none claims it.
  [[nodiscard]] std::optional<Route> route_by_extension(const std::string& path) const;

  std::vector<std::pair<std::string, std::unique_ptr<Gateway>>> mounts_;
  std::vector<std::pair<std::string, std::unique_ptr<Gateway>>> extension_mounts_;  // ".php" → gateway
  std::vector<std::string> denied_;
  const StaticFiles* static_files_ = nullptr;
};

}  // namespace spawnd::server
