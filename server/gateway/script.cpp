#include "server/gateway/script.h"

#include "common/cgi_env.h"
#include "server/gateway/cgi_gateway.h"
#include "server/static_files.h"
#include "server/static_path.h"

namespace spawnd::server {

std::optional<ScriptTarget> find_script_target(std::string_view path, std::string_view prefix) {
  std::string normal;
  if (normalize_request_path(path, normal) != PathStatus::Ok) return std::nullopt;
  std::string_view rest = normal;
  // "/cgi-bin" itself, or climbed out of the prefix with "..".
  if (rest.substr(0, prefix.size()) != prefix) return std::nullopt;
  rest.remove_prefix(prefix.size());
  auto slash = rest.find('/');
  ScriptTarget target{std::string(rest.substr(0, slash)),
                      std::string(slash == std::string_view::npos ? std::string_view() : rest.substr(slash))};
  if (target.name.empty()) return std::nullopt;
  return target;
}

std::vector<std::pair<std::string, std::string>> script_meta_variables(const Request& request, const CgiConfig& cfg,
                                                                     const ScriptTarget& target) {
  std::string script_name = cfg.prefix + target.name;  // "/cgi-bin/" + "env"
  std::string script_filename = cfg.directory + "/" + target.name;
  std::string protocol = request.protocol();
  std::string server_name = request.local_addr;
  if (auto host = request.field("Host"); host && !host->empty()) {
    std::string_view h = *host;
    // "example.com:8080" → "example.com"; "[::1]:8080" → "[::1]"
    auto colon = h.rfind(':');
    if (colon != std::string_view::npos && h.find(']', colon) == std::string_view::npos) h = h.substr(0, colon);
    server_name = std::string(h);
  }
  CgiRequestInfo info;
  info.method = request.method;
  info.protocol = protocol;
  info.request_uri = request.target;
  info.query = request.query;
  info.script_name = script_name;
  info.path_info = target.path_info;
  info.script_filename = script_filename;
  info.document_root = cfg.document_root;
  info.server_name = server_name;
  info.server_port = request.local_port;
  info.server_software = "spawnd/0.1.0";
  info.remote_addr = request.remote_addr;
  info.remote_port = request.remote_port;
  if (request.has_body || request.content_length) info.content_length = request.content_length.value_or(0);
  info.fields = request.fields;
  info.pass_authorization = cfg.pass_authorization;

  std::vector<std::pair<std::string, std::string>> vars;
  vars.reserve(cfg.base_env.size() + 32);
  for (const auto& entry : cfg.base_env) vars.push_back(split_env_entry(entry));
  for (auto& var : build_cgi_env(info)) vars.push_back(std::move(var));
  return vars;
}

std::pair<std::string, std::string> split_env_entry(std::string_view entry) {
  auto eq = entry.find('=');
  if (eq == std::string_view::npos) return {std::string(entry), std::string()};
  return {std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1))};
}

void answer_status(ResponseSink& sink, int status) {
  std::string page = error_page(status);
  ResponseHead head;
  head.status = status;
  head.fields.emplace_back("Content-Type", "text/html; charset=utf-8");
  head.content_length = page.size();
  sink.on_head(std::move(head));
  (void)sink.on_body(page);
  sink.on_end(std::nullopt);
}

}  // namespace spawnd::server
