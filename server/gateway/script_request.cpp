#include "server/gateway/script_request.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "common/cgi_env.h"
#include "common/net_addr.h"
#include "server/static_files.h"
#include "server/static_path.h"

namespace spawnd::server {

Result<ScriptTarget> map_script(std::string_view request_path, std::string_view prefix, const std::string& directory,
                                ScriptCheck check) {
  const std::error_code no_script = errno_code(ENOENT);
  std::string path;
  if (normalize_request_path(request_path, path) != PathStatus::Ok) return no_script;
  std::string_view rest = path;
  ScriptTarget target;
  if (prefix.starts_with("*.")) {
    // "*.php": "/dir/a.php/extra" → SCRIPT_NAME "/dir/a.php", PATH_INFO "/extra" (static_path.h).
    const std::size_t length = script_path_length(rest, prefix.substr(1));
    if (length == std::string_view::npos) return no_script;
    target.script_name = std::string(rest.substr(0, length));
    target.name = target.script_name.substr(target.script_name.rfind('/') + 1);
    rest.remove_prefix(length);
    target.path_info = std::string(rest);
    target.script_filename = directory + target.script_name;
    // The Router checked that the file exists (router.h); a CGI program must be executable too.
    if (check == ScriptCheck::Executable && ::access(target.script_filename.c_str(), X_OK) != 0)
      return errno_code(errno == ENOENT ? ENOENT : EACCES);
    return target;
  }
  if (!prefix.empty() && prefix.back() == '/') {
    // "/cgi-bin/NAME/extra": the prefix itself, or a path that climbed out of it with "..", names no script.
    if (rest.substr(0, prefix.size()) != prefix) return no_script;
    rest.remove_prefix(prefix.size());
    const auto slash = rest.find('/');
    target.name = std::string(rest.substr(0, slash));
    if (target.name.empty()) return no_script;
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    target.script_name = std::string(prefix) + target.name;
  } else {
    // "/app.php" or "/app.php/extra", never "/app.phpx".
    if (rest.substr(0, prefix.size()) != prefix) return no_script;
    rest.remove_prefix(prefix.size());
    if (!rest.empty() && rest.front() != '/') return no_script;
    const auto last = prefix.rfind('/');
    target.name = std::string(last == std::string_view::npos ? prefix : prefix.substr(last + 1));
    if (target.name.empty()) return no_script;
    target.script_name = std::string(prefix);
  }
  target.path_info = std::string(rest);
  target.script_filename = directory + "/" + target.name;
  if (check == ScriptCheck::Executable) {
    struct stat st{};
    if (::stat(target.script_filename.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return no_script;
    if (::access(target.script_filename.c_str(), X_OK) != 0) return errno_code(EACCES);
  }
  return target;
}

std::vector<std::pair<std::string, std::string>> script_meta_variables(const Request& request,
                                                                       const ScriptTarget& target,
                                                                       const ScriptServerInfo& server) {
  const std::string protocol = request.protocol();
  std::string_view server_name = request.local_addr;
  if (auto host = request.field("Host"); host && !host->empty()) server_name = net::host_without_port(*host);
  CgiRequestInfo info;
  info.method = request.method;
  info.protocol = protocol;
  info.request_uri = request.target;
  info.query = request.query;
  info.script_name = target.script_name;
  info.path_info = target.path_info;
  info.script_filename = target.script_filename;
  info.document_root = server.document_root;
  info.server_name = server_name;
  info.server_port = request.local_port;  // the TLS listener's port for a request over HTTPS
  info.is_https = request.tls_protocol != nullptr;
  info.server_software = "spawnd/" SPAWND_VERSION;
  info.remote_addr = request.remote_addr;
  info.remote_port = request.remote_port;
  if (request.has_body || request.content_length) info.content_length = request.content_length.value_or(0);
  info.fields = request.fields;
  info.pass_authorization = server.pass_authorization;
  return build_cgi_env(info);
}

void answer_script_error(ResponseSink& sink, std::error_code error) {
  answer_status(sink, error.value() == EACCES ? 403 : 404);
}

void answer_status(ResponseSink& sink, int status) { sink.on_error_status(status); }

void ResponseSink::on_error_status(int status) {
  std::string page = error_page(status);
  ResponseHead head;
  head.status = status;
  head.fields.emplace_back("Content-Type", "text/html; charset=utf-8");
  head.content_length = page.size();
  on_head(std::move(head));
  (void)on_body(page);
  on_end(std::nullopt);
}

std::string_view served_by_name(ServedBy served_by) noexcept {
  switch (served_by) {
    case ServedBy::None: return "none";
    case ServedBy::Static: return "static";
    case ServedBy::Status: return "status";
    case ServedBy::Cgi: return "cgi";
    case ServedBy::Fork: return "fork";
    case ServedBy::FastCgi: return "fastcgi";
    case ServedBy::FastCgiPass: return "fastcgi-pass";
    case ServedBy::InProc: return "inproc";
  }
  return "none";
}

}  // namespace spawnd::server
