// server/gateway/script_request.h — what the CGI, fork-server and FastCGI gateways share about a request for a
// script: mapping the request path to a script and PATH_INFO (RFC 3875 §3.3, the script-URI), the meta-variables
// (RFC 3875 §4.1, via common/cgi_env.h), and answering
// with an error page from inside Gateway::start(). Loop thread only; no I/O except the stat/access of map_script().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/gateway/gateway.h"
#include "server/http_request.h"

namespace spawnd::server {

// A request path split into the script it names and the extra path after it.
struct ScriptTarget {
  std::string name;       // the script's file name, "guestbook" (empty for a prefix naming one script)
  std::string path_info;  // decoded extra path "/a/b", or empty
  std::string script_name;      // SCRIPT_NAME: "/cgi-bin/guestbook", or the prefix itself
  std::string script_filename;  // SCRIPT_FILENAME: the script's absolute path
};

// How map_script() checks the file it names.
enum class ScriptCheck {
  Executable,  // must be a regular executable file: missing → 404, not executable → 403 (CGI, fork, FastCGI)
  None,        // not checked: the file belongs to another server (--fastcgi-pass to php-fpm or fcgiwrap)
};

// Maps `request_path` (the raw, still percent-encoded path) under `prefix` to a script in `directory` (absolute).
// A prefix ending in '/' ("/cgi-bin/") names a directory: the first segment after it is the script ("NAME") and the
// rest is PATH_INFO. Any other prefix ("/app.php") names one script, `directory`/<its last segment>, and the request
// path must be the prefix itself or continue with '/'. The path is normalised as for static files (no "..", no
// encoded '/', no dotfiles), so nothing outside `directory` can be named. Returns the target, or ENOENT (the path
// names no script, or with ScriptCheck::Executable no regular file: 404) or EACCES (not executable: 403); see
// answer_script_error().
// A prefix "*.EXT" ("*.php", extension routing) splits the path after its first segment ending in ".EXT"
// (static_path.h's script_path_length, as nginx's fastcgi_split_path_info): SCRIPT_NAME "/dir/a.php", PATH_INFO the
// rest, SCRIPT_FILENAME `directory` + SCRIPT_NAME (`directory` is then the document root, or --fastcgi-pass's @DIR).
[[nodiscard]] Result<ScriptTarget> map_script(std::string_view request_path, std::string_view prefix,
                                              const std::string& directory, ScriptCheck check);
// Answers map_script()'s error from inside Gateway::start(): EACCES → 403, anything else → 404.
void answer_script_error(ResponseSink& sink, std::error_code error);

struct ScriptServerInfo {
  std::string_view document_root;  // DOCUMENT_ROOT (absolute); PATH_TRANSLATED = it + PATH_INFO
  bool pass_authorization = false;
};

// The meta-variables for running `target` for `request` (common/cgi_env.h's build_cgi_env): SERVER_NAME from the
// Host field (without its port) or else the local address, CONTENT_LENGTH when the request has a body.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> script_meta_variables(const Request& request,
                                                                                     const ScriptTarget& target,
                                                                                     const ScriptServerInfo& server);

// Answers a request completely from inside Gateway::start(): an HTML error page with `status` (404, 403, 502).
void answer_status(ResponseSink& sink, int status);

}  // namespace spawnd::server
