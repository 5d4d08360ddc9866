#include "server/gateway/fastcgi_gateway.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "common/error.h"
#include "common/log.h"
#include "common/net_addr.h"
#include "server/gateway/fastcgi_client.h"
#include "server/gateway/fork_server.h"

namespace spawnd::server {

namespace {

// NAME=VALUE entries as FastCGI name-value pairs (§3.4); an entry without '=' is a name with an empty value.
std::string encode_base_env(const std::vector<std::string>& env) {
  std::string params;
  for (const std::string& entry : env) {
    const auto eq = entry.find('=');
    fcgi::append_name_value(params, std::string_view(entry).substr(0, eq),
                            eq == std::string::npos ? std::string_view() : std::string_view(entry).substr(eq + 1));
  }
  return params;
}

}  // namespace

FastCgiAddress parse_fastcgi_address(std::string_view text) {
  Result<net::SockAddr> addr = net::resolve_endpoint(text);
  if (!addr) {
    // A malformed text says which forms there are; one that does not resolve says why (gai_strerror).
    const bool is_malformed = addr.error().category() == net::addr_category() &&
                              addr.error() != net::AddrErrc::BadUnixPath;
    throw ConfigError("FastCGI address '" + std::string(text) +
                      "': " + (is_malformed ? "expected unix:PATH or HOST:PORT" : addr.error().message()));
  }
  return FastCgiAddress{*addr, std::string(text)};
}

FastCgiPass parse_fastcgi_pass(std::string_view spec) {
  const auto eq = spec.find('=');
  const std::string_view prefix = spec.substr(0, eq == std::string_view::npos ? 0 : eq);
  // "*.php": an extension, one or more bytes after the dot, none of them '/' or '*'.
  const bool is_extension = prefix.starts_with("*.") && prefix.size() > 2 &&
                            prefix.find_first_of("/*", 1) == std::string_view::npos;
  if (eq == std::string_view::npos || eq == 0 || (spec.front() != '/' && !is_extension))
    throw ConfigError("--fastcgi-pass '" + std::string(spec) +
                      "': expected PREFIX=ADDR[@DIR], PREFIX starting with / or of the form *.EXT");
  FastCgiPass pass;
  pass.prefix = std::string(spec.substr(0, eq));
  std::string_view rest = spec.substr(eq + 1);
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    pass.directory = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (pass.directory.empty() || pass.directory.front() != '/')
      throw ConfigError("--fastcgi-pass '" + std::string(spec) + "': DIR must be an absolute path");
    while (pass.directory.size() > 1 && pass.directory.back() == '/') pass.directory.pop_back();
  }
  if (rest.empty()) throw ConfigError("--fastcgi-pass '" + std::string(spec) + "': ADDR is empty");
  pass.address = std::string(rest);
  return pass;
}

// ---- FastCgiGateway --------------------------------------------------------------------------------------------------

FastCgiGateway::FastCgiGateway(EventLoop& loop, ChildTable& children, FastCgiConfig config,
                               std::unique_ptr<Gateway> fallback)
    : loop_(loop),
      config_(std::move(config)),
      base_params_(encode_base_env(config_.base_env)),
      is_managed_(true),
      fallback_(std::move(fallback)),
      children_(&children),
      dev_null_(::open("/dev/null", O_RDWR | O_CLOEXEC)) {
  if (!dev_null_) throw Error(errno, "open /dev/null");
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/spawnd-fastcgi-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) throw Error(errno, "mkdtemp " + dir);
  socket_dir_ = dir;
  // Every SDK handler there now gets its workers at once; later arrivals on their first request.
  if (DIR* d = ::opendir(config_.directory.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      (void)managed_app(e->d_name);
    }
    ::closedir(d);
  }
}

FastCgiGateway::FastCgiGateway(EventLoop& loop, FastCgiConfig config, FastCgiApps& apps, const FastCgiAddress& address)
    : loop_(loop),
      config_(std::move(config)),
      base_params_(encode_base_env(config_.base_env)),
      is_managed_(false),
      external_app_(&apps.get(address, config_)) {}

// ---- FastCgiApps -----------------------------------------------------------------------------------------------------

FastCgiApps::FastCgiApps(EventLoop& loop) : loop_(loop) {}
FastCgiApps::~FastCgiApps() = default;

FastCgiApp& FastCgiApps::get(const FastCgiAddress& address, const FastCgiConfig& config) {
  const std::string key = net::to_string(address.addr);
  if (auto it = apps_.find(key); it != apps_.end()) return *it->second;
  auto app = std::make_unique<FastCgiApp>(loop_, config, nullptr, apps_.size(), address.text, std::string(), &address,
                                          std::max<std::size_t>(1, config.max_connections));
  return *apps_.emplace(key, std::move(app)).first->second;
}

FastCgiGateway::~FastCgiGateway() {
  apps_.clear();  // stops the workers (SIGTERM; the server's child table kills and reaps what is left at exit)
  if (!socket_dir_.empty()) {
    if (DIR* d = ::opendir(socket_dir_.c_str())) {
      while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ::unlink((socket_dir_ + "/" + e->d_name).c_str());
      ::closedir(d);
    }
    ::rmdir(socket_dir_.c_str());
  }
}

FastCgiApp* FastCgiGateway::managed_app(const std::string& name) {
  if (auto it = apps_.find(name); it != apps_.end()) return it->second.get();
  auto known = is_sdk_.find(name);
  if (known == is_sdk_.end()) {
    const std::string path = config_.directory + "/" + name;
    struct stat st{};
    const bool is_program = ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
    known = is_sdk_.emplace(name, is_program && is_sdk_handler(path)).first;
  }
  if (!known->second) return nullptr;
  SPAWND_LOG_INFO("fastcgi: %s: %zu workers", name.c_str(), config_.workers);
  auto app = std::make_unique<FastCgiApp>(loop_, config_, this, apps_.size(), name, config_.directory + "/" + name,
                                          nullptr, std::max<std::size_t>(1, config_.workers));
  return apps_.emplace(name, std::move(app)).first->second.get();
}

void FastCgiApps::report_load(const LoadReport& report) const {
  for (const auto& [address, app] : apps_) report(ServedBy::FastCgiPass, app->load());
}

ServedBy FastCgiGateway::served_by() const noexcept {
  return is_managed_ ? ServedBy::FastCgi : ServedBy::FastCgiPass;
}

void FastCgiGateway::report_load(const LoadReport& report) const {
  if (!is_managed_) return;
  for (const auto& [name, app] : apps_) report(ServedBy::FastCgi, app->load());
  if (fallback_) fallback_->report_load(report);
}

std::unique_ptr<Exchange> FastCgiGateway::start(const Request& request, ResponseSink& sink, RequestBody& body) {
  // A handler whose workers run is not checked as a script (its workers serve it); reload_if_replaced() stats it to
  // see whether it was replaced. Any other name is checked as in CGI mode (404, 403) before it is started or handed
  // to CGI.
  Result<ScriptTarget> mapped = map_script(request.path, config_.prefix, config_.directory, ScriptCheck::None);
  if (mapped && is_managed_ && !apps_.contains(mapped->name))
    mapped = map_script(request.path, config_.prefix, config_.directory, ScriptCheck::Executable);
  if (!mapped) {
    answer_script_error(sink, mapped.error());
    return nullptr;
  }
  ScriptTarget& target = *mapped;
  FastCgiApp* app = is_managed_ ? managed_app(target.name) : external_app_;
  if (app && is_managed_) app->reload_if_replaced();
  if (!app) {
    if (fallback_) return fallback_->start(request, sink, body);
    answer_status(sink, 404);
    return nullptr;
  }
  auto ex = std::make_unique<FastCgiExchange>(*this, *app, request, sink, body, std::move(target));
  if (!app->admit(*ex)) {
    ex->fail_unavailable();
    return nullptr;
  }
  if (ex->is_finished()) return nullptr;  // answered already: 502, the application is not listening
  return ex;
}

}  // namespace spawnd::server
