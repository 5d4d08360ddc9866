// server/config.h — every setting of a spawnd process, with its default. Filled from the command line and the
// --config file by main.cpp (config_file.h), which then calls resolve_cpu_defaults() once: past that, no setting
// means "per CPU" any more. A Config also holds the virtual hosts of the file's [[site]] tables (SiteConfig), each
// with a Config of its own whose site-level settings (root, cgi-bin, db, ...) are that site's.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/gateway/process.h"
#include "server/static_files.h"

namespace spawnd::server {

struct SiteConfig;

// How the handlers of --cgi-bin run (--mode). Every other program of the directory runs as CGI in every mode.
enum class Mode {
  Cgi,      // exec a fresh process per request
  Fork,     // SDK handlers: a warm fork server forks a fresh process per request
  FastCgi,  // SDK handlers: persistent worker processes speaking FastCGI
  InProc,   // SDK handlers: their NAME.so loaded into spawnd, called on worker threads
};
// The --mode names, in the order --help lists them.
inline constexpr std::array<std::pair<std::string_view, Mode>, 4> kModeNames{{
    {"cgi", Mode::Cgi}, {"fork", Mode::Fork}, {"fastcgi", Mode::FastCgi}, {"inproc", Mode::InProc}}};
// The --mode name of `mode` ("cgi", ...), NUL-terminated, for log lines.
[[nodiscard]] constexpr const char* mode_name(Mode mode) noexcept {
  for (const auto& [name, m] : kModeNames)
    if (m == mode) return name.data();
  return "?";
}

struct Config {
  // Listening.
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free port (printed at start-up)
  int backlog = 1024;

  // HTTPS (tls.h): a second listener beside `listen`, whose connections speak TLS. Empty tls_listen: no HTTPS.
  std::string tls_listen;       // --tls-listen HOST:PORT
  std::string tls_cert;         // --tls-cert: PEM, the certificate then its intermediates; per [[site]] too (SNI)
  std::string tls_key;          // --tls-key: PEM private key of tls_cert; per [[site]] too
  std::string tls_ocsp_response;  // --tls-ocsp-response: DER OCSP response about tls_cert, stapled; per [[site]] too
  bool redirect_https = false;  // --redirect-https: the plain listener answers 308 to https:// (but ACME challenges)
  std::int64_t hsts_seconds = 0;  // --hsts: Strict-Transport-Security max-age on HTTPS responses; 0: none
  std::int64_t tls_ticket_key_rotation_ms = 3'600'000;  // a new session ticket key this often; 0: no tickets

  // Static files.
  std::string root = "www";  // document root
  std::vector<std::string> index_names{"index.html"};     // --index: a directory's index files, tried in order
  SymlinkPolicy follow_symlinks = SymlinkPolicy::Owner;  // --follow-symlinks (static_files.h)
  std::vector<std::string> deny;                          // --deny: path prefixes answered with 403
  std::vector<std::string> precompressed;  // --precompressed: codings served from sidecars, preferred first (br, gzip,
                                           // zstd; content_coding.h); empty: off
  std::string error_pages;                 // --error-pages: directory of NNN.html pages (error_pages.h); empty: built-in
  StaticCacheConfig static_cache;          // --static-cache-entries, --static-cache-valid, --static-cache-body-bytes

  // The status page (status_page.h).
  std::string status_path = "/server-status";  // empty: no status page
  std::vector<std::string> status_allow;       // networks (CIDR) that may read it; empty: loopback only

  // Limits (each a command-line flag).
  std::size_t max_header_bytes = 16 * 1024;         // request line + header fields → 414 / 431 beyond
  std::uint64_t max_body_bytes = 64 * 1024 * 1024;  // request message body → 413 beyond
  std::int64_t header_timeout_ms = 10'000;          // from the first byte of a request to the end of its head
  std::int64_t keepalive_timeout_ms = 5'000;        // idle time allowed between two requests on one connection
  std::int64_t io_timeout_ms = 60'000;              // idle time allowed while receiving a body or sending a response
  std::size_t max_connections = 1024;               // beyond: 503 and close

  // Request bodies (request_body_buffer.h).
  bool request_buffering = true;                    // read a body whole before the handler starts; off: stream it
  std::size_t body_buffer_bytes = 64 * 1024;        // a buffered body's bytes kept in memory; beyond: a temp file
  std::uint64_t body_memory_limit = 64 * 1024 * 1024;          // all connections' body bytes in memory
  std::uint64_t max_buffered_body_bytes = 1024 * 1024 * 1024;  // all body bytes held, memory + files → 503 beyond
  std::string body_temp_dir;                        // directory of the unlinked temp files; empty: $TMPDIR or /tmp
  // Handler responses spooled to temporary files in body_temp_dir (output_buffer.h): the bytes all such files hold
  // together; 0: no spooling (a handler waits for a slow client).
  std::uint64_t max_response_temp_bytes = 1024 * 1024 * 1024;
  std::int64_t shutdown_grace_ms = 10'000;          // SIGTERM/SIGINT: how long in-flight responses may take

  // Dynamic requests: programs (and, with --mode inproc, handler shared objects) in cgi_bin, mounted at
  // cgi_prefix. Empty cgi_bin: no dynamic mount.
  Mode mode = Mode::Cgi;
  std::size_t fork_servers = 0;           // --mode fork: fork servers per SDK handler; 0: one per online CPU
  std::size_t prefork = 4;                // --mode fork: children each fork server keeps forked ahead of need
  std::size_t workers = 0;                // --mode inproc: threads calling handlers; --mode fastcgi: processes per
                                          // handler; 0: one per online CPU
  std::uint64_t max_requests = 0;         // --mode fastcgi: replace a worker after this many requests; 0: never
  std::vector<std::string> fastcgi_pass;  // PREFIX=ADDR[@DIR]: external FastCGI applications (checked by main.cpp)
  std::size_t fastcgi_keep_conn = 0;      // idle connections kept per external application; 0: one per request
  std::int64_t fastcgi_idle_timeout_ms = 10'000;  // a kept idle connection is closed after this long
  std::vector<std::string> cgi_extensions;  // --cgi-ext: ".cgi": files with it under the root run as CGI
  std::string cgi_bin;                    // absolute after main.cpp resolved it
  std::string cgi_prefix = "/cgi-bin/";
  std::int64_t cgi_timeout_ms = 30'000;   // --handler-timeout: a handler's whole response must be complete
                                          // within this time → 504 (every mode)
  std::int64_t kill_grace_ms = 2'000;     // SIGTERM → SIGKILL delay for a child's process group
  std::size_t max_children = 0;           // handler processes at once (--fastcgi-pass: connections); 0: 4 × online CPUs
  std::size_t max_queue = 256;            // requests waiting for a child slot / worker; beyond → 503
  SpawnMethod spawn_method = SpawnMethod::Vfork;
  int spawn_threads = -1;                 // threads that start children; -1: one per online CPU; 0: the loop thread
  std::vector<std::string> pass_env;      // names of spawnd's environment variables passed to children
  bool pass_authorization = false;        // pass the Authorization field as HTTP_AUTHORIZATION
  bool cgi_argv = false;                  // RFC 3875 §4.4 argv from a query without '=' (CVE-2012-1823: off)
  std::string db_path;                    // SPAWND_DB for handlers (absolute); empty: unset
  std::string pragmas = "default";        // SPAWND_PRAGMAS: a preset name or a .sql file
  std::int64_t checkpoint_interval_ms = 5;  // with db_path: the front end's WAL checkpoint poll period (db_keeper.h)
  std::int64_t wal_max_bytes = 16 << 20;   // with db_path: the -wal file's bound (checkpoint_policy.h), passed to
                                           // handlers as SPAWND_WAL_MAX_BYTES

  // Privileges (privileges.h): whom spawnd switches to once it holds its listening socket. Empty: no switch.
  std::string user;   // --user NAME
  std::string group;  // --group NAME; empty: the user's primary group

  // Logging.
  std::string access_log = "-";  // "-" for stdout, or a file path (appended to; reopened on SIGHUP)
  std::string error_log;         // empty: stderr as inherited; else a file that stderr is redirected to (appended
                                 // to; reopened on SIGHUP), so that handlers' stderr lands there too
  bool is_quiet = false;         // no access log, errors only

  // Virtual hosts: the [[site]] tables of the configuration file, in file order. A request whose Host names none
  // of their hosts goes to the top-level site (this Config's own root, cgi-bin, db...). Empty: one site.
  std::vector<SiteConfig> sites;
  std::string config_file;  // --config: the file this came from (for reloads and log lines); empty: none
};

// One [[site]] table (RFC 9112 §3.2: chosen by the Host field, or by an absolute-form target's authority).
struct SiteConfig {
  std::vector<std::string> hosts;  // host names without port as net::host_name_key makes them (lower case, no
                                   // trailing dot), e.g. {"example.org", "www.example.org"}
  int line = 0;                    // where its table starts in the configuration file, for messages
  Config settings;                 // the site's settings: root, cgi_bin, db_path... (its `sites` is empty)
};

// The number of online CPUs (sysconf), at least 1.
[[nodiscard]] unsigned online_cpus() noexcept;

// Replaces every "0 (or -1): per CPU" default of `config` by its value for `cpus` CPUs: max_children 0 → 4 × cpus;
// fork_servers and workers 0 → cpus; spawn_threads -1 → cpus. Values the command line gave are kept.
void resolve_cpu_defaults(Config& config, unsigned cpus);

}  // namespace spawnd::server
