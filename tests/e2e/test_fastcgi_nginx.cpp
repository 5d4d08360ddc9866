// nginx in front of a spawnd handler running as a FastCGI application: the interop recipe of handlers/README.md,
// end to end. The test starts the built guestbook handler with a listening unix socket on fd 0
// (FCGI_LISTENSOCK_FILENO, as spawn-fcgi would) and nginx (Debian's, /usr/sbin/nginx, a declared test dependency
// installed by scripts/install-deps.sh) with a generated config in a temp dir: one process, everything it writes in
// that dir, `fastcgi_pass unix:<dir>/guestbook.sock`. Then the guestbook is read and signed through nginx over HTTP.
//
// Both processes are stopped by pid on every path (Child's destructor: SIGTERM, then SIGKILL after 10 s, reaped).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

using namespace spawnd::e2e;
using namespace std::chrono_literals;

namespace {

constexpr const char* kNginx = "/usr/sbin/nginx";

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A process the test started: stdout and stderr to `log_path`, optionally `fd0` as its fd 0 (else /dev/null).
class Child {
 public:
  Child(std::vector<std::string> argv, const std::vector<std::string>& env, const std::string& log_path, int fd0 = -1)
      : log_path_(log_path) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (fd0 >= 0) {
      posix_spawn_file_actions_adddup2(&fa, fd0, 0);
    } else {
      posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    }
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<char*> args, envp;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    std::vector<std::string> env_copy = env;
    for (std::string& e : env_copy) envp.push_back(e.data());
    envp.push_back(nullptr);
    const int rc = posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) pid_ = -1;
    INFO("spawning " << argv[0] << ": " << std::strerror(rc));
    REQUIRE(rc == 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { (void)stop(); }

  [[nodiscard]] bool is_running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return true;
    pid_ = -1;
    status_ = status;
    return false;
  }
  // SIGTERM, then SIGKILL if it is still there after 10 s. Returns the wait status (-1 if it had to be killed).
  int stop() {
    if (pid_ <= 0) return status_;
    kill(pid_, SIGTERM);
    if (!wait_until([&] { return !is_running(); }, 10s)) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status_, 0);
      pid_ = -1;
      status_ = -1;
    }
    return status_;
  }
  [[nodiscard]] std::string log() const { return read_text(log_path_); }

 private:
  std::string log_path_;
  pid_t pid_ = -1;
  int status_ = -1;
};

spawnd::Fd listen_unix(const std::string& path) {
  spawnd::Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof sa.sun_path);
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  REQUIRE(bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(listen(fd.get(), 64) == 0);
  return fd;
}

// One process, no daemon, every file it writes inside `dir`; /cgi-bin/guestbook (and anything below it, as
// PATH_INFO) goes to the handler's socket with Debian's fastcgi_params.
std::string nginx_conf(const std::string& dir, std::uint16_t port) {
  return "daemon off;\n"
         "master_process off;\n"
         "worker_processes 1;\n"
         "pid " + dir + "/nginx.pid;\n"
         "error_log " + dir + "/nginx-error.log info;\n"
         "events { worker_connections 64; }\n"
         "http {\n"
         "  access_log off;\n"
         "  client_body_temp_path " + dir + "/client_body;\n"
         "  proxy_temp_path " + dir + "/proxy;\n"
         "  fastcgi_temp_path " + dir + "/fastcgi;\n"
         "  uwsgi_temp_path " + dir + "/uwsgi;\n"
         "  scgi_temp_path " + dir + "/scgi;\n"
         "  server {\n"
         "    listen 127.0.0.1:" + std::to_string(port) + ";\n"
         "    location /cgi-bin/guestbook {\n"
         "      fastcgi_split_path_info ^(/cgi-bin/guestbook)(/.*)?$;\n"
         "      include /etc/nginx/fastcgi_params;\n"
         "      fastcgi_param PATH_INFO $fastcgi_path_info;\n"
         "      fastcgi_pass unix:" + dir + "/guestbook.sock;\n"
         "    }\n"
         "  }\n"
         "}\n";
}

// SELECT count(*) ... on the handler's database, from outside.
long long scalar_count(const std::string& db, const char* sql) {
  sqlite3* conn = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &conn, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_busy_timeout(conn, 5000);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(conn, sql, -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  long long n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(conn);
  return n;
}

std::string sign_request(const std::string& body) {
  return "POST /cgi-bin/guestbook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
         "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

TEST_CASE("nginx fastcgi_pass serves the guestbook handler running as a FastCGI application", "[e2e][fastcgi]") {
  if (access(kNginx, X_OK) != 0)
    FAIL(kNginx << " is missing: nginx is a test dependency (Debian nginx-light), run scripts/install-deps.sh");

  TempDir dir;
  const std::string db = dir.path() + "/site.db";
  spawnd::Fd listener = listen_unix(dir.path() + "/guestbook.sock");
  Child handler({std::string(SPAWND_CGI_BIN_DIR) + "/guestbook"},
                {"PATH=/usr/bin:/bin", "SPAWND_DB=" + db, "SPAWND_PRAGMAS=default"}, dir.path() + "/handler.log",
                listener.get());
  listener.reset();  // the handler holds it now

  const std::uint16_t port = free_port();
  const std::string conf = dir.write("nginx.conf", nginx_conf(dir.path(), port));
  Child nginx({kNginx, "-p", dir.path(), "-c", conf, "-e", dir.path() + "/nginx-error.log"}, {},
              dir.path() + "/nginx.out");
  const bool is_up = wait_until(
      [&] {
        try {
          spawnd::Fd probe = connect_to(port);
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      10s);
  INFO("nginx error log: " << read_text(dir.path() + "/nginx-error.log") << nginx.log());
  INFO("handler stderr: " << handler.log());
  REQUIRE(is_up);

  HttpResponse empty = get(port, "/cgi-bin/guestbook");
  CHECK(empty.status == 200);
  CHECK(empty.field("Content-Type") == std::optional<std::string>("text/html; charset=utf-8"));
  CHECK(empty.body.find("<h1>Guestbook</h1>") != std::string::npos);
  CHECK(empty.body.find("No entries yet") != std::string::npos);

  HttpResponse signed_in =
      request(port, sign_request("name=%3Cscript%3Ealert(1)%3C%2Fscript%3E&message=via+nginx+%26+FastCGI"));
  CHECK(signed_in.status == 303);
  CHECK(signed_in.field("Location") == std::optional<std::string>("/cgi-bin/guestbook"));
  CHECK(scalar_count(db, "SELECT count(*) FROM guestbook WHERE name = '<script>alert(1)</script>'") == 1);

  HttpResponse page = get(port, "/cgi-bin/guestbook");
  CHECK(page.status == 200);
  CHECK(page.body.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(page.body.find("<script>") == std::string::npos);
  CHECK(page.body.find("via nginx &amp; FastCGI") != std::string::npos);

  // A second sign, and an invalid one (400, the form again), on the same handler process.
  CHECK(request(port, sign_request("name=Ada&message=second")).status == 303);
  CHECK(request(port, sign_request("name=&message=nameless")).status == 400);
  CHECK(scalar_count(db, "SELECT count(*) FROM guestbook") == 2);
  CHECK(handler.is_running());

  CHECK(nginx.stop() != -1);
  const int status = handler.stop();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
