// End-to-end tests of --user and --group (server/privileges.h): spawnd binds its listening socket as root, then
// switches to the user for good before it creates anything, so its handlers, FastCGI workers and fork servers run as
// that user and the database, its -wal and -shm files, the access log and the FastCGI sockets belong to it.
//
// The switch needs root, which the test suite has on this project's machines; run as another user, the tests that
// need root say so (WARN) and check nothing. The user switched to is "nobody" (Debian: uid 65534, group nogroup),
// whom the tests never give more than a directory of their own.
#include <catch2/catch.hpp>

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"
#include "proc.h"

using namespace spawnd::e2e;

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

struct User {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;  // primary group
};

User nobody() {
  const passwd* pw = ::getpwnam("nobody");
  REQUIRE(pw != nullptr);
  return {"nobody", pw->pw_uid, pw->pw_gid};
}

bool is_root() {
  if (::geteuid() == 0) return true;
  WARN("not root: the switch to --user cannot be tested (the project's test machines run the suite as root)");
  return false;
}

// The numbers of a line of a /proc/PID/status text: "Uid:" and "Gid:" give real, effective, saved and filesystem
// ids; "Groups:" the supplementary groups.
std::vector<long> status_numbers(const std::string& status, const std::string& field) {
  std::istringstream lines(status);
  std::vector<long> numbers;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(field, 0) != 0) continue;
    std::istringstream values(line.substr(field.size()));
    for (long n; values >> n;) numbers.push_back(n);
  }
  return numbers;
}

// Checks that process `pid` runs as `user`, from one read of its /proc/PID/status. Returns false, checking nothing,
// if the process has gone meanwhile (a child that exited between a listing of children and this read).
bool check_runs_as(pid_t pid, const User& user) {
  const std::string status = proc_file(pid, "status");
  if (status.empty()) return false;
  INFO("/proc/" << pid << "/status:\n" << status);
  CHECK(status_numbers(status, "Uid:") == std::vector<long>(4, static_cast<long>(user.uid)));
  CHECK(status_numbers(status, "Gid:") == std::vector<long>(4, static_cast<long>(user.gid)));
  for (long group : status_numbers(status, "Groups:")) CHECK(group != 0);  // root's groups were dropped too
  return true;
}

uid_t owner_of(const std::string& path) {
  struct stat st{};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_uid;
}

// A site that `user` may read: the temporary directory opened to others (mkdtemp makes it 0700), a document root, a
// cgi-bin with a script that prints the ids it runs with, and data/, which belongs to `user`.
struct Site {
  TempDir dir;
  std::string root, cgi_bin, data;

  explicit Site(const User& user) {
    fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                    fs::perms::others_read | fs::perms::others_exec);
    root = fs::path(dir.write("www/index.html", "<p>home</p>\n")).parent_path().string();
    cgi_bin = fs::path(dir.write("cgi/ids",
                                 "#!/bin/sh\n"
                                 "printf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
                                 "echo \"uid=$(id -u) gid=$(id -g) groups=$(id -G)\"\n",
                                 true))
                  .parent_path()
                  .string();
    fs::permissions(cgi_bin + "/ids", fs::perms::others_read | fs::perms::others_exec, fs::perm_options::add);
    data = dir.path() + "/data";
    fs::create_directory(data);
    REQUIRE(::chown(data.c_str(), user.uid, user.gid) == 0);
  }
};

}  // namespace

TEST_CASE("spawnd --user: binds as root, then it, its handlers and the files it creates belong to the user",
          "[e2e][privileges]") {
  if (!is_root()) return;
  const User user = nobody();
  Site site(user);
  const std::string db = site.data + "/site.db";
  const std::string access_log = site.data + "/access.log";
  Spawnd s({"--root", site.root, "--cgi-bin", site.cgi_bin, "--db", db, "--access-log", access_log, "--user",
            user.name});
  INFO(s.stderr_text());
  CHECK(s.stderr_text().find("running as user nobody (uid " + std::to_string(user.uid)) != std::string::npos);
  CHECK(check_runs_as(s.pid(), user));

  HttpResponse r = get(s.port(), "/cgi-bin/ids");
  REQUIRE(r.status == 200);
  const std::string ids = "uid=" + std::to_string(user.uid) + " gid=" + std::to_string(user.gid) + " groups=";
  CHECK(r.body.rfind(ids, 0) == 0);
  CHECK(r.body.find(" 0 ") == std::string::npos);
  CHECK(r.body.find("groups=0") == std::string::npos);
  CHECK(get(s.port(), "/").status == 200);

  // Created after the switch: the database (WAL mode, so -wal and -shm too) and the access log.
  for (const std::string& path : {db, db + "-wal", db + "-shm", access_log}) {
    INFO(path);
    CHECK(owner_of(path) == user.uid);
  }
  check_clean_end(s);
}

TEST_CASE("spawnd --user: FastCGI workers and fork servers run as the user, and the FastCGI sockets are the user's",
          "[e2e][privileges]") {
  if (!is_root()) return;
  const User user = nobody();
  Site site(user);
  for (const char* mode : {"fastcgi", "fork"}) {
    INFO("--mode " << mode);
    // TMPDIR: where the FastCGI workers' socket directory goes; the user's own directory, so it can create it.
    Spawnd s({"--root", site.root, "--cgi-bin", SPAWND_CGI_BIN_DIR, "--db", site.data + "/site.db", "--mode", mode,
              "--workers", "1", "--fork-servers", "1", "--user", user.name},
             {{"TMPDIR", site.data}});
    INFO(s.stderr_text());
    HttpResponse r = get(s.port(), "/cgi-bin/hello");
    CHECK(r.status == 200);
    CHECK(r.body == "Hello, world!\n");
    // FastCGI: a worker per example handler, all started at once; fork: hello's fork server, started by its request.
    const std::size_t persistent = std::string(mode) == "fastcgi" ? 4 : 1;
    REQUIRE(wait_until([&] { return live_children_of(s.pid()).size() >= persistent; }, milliseconds(5'000)));
    // A child listed may exit before its status is read (a fork server's pre-forked child retired, a worker
    // replaced): the ones still there are checked, and there must be as many as the persistent ones.
    std::size_t checked = 0;
    for (const ProcStat& child : live_children_of(s.pid())) checked += check_runs_as(child.pid, user) ? 1 : 0;
    CHECK(checked >= persistent);
    if (std::string(mode) == "fastcgi") {
      std::size_t sockets = 0;
      for (const auto& dir : fs::directory_iterator(site.data)) {
        if (dir.path().filename().string().rfind("spawnd-fastcgi-", 0) != 0) continue;
        CHECK(owner_of(dir.path().string()) == user.uid);
        for (const auto& socket : fs::directory_iterator(dir.path())) {
          CHECK(owner_of(socket.path().string()) == user.uid);
          ++sockets;
        }
      }
      CHECK(sockets >= 4);
    }
    check_clean_end(s);
  }
}

TEST_CASE("spawnd --user: the database and temporary files are created after the switch, as the user",
          "[e2e][privileges]") {
  if (!is_root()) return;
  const User user = nobody();
  Site site(user);
  // A directory of root's, 0755: root could create the database there, the user cannot.
  const std::string roots = site.dir.path() + "/roots";
  fs::create_directory(roots);

  SECTION("the database: a start-up failure, exit 1") {
    ExitResult r = run_spawnd({"--listen", "127.0.0.1:0", "--root", site.root, "--db", roots + "/site.db", "--user",
                               user.name});
    INFO(r.stderr_text);
    REQUIRE(WIFEXITED(r.status));
    CHECK(WEXITSTATUS(r.status) == 1);
    CHECK(r.stderr_text.find(roots + "/site.db") != std::string::npos);
    CHECK_FALSE(fs::exists(roots + "/site.db"));
  }
  SECTION("--body-temp-dir: a configuration error, exit 2") {
    ExitResult r = run_spawnd({"--listen", "127.0.0.1:0", "--root", site.root, "--body-temp-dir", roots, "--user",
                               user.name});
    INFO(r.stderr_text);
    REQUIRE(WIFEXITED(r.status));
    CHECK(WEXITSTATUS(r.status) == 2);
    CHECK(r.stderr_text.find("--body-temp-dir " + roots + ": cannot create a temporary file there") !=
          std::string::npos);
  }
}

TEST_CASE("spawnd --user or --group naming no one, or --group alone: exit 2 before anything is bound",
          "[e2e][privileges]") {
  TempDir dir;
  const std::string root = fs::path(dir.write("www/index.html", "x")).parent_path().string();
  // A port something listens on: if spawnd tried to bind it before looking the name up, the error would be EADDRINUSE.
  Spawnd other({"--root", root});
  const std::string busy = "127.0.0.1:" + std::to_string(other.port());

  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  for (const Case& c : {Case{{"--user", "no-such-user-x"}, "spawnd: --user no-such-user-x: no such user"},
                        Case{{"--user", "nobody", "--group", "no-such-group-x"},
                             "spawnd: --group no-such-group-x: no such group"},
                        Case{{"--group", "nogroup"}, "--group requires --user"}}) {
    std::vector<std::string> args{"--listen", busy, "--root", root};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    ExitResult r = run_spawnd(args);
    INFO(r.stderr_text);
    REQUIRE(WIFEXITED(r.status));
    CHECK(WEXITSTATUS(r.status) == 2);
    CHECK(r.stderr_text.find(c.message) != std::string::npos);
  }
  check_clean_end(other);
}

TEST_CASE("spawnd --user without the privilege to switch: exit 1, and as that user already: served",
          "[e2e][privileges]") {
  if (!is_root()) return;
  const User user = nobody();
  Site site(user);
  const std::string reuid = "--reuid=" + std::to_string(user.uid);
  const std::string regid = "--regid=" + std::to_string(user.gid);

  ExitResult r = run_command({"setpriv", reuid, regid, "--clear-groups", SPAWND_BINARY, "--listen",
                              "127.0.0.1:0", "--root", site.root, "--user", "daemon"},
                             10'000);
  INFO(r.stderr_text);
  REQUIRE(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 1);
  CHECK(r.stderr_text.find("spawnd: --user daemon (uid ") != std::string::npos);
  CHECK(r.stderr_text.find("spawnd must start as root to switch user") != std::string::npos);

  Spawnd s({reuid, regid, "--clear-groups", SPAWND_BINARY, "--listen", "127.0.0.1:0", "--root",
            site.root, "--cgi-bin", site.cgi_bin, "--user", user.name},
           {}, "setpriv");
  CHECK(s.stderr_text().find("already running as --user nobody") != std::string::npos);
  CHECK(get(s.port(), "/cgi-bin/ids").body.rfind("uid=" + std::to_string(user.uid) + " ", 0) == 0);
  check_clean_end(s);
}

TEST_CASE("as root without --user: spawnd serves and warns that handlers run as root", "[e2e][privileges]") {
  if (!is_root()) return;
  TempDir dir;
  Spawnd s({"--root", fs::path(dir.write("www/index.html", "x")).parent_path().string()});
  CHECK(s.stderr_text().find("warning: running as root without --user: spawnd and every handler it starts run as "
                             "root") != std::string::npos);
  CHECK(get(s.port(), "/").status == 200);
  check_clean_end(s);
}
