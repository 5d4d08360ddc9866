// bench/peers.cpp — configurations and start-up of the peer servers (bench/peers.h).
#include "bench/peers.h"

#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "common/fd.h"

namespace spawnd::bench {

namespace {

// Debian's Apache module directory (apache2-bin).
constexpr const char* kApacheModules = "/usr/lib/apache2/modules";

std::string need(const std::string& program, const Target& t) {
  std::string exe = find_executable(program);
  if (exe.empty())
    throw Skip(t.label() + ": skipped: " + program + " is not installed (scripts/install-deps.sh --bench)");
  return exe;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

// A listening unix socket at `path` (replacing a stale one), connectable by anyone (the peers' workers may run as
// another user).
Fd listen_unix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw std::runtime_error("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  unlink(path.c_str());
  // SOCK_CLOEXEC is right: posix_spawn's dup2 onto fd 0 gives the handler a copy without FD_CLOEXEC.
  Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || listen(fd.get(), 1024) != 0)
    throw std::runtime_error("cannot listen on " + path + ": " + std::strerror(errno));
  chmod(path.c_str(), 0777);
  return fd;
}

std::string apache_user() {
  for (const char* name : {"www-data", "apache", "nobody"})
    if (getpwnam(name) != nullptr) return name;
  return "nobody";
}

}  // namespace

std::string lighttpd_config(const PeerSetup& s) {
  return "server.bind = \"127.0.0.1\"\n"
         "server.port = " + std::to_string(s.port) + "\n"
         "server.document-root = \"" + s.docroot + "\"\n"
         "server.errorlog = \"" + s.work_dir + "/lighttpd-error.log\"\n"
         "server.modules = (\"mod_alias\", \"mod_setenv\", \"mod_cgi\")\n"
         "server.max-connections = 1024\n"
         "alias.url = (\"/cgi-bin/\" => \"" + s.cgi_bin + "/\")\n"
         "$HTTP[\"url\"] =~ \"^/cgi-bin/\" { cgi.assign = (\"\" => \"\") }\n"
         "setenv.set-environment = (\"SPAWND_DB\" => \"" + s.db_path + "\", \"SPAWND_PRAGMAS\" => \"" + s.pragmas +
         "\", \"SPAWND_WAL_MAX_BYTES\" => \"" + std::to_string(s.wal_max_bytes) + "\")\n";
}

std::string apache_config(const PeerSetup& s) {
  std::string c = "ServerRoot \"" + s.work_dir + "\"\n"
                  "ServerName 127.0.0.1\n"
                  "Listen 127.0.0.1:" + std::to_string(s.port) + "\n"
                  "PidFile \"" + s.work_dir + "/apache.pid\"\n"
                  "ErrorLog \"" + s.work_dir + "/apache-error.log\"\n"
                  "LogLevel warn\n";
  for (const char* m : {"mpm_event", "authz_core", "alias", "env", "cgid"})
    c += std::string("LoadModule ") + m + "_module " + kApacheModules + "/mod_" + m + ".so\n";
  if (s.is_root) {
    const std::string user = apache_user();
    c += "User " + user + "\nGroup " + user + "\n";
  }
  c += "KeepAlive On\nMaxKeepAliveRequests 0\n"
       "DocumentRoot \"" + s.docroot + "\"\n"
       "<Directory \"" + s.docroot + "\">\n  Require all granted\n</Directory>\n"
       "ScriptSock \"" + s.work_dir + "/cgid.sock\"\n"
       "ScriptAlias /cgi-bin/ \"" + s.cgi_bin + "/\"\n"
       "<Directory \"" + s.cgi_bin + "\">\n  Require all granted\n</Directory>\n"
       "SetEnv SPAWND_DB \"" + s.db_path + "\"\n"
       "SetEnv SPAWND_PRAGMAS \"" + s.pragmas + "\"\n"
       "SetEnv SPAWND_WAL_MAX_BYTES \"" + std::to_string(s.wal_max_bytes) + "\"\n";
  return c;
}

std::string nginx_config(const PeerSetup& s, const std::string& mode, const std::string& fastcgi_socket) {
  const std::string& d = s.work_dir;
  std::string c = "daemon off;\nmaster_process on;\nworker_processes 1;\n";
  if (s.is_root) c += "user root;\n";
  c += "pid " + d + "/nginx.pid;\n"
       "error_log " + d + "/nginx-error.log warn;\n"
       "events { worker_connections 1024; }\n"
       "http {\n"
       "  access_log off;\n"
       "  client_body_temp_path " + d + "/nginx-body;\n"
       "  fastcgi_temp_path " + d + "/nginx-fastcgi;\n"
       "  proxy_temp_path " + d + "/nginx-proxy;\n"
       "  uwsgi_temp_path " + d + "/nginx-uwsgi;\n"
       "  scgi_temp_path " + d + "/nginx-scgi;\n"
       "  keepalive_requests 1000000;\n"
       "  server {\n"
       "    listen 127.0.0.1:" + std::to_string(s.port) + ";\n"
       "    root " + s.docroot + ";\n";
  if (mode != "static") {
    // /cgi-bin/NAME runs CGI_BIN/NAME, as under spawnd (a regex location: $fastcgi_script_name keeps the prefix).
    c += "    location ~ ^/cgi-bin/(?<script>[A-Za-z0-9_.-]+)$ {\n"
         "      fastcgi_pass unix:" + fastcgi_socket + ";\n"
         "      fastcgi_param SCRIPT_FILENAME " + s.cgi_bin + "/$script;\n";
    // The CGI meta-variables (RFC 3875 §4.1), as Debian's /etc/nginx/fastcgi_params sets them.
    for (const char* p : {"QUERY_STRING $query_string", "REQUEST_METHOD $request_method",
                          "CONTENT_TYPE $content_type", "CONTENT_LENGTH $content_length",
                          "SCRIPT_NAME $fastcgi_script_name", "REQUEST_URI $request_uri",
                          "DOCUMENT_URI $document_uri", "DOCUMENT_ROOT $document_root",
                          "SERVER_PROTOCOL $server_protocol", "REQUEST_SCHEME $scheme",
                          "GATEWAY_INTERFACE CGI/1.1", "SERVER_SOFTWARE nginx/$nginx_version",
                          "REMOTE_ADDR $remote_addr", "REMOTE_PORT $remote_port", "SERVER_ADDR $server_addr",
                          "SERVER_PORT $server_port", "SERVER_NAME $server_name", "REDIRECT_STATUS 200"})
      c += std::string("      fastcgi_param ") + p + ";\n";
    c += "      fastcgi_param SPAWND_DB " + s.db_path + ";\n"
         "      fastcgi_param SPAWND_PRAGMAS " + s.pragmas + ";\n"
         "      fastcgi_param SPAWND_WAL_MAX_BYTES " + std::to_string(s.wal_max_bytes) + ";\n"
         "    }\n";
  }
  c += "  }\n}\n";
  return c;
}

std::vector<Process> start_peer(const Target& t, const PeerSetup& s) {
  std::vector<Process> procs;
  auto start = [&](std::vector<std::string> argv, const std::string& log, int stdin_fd = -1,
                   std::vector<std::string> env = {}) {
    ProcessSpec spec;
    spec.argv = std::move(argv);
    spec.stderr_path = s.work_dir + "/" + log;
    spec.stdout_path = spec.stderr_path + ".out";
    spec.stdin_fd = stdin_fd;
    spec.env = std::move(env);
    procs.emplace_back(spec);
  };
  if (t.server == "lighttpd") {
    const std::string exe = need("lighttpd", t);
    const std::string conf = s.work_dir + "/lighttpd.conf";
    write_file(conf, lighttpd_config(s));
    start({exe, "-D", "-f", conf}, "lighttpd.stderr");
  } else if (t.server == "apache") {
    const std::string exe = need("apache2", t);
    const std::string conf = s.work_dir + "/apache.conf";
    write_file(conf, apache_config(s));
    start({exe, "-f", conf, "-DFOREGROUND"}, "apache.stderr");
  } else if (t.server == "nginx") {
    const std::string exe = need("nginx", t);
    const std::string socket = s.work_dir + "/fastcgi.sock";
    if (t.mode == "fcgiwrap") {
      const std::string fcgiwrap = need("fcgiwrap", t);
      unlink(socket.c_str());
      start({fcgiwrap, "-c", std::to_string(4 * s.cores), "-s", "unix:" + socket}, "fcgiwrap.stderr");
    } else if (t.mode == "fastcgi_pass") {
      // The handler itself as a FastCGI application: `workers` processes accept on one socket given as fd 0.
      Fd listener = listen_unix(socket);
      for (int i = 0; i < s.workers; ++i)
        start({s.cgi_bin + "/" + s.handler}, "fastcgi-app-" + std::to_string(i) + ".stderr", listener.get(),
              {"SPAWND_DB=" + s.db_path, "SPAWND_PRAGMAS=" + s.pragmas,
               "SPAWND_WAL_MAX_BYTES=" + std::to_string(s.wal_max_bytes), "PATH=/usr/local/bin:/usr/bin:/bin"});
    }
    const std::string conf = s.work_dir + "/nginx.conf";
    write_file(conf, nginx_config(s, t.mode, socket));
    start({exe, "-p", s.work_dir, "-e", s.work_dir + "/nginx-error.log", "-c", conf}, "nginx.stderr");
  } else {
    throw std::logic_error("unknown peer " + t.server);
  }
  return procs;
}

}  // namespace spawnd::bench
