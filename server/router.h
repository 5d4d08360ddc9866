// server/router.h — which part of the server answers a request: a mounted Gateway, chosen by URL prefix, or the
// static files; and the re-routing of CGI local redirects (RFC 3875 §6.2.2).
//
// The Server owns the one Router and mounts its gateways before run(); Connection asks it for a Route with each
// request head and again when an exchange ends with a local redirect. The Router owns the gateways: unmount_all()
// (or its destructor) destroys them, so every exchange must be gone by then (server.cpp drops the connections and
// runs the deferred work first). Loop thread only; route() is pure string work (no I/O).
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
  Gateway* gateway = nullptr;  // nullptr: the static files answer
  [[nodiscard]] bool is_static() const noexcept { return gateway == nullptr; }
};

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
  void mount(std::string prefix, std::unique_ptr<Gateway> gateway);
  // Destroys every gateway (teardown; no exchange may be alive).
  void unmount_all() noexcept { mounts_.clear(); }

  // The route of `raw_path` (a request-target's path, before '?', still percent-encoded). The raw path decides first:
  // a path under a mount belongs to it even if it climbs out with ".." (the gateway refuses it; the static files
  // must not serve "/cgi-bin/../x"). Else the path as the static files normalise it (static_path.h) decides, so
  // that "//app.php", "/app%2ephp" or "/x/../app.php" reach the gateway mounted at "/app.php" instead of the static
  // files answering with the script's source. A path the static files refuse (400, 404) routes to them.
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

  std::vector<std::pair<std::string, std::unique_ptr<Gateway>>> mounts_;
};

}  // namespace spawnd::server
