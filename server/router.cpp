#include "server/router.h"

#include <sys/stat.h>

#include <cerrno>

#include "common/log.h"
#include "server/static_files.h"
#include "server/static_path.h"

namespace spawnd::server {

void Router::mount(std::string prefix, std::unique_ptr<Gateway> gateway) {
  if (prefix.starts_with("*.")) {
    extension_mounts_.emplace_back(prefix.substr(1), std::move(gateway));
    return;
  }
  mounts_.emplace_back(std::move(prefix), std::move(gateway));
}

void Router::deny(std::string prefix) { denied_.push_back(std::move(prefix)); }

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
  std::string normalized;
  const bool is_normal = normalize_request_path(raw_path, normalized) == PathStatus::Ok;
  if (is_normal) {
    for (const std::string& prefix : denied_)
      if (is_under_prefix(normalized, prefix)) return Route::error(403);
  }
  if (Gateway* gateway = match(raw_path)) return Route::to(gateway);
  if (!is_normal) return Route{};  // the static files refuse it too
  if (Gateway* gateway = match(normalized)) return Route::to(gateway);
  if (std::optional<Route> by_extension = route_by_extension(normalized)) return std::move(*by_extension);
  return Route{};
}

std::optional<Route> Router::route_by_extension(const std::string& path) const {
  if (extension_mounts_.empty() || static_files_ == nullptr) return std::nullopt;
  std::string index;
  if (path.back() == '/') {
    std::optional<std::string> found = static_files_->find_index(path);
    if (!found) return std::nullopt;  // the static files answer (404, or 403 for a refused symlink)
    index = std::move(*found);
    for (const std::string& prefix : denied_)
      if (is_under_prefix(index, prefix)) return Route::error(403);
  }
  const std::string& target = index.empty() ? path : index;
  for (const auto& [extension, gateway] : extension_mounts_) {
    const std::size_t length = script_path_length(target, extension);
    if (length == std::string_view::npos) continue;
    Result<struct stat> st = static_files_->stat(std::string_view(target).substr(0, length));
    if (!st) {
      const int err = st.error().value();
      return Route::error(err == ELOOP || err == EACCES ? 403 : 404);
    }
    if (!S_ISREG(st->st_mode)) return Route::error(404);
    return Route::to(gateway.get(), index);
  }
  if (!index.empty()) return Route::to(nullptr, std::move(index));  // "/docs/" → "/docs/index.html", a static file
  return std::nullopt;
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
