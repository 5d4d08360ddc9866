#include "server/router.h"

#include "common/log.h"
#include "server/static_path.h"

namespace spawnd::server {

void Router::mount(std::string prefix, std::unique_ptr<Gateway> gateway) {
  mounts_.emplace_back(std::move(prefix), std::move(gateway));
}

Gateway* Router::match(std::string_view path) const noexcept {
  for (const auto& [prefix, gateway] : mounts_) {
    // A prefix naming one script ("/app.php", --fastcgi-pass) owns "/app.php" and "/app.php/...", not
    // "/app.phpx" or "/apidocs.html" next to "/api".
    const bool is_bounded = prefix.empty() || prefix.back() == '/' || path.size() == prefix.size() ||
                            (path.size() > prefix.size() && path[prefix.size()] == '/');
    if (path.substr(0, prefix.size()) == prefix && is_bounded) return gateway.get();
    // "/cgi-bin" without its slash still names the mount.
    if (!prefix.empty() && prefix.back() == '/' && path == std::string_view(prefix).substr(0, prefix.size() - 1))
      return gateway.get();
  }
  return nullptr;
}

Route Router::route(std::string_view raw_path) const {
  if (Gateway* gateway = match(raw_path)) return Route{gateway};
  std::string normalized;
  if (normalize_request_path(raw_path, normalized) != PathStatus::Ok) return Route{};  // static files refuse it too
  return Route{match(normalized)};
}

std::optional<Route> Router::route_local_redirect(Request& request, std::string_view location, int& redirects) const {
  if (++redirects > kMaxLocalRedirects) {
    SPAWND_LOG_ERROR("request %llu: more than %d local redirects (last to %.*s)",
                     static_cast<unsigned long long>(request.id), kMaxLocalRedirects,
                     static_cast<int>(location.size()), location.data());
    return std::nullopt;
  }
  request.method = "GET";
  request.target = std::string(location);
  const auto q = location.find('?');
  request.path = std::string(location.substr(0, q));
  request.query = q == std::string_view::npos ? std::string() : std::string(location.substr(q + 1));
  request.content_length.reset();
  request.has_body = false;
  request.is_chunked = false;
  request.expects_continue = false;
  std::erase_if(request.fields, [](const auto& f) {
    return iequals(f.first, "Content-Length") || iequals(f.first, "Content-Type") ||
           iequals(f.first, "Transfer-Encoding");
  });
  return route(request.path);
}

}  // namespace spawnd::server
