#include "common/cgi_env.h"

#include <algorithm>
#include <unordered_map>

namespace spawnd {

namespace {

bool is_passable_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}

std::string meta_name(std::string_view field) {
  std::string n = "HTTP_";
  for (char c : field) n += c == '-' ? '_' : (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  return n;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> build_cgi_env(const CgiRequestInfo& in) {
  std::vector<std::pair<std::string, std::string>> env;
  env.reserve(24 + in.fields.size());
  auto set = [&env](std::string name, std::string_view value) { env.emplace_back(std::move(name), value); };
  set("GATEWAY_INTERFACE", "CGI/1.1");
  set("SERVER_PROTOCOL", in.protocol);
  set("SERVER_SOFTWARE", in.server_software);
  set("SERVER_NAME", in.server_name);
  set("SERVER_PORT", std::to_string(in.server_port));
  set("REQUEST_METHOD", in.method);
  set("REQUEST_URI", in.request_uri);
  set("QUERY_STRING", in.query);
  set("SCRIPT_NAME", in.script_name);
  set("SCRIPT_FILENAME", in.script_filename);
  set("DOCUMENT_ROOT", in.document_root);
  if (!in.path_info.empty()) {
    set("PATH_INFO", in.path_info);
    set("PATH_TRANSLATED", std::string(in.document_root) + std::string(in.path_info));
  }
  set("REMOTE_ADDR", in.remote_addr);
  set("REMOTE_PORT", std::to_string(in.remote_port));
  set("REDIRECT_STATUS", "200");
  if (in.is_https) set("HTTPS", "on");
  set("REQUEST_SCHEME", in.is_https ? "https" : "http");
  if (in.content_length) set("CONTENT_LENGTH", std::to_string(*in.content_length));

  // Header fields, in order of first appearance; repeats are joined into the first (RFC 9110 §5.3). The index of
  // each name's entry keeps this linear in the number of fields (a search of the entries made so far would be
  // quadratic, and a client chooses how many fields it sends).
  std::unordered_map<std::string, std::size_t> index_of_meta;
  index_of_meta.reserve(in.fields.size());
  for (const auto& [name, value] : in.fields) {
    if (!is_passable_name(name)) continue;
    std::string meta = meta_name(name);
    if (meta == "HTTP_PROXY" || meta == "HTTP_CONTENT_LENGTH") continue;
    if (meta == "HTTP_AUTHORIZATION" && !in.pass_authorization) continue;
    if (meta == "HTTP_CONTENT_TYPE") meta = "CONTENT_TYPE";
    auto [it, is_new] = index_of_meta.try_emplace(meta, env.size());
    if (is_new) {
      env.emplace_back(std::move(meta), value);
    } else {
      std::string& joined = env[it->second].second;
      joined += it->first == "HTTP_COOKIE" ? "; " : ", ";
      joined += value;
    }
  }
  return env;
}

}  // namespace spawnd
