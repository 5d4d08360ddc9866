// server/gateway/script.h — what every gateway that runs the handlers of --cgi-bin shares: mapping a request path
// to a script name and PATH_INFO, the request's CGI meta-variables, and the small error answers given from start().
//
// Used by the CGI/fork-server gateway and the in-process gateway, so that a handler sees the same meta-variables
// (RFC 3875 §4.1) and a client gets the same 404 whichever mode runs it. Pure code apart from answer_status(), which
// calls the sink; loop thread only.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/gateway/gateway.h"

namespace spawnd::server {

struct CgiConfig;

// "/cgi-bin/NAME/extra/path" → {"NAME", "/extra/path"}.
struct ScriptTarget {
  std::string name;       // a single path segment, never empty, never a dotfile
  std::string path_info;  // decoded extra path ("/extra/path"), or empty
};

// Maps the (still percent-encoded) request path under `prefix` ("/cgi-bin/") to the script it names, with the same
// normalisation as static files, so nothing outside the directory can be named ("..", encoded slashes, dotfiles).
// nullopt: the path names no script (the answer is 404).
[[nodiscard]] std::optional<ScriptTarget> find_script_target(std::string_view path, std::string_view prefix);

// The meta-variables of `request` for `target`: the server's base variables (cfg.base_env, "NAME=value" each: PATH,
// --pass-env, SPAWND_DB, SPAWND_PRAGMAS), then build_cgi_env() (common/cgi_env.h). This is the whole environment of
// a CGI child, and the whole meta-variable list of an in-process call.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> script_meta_variables(const Request& request,
                                                                                   const CgiConfig& cfg,
                                                                                   const ScriptTarget& target);

// Splits "NAME=value" (a base_env entry) at its first '='.
[[nodiscard]] std::pair<std::string, std::string> split_env_entry(std::string_view entry);

// Answers a request completely from inside Gateway::start(): `status` (404, 403) with spawnd's small error page.
void answer_status(ResponseSink& sink, int status);

}  // namespace spawnd::server
