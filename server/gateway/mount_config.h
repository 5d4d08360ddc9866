// server/gateway/mount_config.h — what every script gateway's mount has in common: where it is mounted, where its
// scripts are, and the limits the command line sets for all of them. CgiConfig (cgi and fork modes, and the
// in-process gateway through it) and FastCgiConfig (managed workers and --fastcgi-pass) extend it, so the server
// fills it once (Server::mount_config) instead of copying field by field from one mode's config to another's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace spawnd::server {

struct MountConfig {
  std::string prefix;         // URL prefix: "/cgi-bin/" (a directory of scripts) or "/app.php" (one script)
  std::string directory;      // absolute: the scripts' directory (SCRIPT_FILENAME = directory/NAME)
  std::string document_root;  // absolute: DOCUMENT_ROOT and PATH_TRANSLATED
  // "NAME=value" for every handler process: PATH, --pass-env, SPAWND_DB, SPAWND_PRAGMAS (also sent first in every
  // FCGI_PARAMS of a managed FastCGI worker). Empty for --fastcgi-pass: an external application keeps its own.
  std::vector<std::string> base_env;
  bool pass_authorization = false;           // the Authorization field as HTTP_AUTHORIZATION
  std::int64_t timeout_ms = 30'000;          // --handler-timeout: the whole response → 504
  std::int64_t kill_grace_ms = 2'000;        // --kill-grace: how long in-process shutdown waits for handler calls
                                             // (processes: the server's ChildTable has its own copy)
  std::size_t max_queue = 256;               // requests waiting for a free slot; beyond → 503 with Retry-After
  std::size_t max_header_bytes = 64 * 1024;  // the CGI header block of a handler's response
};

}  // namespace spawnd::server
