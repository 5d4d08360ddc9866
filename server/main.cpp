// server/main.cpp — the spawnd executable: command line (CLI11) and --config file (config_file.h) → Config →
// Server::run(), or --check-config / --version. Nothing else.
#include <CLI/CLI.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <algorithm>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <llhttp.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include "common/error.h"
#include "common/log.h"
#include "server/config.h"
#include "server/config_file.h"
#include "server/server.h"

namespace {

// A duration flag in seconds (fractions allowed), stored in milliseconds; `range` is CLI::NonNegativeNumber for one
// where 0 has a meaning.
CLI::Option* add_seconds(CLI::App& app, const char* name, std::int64_t& ms, const char* help,
                         const CLI::Validator& range = CLI::PositiveNumber) {
  auto* opt = app.add_option_function<double>(
      name, [&ms](double s) { ms = static_cast<std::int64_t>(std::llround(s * 1000.0)); }, help);
  opt->check(range)->type_name("SECONDS");
  char shown[32];
  std::snprintf(shown, sizeof shown, "%g", static_cast<double>(ms) / 1000.0);
  opt->default_str(shown);
  return opt;
}

// A flag whose value is one of the names in `choices` (help: "TEXT:{a,b,c}=default"), stored in `value` as the value
// that name maps to. The default shown is the name of `value`'s value before parsing.
template <typename T, std::size_t N>
CLI::Option* add_choice(CLI::App& app, const char* name, T& value,
                        const std::array<std::pair<std::string_view, T>, N>& choices, const char* help) {
  std::vector<std::string> names;
  std::string default_name;
  for (const auto& [choice, v] : choices) {
    names.emplace_back(choice);
    if (v == value) default_name = choice;
  }
  auto* opt = app.add_option_function<std::string>(
      name,
      [&value, &choices](const std::string& text) {
        for (const auto& [choice, v] : choices)
          if (choice == text) value = v;
      },
      help);
  opt->check(CLI::IsMember(names))->default_str(default_name);
  return opt;
}

constexpr std::array<std::pair<std::string_view, bool>, 2> kOnOff{{{"on", true}, {"off", false}}};
constexpr std::array<std::pair<std::string_view, spawnd::server::SpawnMethod>, 3> kSpawnMethods{{
    {"vfork", spawnd::server::SpawnMethod::Vfork},
    {"posix_spawn", spawnd::server::SpawnMethod::PosixSpawn},
    {"fork", spawnd::server::SpawnMethod::Fork},
}};

// The options that say how to read the configuration rather than what it is (never keys: config_file.h).
struct CommandOptions {
  std::string config_file;    // --config FILE
  bool is_check = false;      // --check-config
  bool is_version = false;    // --version
};

// Every flag of spawnd, bound to `cfg`: the one definition of the command line and of the configuration file's keys
// (config_file.h). The flags that are also keys of a [[site]] table are in the group kSiteOptions.
std::unique_ptr<CLI::App> make_app(spawnd::server::Config& cfg, CommandOptions& command) {
  using spawnd::server::kSiteOptions;
  auto app_owner = std::make_unique<CLI::App>(
      "spawnd — a small, fast web server: static files from --root, and a fresh process per dynamic request for\n"
      "the programs in --cgi-bin (CGI, RFC 3875; or forked from warm fork servers with --mode fork; or, with\n"
      "--mode inproc, no process: handlers loaded as shared objects). Runs in the foreground; stop it with\n"
      "SIGTERM or Ctrl-C (graceful: in-flight responses finish within --shutdown-grace); SIGHUP reopens the logs\n"
      "and reloads --config. Every long flag is also a key of the --config file (TOML): --handler-timeout 30 is\n"
      "handler-timeout = 30; flags on the command line override the file.");
  CLI::App& app = *app_owner;
  app.get_formatter()->column_width(40);
  app.add_option("--config", command.config_file,
                 "Read settings from this TOML file: each key is a long flag without its dashes, [[site]] tables are "
                 "virtual hosts (see README, Configuration file); reloaded on SIGHUP")
      ->type_name("FILE");
  app.add_flag("--check-config", command.is_check,
               "Check the configuration (flags, --config file, roots, directories, addresses) and exit: 0 and "
               "\"configuration ok\", or 2 and the error; binds and starts nothing");
  app.add_flag("--version", command.is_version,
               "Print the version of spawnd and of the libraries it is built with, and exit");

  app.add_option("--listen", cfg.listen, "Address to listen on, HOST:PORT or [IPV6]:PORT; port 0 picks a free port")
      ->capture_default_str();
  app.add_option("--root", cfg.root, "Document root for static files")
      ->capture_default_str()
      ->group(kSiteOptions);
  // HTTPS (server/tls.h).
  app.add_option("--tls-listen", cfg.tls_listen,
                 "Also listen on this address, HOST:PORT, for HTTPS (TLS 1.2 and 1.3, terminated by spawnd); needs "
                 "--tls-cert and --tls-key; port 0 picks a free port. Under socket activation, a socket named https "
                 "(FileDescriptorName=https) is served instead")
      ->type_name("HOST:PORT");
  app.add_option("--tls-cert", cfg.tls_cert,
                 "PEM certificate of --tls-listen, followed by its intermediates (full chain, e.g. certbot's "
                 "fullchain.pem); in a [[site]]: that site's, chosen by SNI; re-read on SIGHUP")
      ->type_name("FILE")
      ->group(kSiteOptions);
  app.add_option("--tls-key", cfg.tls_key, "PEM private key of --tls-cert (e.g. certbot's privkey.pem); re-read on SIGHUP")
      ->type_name("FILE")
      ->group(kSiteOptions);
  app.add_option("--tls-ocsp-response", cfg.tls_ocsp_response,
                 "DER OCSP response about --tls-cert (RFC 6960), stapled to the handshakes of clients that ask for "
                 "one (RFC 6066 §8), like nginx's ssl_stapling_file; spawnd never queries the responder: whatever "
                 "fetches the response (cron: openssl ocsp -respout) sends SIGHUP, which re-reads it; in a [[site]] "
                 "with its own tls-cert: that certificate's")
      ->type_name("FILE")
      ->group(kSiteOptions);
  app.add_flag("--redirect-https", cfg.redirect_https,
               "The plain --listen answers every request with 308 to the same URL on https:// (--tls-listen's port), "
               "except /.well-known/acme-challenge/ (ACME HTTP-01, RFC 8555 §8.3), which is served as usual");
  app.add_option("--hsts", cfg.hsts_seconds,
                 "Send Strict-Transport-Security: max-age=SECONDS on HTTPS responses (RFC 6797); 0: not sent")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  add_seconds(app, "--tls-ticket-key-rotation", cfg.tls_ticket_key_rotation_ms,
              "HTTPS session resumption: a new key seals session tickets this often, the one before it still opens "
              "them (so a ticket resumes for one to two periods; SIGHUP keeps the keys, a restart makes new ones); "
              "0: no session tickets (TLS 1.2 sessions still resume by session ID)",
              CLI::NonNegativeNumber);
  app.add_option("--index", cfg.index_names,
                 "A directory's index file, tried in order (repeatable; default index.html); one that an extension "
                 "mount claims (index.php with --fastcgi-pass '*.php=...') runs as that script")
      ->type_name("NAME")
      ->group(kSiteOptions);
  add_choice(app, "--follow-symlinks", cfg.follow_symlinks, spawnd::server::kSymlinkPolicyNames,
             "Which symbolic links under --root are followed: never, owner (only a link owned by the owner of what "
             "it points to, like Apache's SymLinksIfOwnerMatch) or always (also out of the root); a refused one is "
             "403")
      ->group(kSiteOptions);
  app.add_option("--deny", cfg.deny,
                 "Answer 403 for every path at or below PREFIX, before any mount (repeatable; e.g. an application's "
                 "/conf/ and /data/ that .htaccess files protect under Apache)")
      ->type_name("PREFIX")
      ->group(kSiteOptions);
  app.add_option("--precompressed", cfg.precompressed,
                 "Serve FILE.br, FILE.gz or FILE.zst (made by the site's build) instead of FILE to clients whose "
                 "Accept-Encoding allows it, preferring the codings in the order given (e.g. br,gzip), with "
                 "Content-Encoding and Vary: Accept-Encoding; a sidecar older than FILE is ignored. Off by default: "
                 "each coding costs an extra lookup per static request that accepts it (the open-file cache's, "
                 "else an open())")
      ->type_name("br|gzip|zstd,...")
      ->delimiter(',')
      ->check(CLI::IsMember({"br", "gzip", "zstd"}))
      ->group(kSiteOptions);
  app.add_option("--error-pages", cfg.error_pages,
                 "Directory of NNN.html files (404.html, 502.html, ...): the body of the error responses spawnd makes "
                 "itself with that status (never of a handler's own response); read at start-up, 64 KiB at most "
                 "each; a status without a file keeps the built-in page")
      ->type_name("DIR")
      ->check(CLI::ExistingDirectory)
      ->group(kSiteOptions);
  app.add_option("--static-cache-entries", cfg.static_cache.max_entries,
                 "Paths whose resolution (open file, stat, response head; or 404, 403, redirect) the open-file cache "
                 "keeps, least recently used evicted first; it holds at most this many open files. 0: no cache (an "
                 "open, fstat and close per static request)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 20))
      ->group(kSiteOptions);
  add_seconds(app, "--static-cache-valid", cfg.static_cache.valid_ms,
              "How long a cached path is trusted before it is checked again (a file changed, replaced, deleted or "
              "made a directory is served at most this long after the change; a large file written in place, "
              "at once)")
      ->group(kSiteOptions);
  app.add_option("--static-cache-body-bytes", cfg.static_cache.max_body_bytes,
                 "Files up to this size are cached as a snapshot of their bytes (head and body then leave in one "
                 "send); larger ones as an open file sent with sendfile. Memory: at most --static-cache-entries "
                 "times this. 0: no snapshots")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 24))
      ->group(kSiteOptions);
  app.add_option("--status-path", cfg.status_path,
                 "URL path of the status page (Prometheus text format: requests, durations, connections, handlers, "
                 "queues, 503s, database checkpoints); empty: no status page")
      ->capture_default_str()
      ->check([](const std::string& path) {
        return path.empty() || path.starts_with("/") ? std::string() : std::string("expected a path starting with /");
      });
  app.add_option("--status-allow", cfg.status_allow,
                 "Network allowed to read the status page, ADDRESS[/BITS], IPv4 or IPv6 (repeatable; default: "
                 "127.0.0.0/8 and ::1 only); other clients get 403")
      ->type_name("CIDR");
  app.add_option("--max-header-bytes", cfg.max_header_bytes,
                 "Largest request line + header fields, in bytes (414 / 431 beyond)")
      ->capture_default_str()
      ->check(CLI::Range(256, 1 << 24));
  app.add_option("--max-body-bytes", cfg.max_body_bytes, "Largest request body, in bytes (413 beyond)")
      ->capture_default_str();
  add_seconds(app, "--header-timeout", cfg.header_timeout_ms,
              "Time allowed from the first byte of a request to the end of its head (408 and close beyond)");
  add_seconds(app, "--keepalive-timeout", cfg.keepalive_timeout_ms,
              "Idle time allowed between requests on a persistent connection");
  add_seconds(app, "--io-timeout", cfg.io_timeout_ms,
              "Idle time allowed while receiving a request body or sending a response");
  app.add_option("--max-connections", cfg.max_connections,
                 "Simultaneous client connections; beyond, new ones get 503 and are closed")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  add_choice(app, "--request-buffering", cfg.request_buffering, kOnOff,
             "on: read a request body whole (memory, then a temporary file) before its handler starts, so slow "
             "senders never hold handler processes or threads; off: stream it to the running handler (large "
             "uploads, git over HTTP)");
  app.add_option("--body-buffer-bytes", cfg.body_buffer_bytes,
                 "Bytes of a buffered request body kept in memory; the rest goes to an unlinked file in "
                 "--body-temp-dir")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 30));
  app.add_option("--body-memory-limit", cfg.body_memory_limit,
                 "Bytes of request bodies held in memory by all connections together; past it, bodies go to "
                 "temporary files")
      ->capture_default_str();
  app.add_option("--max-buffered-body-bytes", cfg.max_buffered_body_bytes,
                 "Bytes of request bodies held by all connections together, memory and temporary files; a request "
                 "that would pass it gets 503 with Retry-After")
      ->capture_default_str();
  app.add_option("--body-temp-dir", cfg.body_temp_dir,
                 "Directory for the temporary files of request bodies and spooled responses (default: $TMPDIR, "
                 "else /tmp)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--max-response-temp-bytes", cfg.max_response_temp_bytes,
                 "Bytes of handler responses held in temporary files by all connections together, for clients that "
                 "read more slowly than their handler writes (the handler then need not wait for them); past it a "
                 "handler waits for its client. 0: no temporary files")
      ->capture_default_str();
  add_seconds(app, "--shutdown-grace", cfg.shutdown_grace_ms,
              "On SIGTERM/SIGINT, how long in-flight responses may take before spawnd exits");
  // Dynamic requests.
  add_choice(app, "--mode", cfg.mode, spawnd::server::kModeNames,
             "How handlers run: cgi (exec a fresh process per request), fork (SDK handlers: a warm fork "
             "server forks a fresh process per request; other programs as cgi), fastcgi (SDK handlers: "
             "persistent worker processes speaking FastCGI; other programs as cgi) or inproc (SDK handlers: "
             "their NAME.so is loaded into spawnd and called on worker threads; other programs as cgi)")
      ->group(kSiteOptions);
  app.add_option("--fork-servers", cfg.fork_servers, "--mode fork: fork servers per SDK handler (default: one per CPU)")
      ->check(CLI::Range(1, 256));
  app.add_option("--prefork", cfg.prefork,
                 "--mode fork: children each fork server keeps forked ahead of need, each with its own database "
                 "connection opened, so a request waits for neither; the pool follows the request rate between 1 "
                 "and this (0: fork at each request)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  app.add_option("--workers", cfg.workers,
                 "Handler workers (default: one per CPU): --mode inproc: threads that call handlers; --mode "
                 "fastcgi: worker processes per SDK handler")
      ->check(CLI::Range(1, 1024));
  app.add_option("--max-requests", cfg.max_requests,
                 "--mode fastcgi: replace a worker process after this many requests (default: never)");
  app.add_option("--fastcgi-pass", cfg.fastcgi_pass,
                 "Route URL PREFIX to an external FastCGI application at ADDR (unix:PATH or HOST:PORT); with @DIR "
                 "the path after PREFIX names a script in DIR, else the path is resolved under --root. PREFIX '*.EXT' "
                 "('*.php') routes every path naming an existing *.EXT file under --root (PATH_INFO after it; a "
                 "missing file is 404). Mounts naming one ADDR share its connections (repeatable)")
      ->type_name("PREFIX=ADDR[@DIR]")
      ->group(kSiteOptions);
  app.add_option("--fastcgi-keep-conn", cfg.fastcgi_keep_conn,
                 "--fastcgi-pass: idle connections kept open per application address and reused (FCGI_KEEP_CONN); 0, "
                 "the default: a connection per request (each kept one holds a php-fpm process while idle)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 16));
  add_seconds(app, "--fastcgi-idle-timeout", cfg.fastcgi_idle_timeout_ms,
              "With --fastcgi-keep-conn: an idle kept connection is closed after this long");
  app.add_option("--cgi-bin", cfg.cgi_bin,
                 "Directory of CGI programs; default: the cgi-bin directory beside the spawnd executable (the built "
                 "example handlers), if it exists")
      ->check(CLI::ExistingDirectory)
      ->group(kSiteOptions);
  app.add_option("--cgi-prefix", cfg.cgi_prefix, "URL prefix where --cgi-bin is mounted")
      ->capture_default_str()
      ->group(kSiteOptions);
  app.add_option("--cgi-ext", cfg.cgi_extensions,
                 "Run every executable file under --root whose name ends in .EXT as a CGI program, with PATH_INFO "
                 "after it (Apache's AddHandler cgi-script; repeatable; off by default)")
      ->type_name("EXT")
      ->check([](const std::string& ext) {
        const auto first = ext.find_first_not_of("*.");
        return first == std::string::npos || ext.find_first_of("/*", first) != std::string::npos
                   ? std::string("expected an extension, e.g. cgi")
                   : std::string();
      })
      ->group(kSiteOptions);
  add_seconds(app, "--handler-timeout,--cgi-timeout", cfg.cgi_timeout_ms,
              "Time a handler has to complete its response (504 beyond; a process's group is killed, an in-process "
              "call is abandoned)");
  add_seconds(app, "--kill-grace", cfg.kill_grace_ms, "Time between SIGTERM and SIGKILL for a handler's process group");
  app.add_option("--max-children", cfg.max_children, "Handler processes running at once (default: 4 x CPUs)")
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--queue", cfg.max_queue, "Requests waiting for a free handler slot; beyond, 503 with Retry-After")
      ->capture_default_str();
  add_choice(app, "--spawn", cfg.spawn_method, kSpawnMethods,
             "How a CGI child is started: vfork (clone(CLONE_VM|CLONE_VFORK) by spawnd, posix_spawn's technique "
             "without its per-call costs), posix_spawn (glibc's), or fork (fork+exec); the last two for comparison");
  app.add_option("--spawn-threads", cfg.spawn_threads,
                 "Threads that start children, so the event loop never waits in vfork (default: one per CPU; 0: "
                 "start them on the event loop)")
      ->check(CLI::Range(0, 64));
  app.add_option("--pass-env", cfg.pass_env, "Pass this variable of spawnd's environment to handlers (repeatable)")
      ->type_name("NAME");
  app.add_flag("--pass-authorization", cfg.pass_authorization,
               "Pass the Authorization field to handlers as HTTP_AUTHORIZATION");
  app.add_flag("--cgi-argv", cfg.cgi_argv,
               "Turn a query string without '=' into command-line arguments (RFC 3875 4.4; off: CVE-2012-1823)");
  app.add_option("--db", cfg.db_path, "SQLite database file of the handlers (passed as SPAWND_DB)")
      ->group(kSiteOptions);
  app.add_option("--pragmas", cfg.pragmas,
                 "PRAGMA preset for the database: default, durable, baseline, or a .sql file (passed as SPAWND_PRAGMAS)")
      ->capture_default_str()
      ->group(kSiteOptions);
  add_seconds(app, "--checkpoint-interval", cfg.checkpoint_interval_ms,
              "With --db: how often spawnd polls the database's WAL and checkpoints it (PASSIVE; RESTART from half "
              "of --wal-max-bytes) while it changes; an idle WAL is polled down to once a second");
  app.add_option("--wal-max-bytes", cfg.wal_max_bytes,
                 "With --db: the bound of the -wal file; handlers' commits checkpoint themselves from 3/4 of it "
                 "(passed as SPAWND_WAL_MAX_BYTES)")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{64 * 1024}, std::int64_t{1} << 40))
      ->group(kSiteOptions);

  auto* user = app.add_option("--user", cfg.user,
                               "Once the listening socket is bound (as root, for port 80) or taken from systemd, "
                               "switch to this user for good: handlers run as it and the files spawnd creates "
                               "(database, temporary files, sockets, logs) belong to it (default: no switch; as root, "
                               "a warning)")
                  ->type_name("NAME");
  app.add_option("--group", cfg.group, "With --user: the group to switch to (default: the user's primary group)")
      ->type_name("NAME")
      ->needs(user);
  app.add_option("--access-log", cfg.access_log, "Access log (Combined Log Format; with [[site]] tables, Apache's vhost_combined: the site and port first): "
                 "'-' for stdout, or a file (reopened on SIGHUP)")
      ->capture_default_str();
  app.add_flag("--quiet,-q", cfg.is_quiet, "No access log, and only warnings and errors on stderr (for benchmarks)");

  app.add_option("--error-log", cfg.error_log,
                 "Error log file (appended to; default: stderr); stderr is redirected to it once spawnd listens, so "
                 "handlers' stderr lands there too; reopened on SIGHUP (logrotate)")
      ->type_name("FILE");
  return app_owner;
}

// What is derived from the flags after parsing: absolute paths, "*.cgi" → ".cgi", a cgi-prefix with its slashes.
// `is_top_level`: the top-level site, whose --cgi-bin defaults to the cgi-bin directory beside the executable.
void finish(spawnd::server::Config& cfg, bool is_top_level) {
  if (cfg.cgi_bin.empty() && is_top_level) {
    // Default: the example handlers built next to this executable (build/<preset>/cgi-bin).
    std::error_code ec;
    auto beside = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "cgi-bin";
    if (!ec && std::filesystem::is_directory(beside, ec)) cfg.cgi_bin = beside.string();
  }
  if (!cfg.cgi_bin.empty()) cfg.cgi_bin = std::filesystem::absolute(cfg.cgi_bin).lexically_normal().string();
  for (std::string* path : {&cfg.tls_cert, &cfg.tls_key, &cfg.tls_ocsp_response})
    if (!path->empty()) *path = std::filesystem::absolute(*path).lexically_normal().string();
  if (!cfg.db_path.empty()) cfg.db_path = std::filesystem::absolute(cfg.db_path).lexically_normal().string();
  if (cfg.pragmas.find('/') != std::string::npos || cfg.pragmas.ends_with(".sql"))
    cfg.pragmas = std::filesystem::absolute(cfg.pragmas).lexically_normal().string();
  for (std::string& ext : cfg.cgi_extensions) ext = "." + ext.substr(ext.find_first_not_of("*."));  // "*.cgi" → ".cgi"
  if (!cfg.cgi_prefix.starts_with("/")) cfg.cgi_prefix.insert(0, "/");
  if (!cfg.cgi_prefix.ends_with("/")) cfg.cgi_prefix += "/";
}

// The command line was --help (status 0, the help printed) or wrong (status 2, the error printed).
struct UsageExit {
  int status;
};

// The configuration the command line and, with --config, the file give: what the server runs, and what SIGHUP
// reloads. Throws UsageExit for --help or a bad command line, spawnd::ConfigError for a bad file.
spawnd::server::Config load_config(int argc, char** argv, CommandOptions& command) {
  using spawnd::server::Config;
  Config cfg;
  std::unique_ptr<CLI::App> app = make_app(cfg, command);
  try {
    app->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 exits 0 for --help; any real parse error is a usage error: exit 2.
    throw UsageExit{app->exit(e) == 0 ? 0 : 2};
  }
  std::optional<spawnd::server::ConfigFile> file;
  if (!command.config_file.empty()) {
    file.emplace(command.config_file);
    file->apply_top_level(*app);
    cfg.config_file = std::filesystem::absolute(command.config_file).lexically_normal().string();
  }
  // "0: per CPU" defaults become numbers here, once; nothing after this counts CPUs.
  spawnd::server::resolve_cpu_defaults(cfg, spawnd::server::online_cpus());
  finish(cfg, true);
  if (!file) return cfg;
  for (std::size_t i = 0; i < file->site_count(); ++i) {
    // A site starts from the top level's settings, but not from its content: root, cgi-bin, db, fastcgi-pass and
    // deny are the site's own (README: Configuration file).
    spawnd::server::SiteConfig site;
    site.settings = cfg;
    site.settings.sites.clear();
    site.settings.root.clear();
    site.settings.cgi_bin.clear();
    site.settings.db_path.clear();
    site.settings.fastcgi_pass.clear();
    site.settings.deny.clear();
    CommandOptions unused;
    std::unique_ptr<CLI::App> site_app = make_app(site.settings, unused);
    site.hosts = file->apply_site(i, *site_app, site.line);
    const std::string where = file->path() + ":" + std::to_string(site.line) + ": [[site]]";
    if (site.settings.root.empty()) throw spawnd::ConfigError(where + ": needs root");
    for (const std::string& host : site.hosts)
      for (const spawnd::server::SiteConfig& other : cfg.sites)
        if (std::find(other.hosts.begin(), other.hosts.end(), host) != other.hosts.end())
          throw spawnd::ConfigError(where + ": host " + host + " is a host of the [[site]] of line " +
                                    std::to_string(other.line) + " already");
    finish(site.settings, false);
    cfg.sites.push_back(std::move(site));
  }
  return cfg;
}

// --version: spawnd's and its libraries' versions, one per line ("NAME VERSION").
void print_version() {
  const std::pair<const char*, std::string> versions[] = {
      {"spawnd", SPAWND_VERSION},
      {"SQLite", sqlite3_libversion()},
      {"llhttp", std::to_string(LLHTTP_VERSION_MAJOR) + "." + std::to_string(LLHTTP_VERSION_MINOR) + "." +
                     std::to_string(LLHTTP_VERSION_PATCH)},
      {"OpenSSL", OpenSSL_version(OPENSSL_VERSION_STRING)},
  };
  for (const auto& [name, version] : versions) std::printf("%s %s\n", name, version.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  using spawnd::server::Config;
  CommandOptions command;
  Config cfg;
  try {
    cfg = load_config(argc, argv, command);
  } catch (const UsageExit& e) {
    return e.status;
  } catch (const spawnd::Error& e) {
    std::fprintf(stderr, "spawnd: %s\n", e.what());
    return 2;
  }
  if (command.is_version) {
    print_version();
    return 0;
  }
  if (command.is_check) {
    try {
      spawnd::server::Server::check(cfg);
    } catch (const spawnd::Error& e) {
      std::fprintf(stderr, "spawnd: %s\n", e.what());
      return 2;
    }
    std::printf("configuration ok\n");
    return 0;
  }

  if (cfg.is_quiet) spawnd::log::set_level(spawnd::log::Level::Warn);
  try {
    spawnd::server::Server server(cfg);
    if (!command.config_file.empty()) {
      // SIGHUP reloads: the same command line over the file as it is now (the command line still overrides it).
      server.set_config_loader([argc, argv] {
        CommandOptions reload;
        try {
          return load_config(argc, argv, reload);
        } catch (const UsageExit&) {
          throw spawnd::ConfigError("the command line no longer parses");  // it parsed at start-up: cannot happen
        }
      });
    }
    server.run();
  } catch (const spawnd::ConfigError& e) {
    std::fprintf(stderr, "spawnd: %s\n", e.what());
    return 2;  // what it was given is wrong, as for a bad flag
  } catch (const spawnd::Error& e) {
    std::fprintf(stderr, "spawnd: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spawnd: fatal: %s\n", e.what());
    return 1;
  }
  return 0;
}
