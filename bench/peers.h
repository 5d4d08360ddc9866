// bench/peers.h — the peer servers spawnd is compared with, run on the same handler executable (--peers).
//
//   lighttpd mod_cgi        lighttpd runs the handler as CGI (alias + cgi.assign)
//   apache mod_cgid         Apache httpd, mpm_event, ScriptAlias through the cgid daemon
//   nginx fcgiwrap          nginx (one worker) -> fcgiwrap (4 x cores processes) -> the handler as CGI
//   nginx fastcgi_pass      nginx (one worker) -> the handler itself as a FastCGI application: `workers` processes
//                           sharing one listening unix socket on their fd 0 (FCGI_LISTENSOCK_FILENO)
//   nginx static            nginx (one worker) serving the same file as spawnd's static mode
//
// Configurations are generated into the run's work directory: loopback only, access logs off, error logs there.
// Every peer passes SPAWND_DB and SPAWND_PRAGMAS to the handler as spawnd does. As root, Apache's children run as
// www-data (httpd refuses root), so the caller makes the database directory writable for them; nginx gets
// `user root` so that its worker can reach the sockets the driver's processes create.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/process.h"
#include "bench/runner.h"

namespace spawnd::bench {

struct PeerSetup {
  std::string work_dir;     // configs, sockets, logs
  std::string docroot;      // static files
  std::string cgi_bin;      // the handler executables
  std::string db_path;      // SPAWND_DB
  std::string pragmas;      // SPAWND_PRAGMAS
  std::string handler;      // the workload's handler ("guestbook", "hello"), for the FastCGI application
  std::uint16_t port = 0;
  unsigned cores = 1;
  int workers = 1;          // FastCGI application processes
  bool is_root = false;
  std::int64_t wal_max_bytes = 16 << 20;  // SPAWND_WAL_MAX_BYTES for the handlers (their writers' WAL backstop)
};

// The generated configuration files (pure functions of the setup, for tests and for reading).
[[nodiscard]] std::string lighttpd_config(const PeerSetup& s);
[[nodiscard]] std::string apache_config(const PeerSetup& s);
// `mode` is fcgiwrap, fastcgi_pass or static; `fastcgi_socket` the unix socket nginx passes requests to.
[[nodiscard]] std::string nginx_config(const PeerSetup& s, const std::string& mode, const std::string& fastcgi_socket);

// Starts the peer `target` names and returns its processes. Throws Skip if a needed program is not installed.
[[nodiscard]] std::vector<Process> start_peer(const Target& target, const PeerSetup& s);

}  // namespace spawnd::bench
