// SIGHUP end to end (server/server.h): the access log and the error log (--error-log) are reopened, so that after
// logrotate renamed them the next lines go to new files; with --config the configuration is reloaded: wrk's 16
// connections see no failed request across two reloads, and the new root is served after them; a bad configuration
// keeps the running one (logged); settings that need a restart are logged as ignored; and the handler processes of
// the old configuration (fork servers, FastCGI workers) retire, leaving no child and no fd behind.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "proc.h"

using namespace spawnd::e2e;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Runs `command` through the shell and returns its stdout.
std::string run_output(const std::string& command) {
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

}  // namespace

TEST_CASE("SIGHUP reopens the access log and the error log: after a rename the next lines go to new files",
          "[e2e][reload]") {
  TempDir dir;
  dir.write("www/first.txt", "1");
  dir.write("www/second.txt", "2");
  const std::string access = dir.path() + "/access.log";
  const std::string error = dir.path() + "/error.log";
  Spawnd s({"--root", dir.path() + "/www", "--access-log", access, "--error-log", error});
  CHECK(get(s.port(), "/first.txt").status == 200);
  CHECK(get(s.port(), "/no-such-file").status == 404);
  // The access log is written every 200 ms; the error log at once.
  REQUIRE(wait_until([&] { return read_file(access).find("/no-such-file") != std::string::npos; }, 5s));
  CHECK_THAT(s.stderr_text(), Catch::Contains("error log: " + error));
  fs::rename(access, access + ".1");
  fs::rename(error, error + ".1");
  ::kill(s.pid(), SIGHUP);
  REQUIRE(wait_until([&] { return read_file(error).find("logs reopened") != std::string::npos; }, 5s));
  CHECK(get(s.port(), "/second.txt").status == 200);
  REQUIRE(wait_until([&] { return fs::exists(access) && !read_file(access).empty(); }, 5s));
  check_clean_end(s);

  const std::string old_access = read_file(access + ".1");
  const std::string new_access = read_file(access);
  CHECK_THAT(old_access, Catch::Contains("GET /first.txt"));
  CHECK_THAT(old_access, !Catch::Contains("GET /second.txt"));
  CHECK_THAT(new_access, Catch::Contains("GET /second.txt"));
  CHECK_THAT(new_access, !Catch::Contains("GET /first.txt"));
  // Everything spawnd logged after start-up went to the error log file: before the rename to the old file, after it
  // to the new one (the shutdown lines too).
  CHECK_THAT(read_file(error + ".1"), !Catch::Contains("logs reopened"));
  CHECK_THAT(read_file(error), Catch::Contains("logs reopened"));
  CHECK_THAT(read_file(error), Catch::Contains("stopped"));
}

TEST_CASE("Reload under load: wrk -c16 across two SIGHUPs sees no failed request, and the new root is served",
          "[e2e][reload]") {
  TempDir dir;
  dir.write("old/index.html", "old root");
  dir.write("old/page.txt", "page of old");
  dir.write("new/index.html", "new root");
  dir.write("new/page.txt", "page of new");
  const std::string config = dir.path() + "/spawnd.toml";
  dir.write("spawnd.toml", "root = \"" + dir.path() + "/old\"\nmode = \"fork\"\naccess-log = \"" + dir.path() + "/access.log\"\n");
  Spawnd s({"--config", config, "--cgi-bin", SPAWND_CGI_BIN_DIR});
  CHECK(get(s.port(), "/").body == "old root");
  CHECK(get(s.port(), "/cgi-bin/hello").status == 200);

  // wrk mixes keep-alive requests for a static file and a handler (its fork servers belong to one configuration).
  const std::string script = dir.write("mix.lua",
                                       "local n = 0\n"
                                       "request = function()\n"
                                       "  n = n + 1\n"
                                       "  if n % 2 == 0 then return wrk.format(nil, '/cgi-bin/hello') end\n"
                                       "  return wrk.format(nil, '/page.txt')\n"
                                       "end\n");
  auto wrk = std::async(std::launch::async, [&] {
    return run_output("wrk -t2 -c16 -d4s -s " + script + " http://127.0.0.1:" + std::to_string(s.port()) + "/ 2>&1");
  });
  std::this_thread::sleep_for(1s);
  dir.write("spawnd.toml", "root = \"" + dir.path() + "/new\"\nmode = \"fork\"\naccess-log = \"" + dir.path() + "/access.log\"\n");
  REQUIRE(hang_up_and_wait(s, 1));
  std::this_thread::sleep_for(1s);
  dir.write("spawnd.toml", "root = \"" + dir.path() + "/new\"\nmode = \"cgi\"\naccess-log = \"" + dir.path() + "/access.log\"\n[[site]]\nhosts = "
                           "[\"old.example\"]\nroot = \"" + dir.path() + "/old\"\n");
  REQUIRE(hang_up_and_wait(s, 2));
  const std::string report = wrk.get();
  INFO(report);
  INFO(s.stderr_text());
  REQUIRE(std::regex_search(report, std::regex(R"((\d+) requests in)")));
  std::smatch m;
  REQUIRE(std::regex_search(report, m, std::regex(R"((\d+) requests in)")));
  CHECK(std::stol(m[1]) > 100);
  CHECK_THAT(report, !Catch::Contains("Socket errors"));
  CHECK_THAT(report, !Catch::Contains("Non-2xx or 3xx responses"));
  CHECK_THAT(s.stderr_text(), Catch::Contains("reload: configuration 2"));
  CHECK_THAT(s.stderr_text(), Catch::Contains("reload: configuration 3"));
  CHECK_THAT(s.stderr_text(), !Catch::Contains("spawnd: error:"));

  CHECK(get(s.port(), "/").body == "new root");
  CHECK(request(s.port(), "GET /page.txt HTTP/1.1\r\nHost: old.example\r\nConnection: close\r\n\r\n").body ==
        "page of old");
  CHECK(get(s.port(), "/cgi-bin/hello").status == 200);
  // The configurations replaced retire once their last request is done: their fork servers are gone.
  CHECK(wait_until([&] { return s.stderr_text().find("configuration 2 retired") != std::string::npos; }, 10s));
  CHECK(wait_until([&] { return live_children_of(s.pid()).empty(); }, 10s));
  check_clean_end(s);
}

TEST_CASE("A request in flight during a reload finishes on the old configuration, which then retires",
          "[e2e][reload]") {
  TempDir dir;
  dir.write("www/index.html", "hi");
  const std::string config =
      dir.write("spawnd.toml", "root = \"" + dir.path() + "/www\"\ncgi-bin = \"" + kCgiDir + "\"\n");
  Spawnd s({"--config", config});
  spawnd::Fd slow = connect_to(s.port());
  REQUIRE(send_all(slow, "GET /cgi-bin/sleep.sh?1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  std::this_thread::sleep_for(300ms);  // its script is running
  // The new configuration mounts the example handlers instead (the default cgi-bin): no sleep.sh there.
  dir.write("spawnd.toml", "root = \"" + dir.path() + "/www\"\n");
  REQUIRE(hang_up_and_wait(s, 1));
  CHECK(get(s.port(), "/cgi-bin/sleep.sh?0").status == 404);
  CHECK(get(s.port(), "/cgi-bin/hello").status == 200);
  const HttpResponse r = read_response(slow);
  CHECK(r.status == 200);
  CHECK(r.body == "slept 1\n");
  CHECK(wait_until([&] { return s.stderr_text().find("configuration 1 retired") != std::string::npos; }, 5s));
  check_clean_end(s);
}

TEST_CASE("A bad configuration on SIGHUP keeps the running one, and logs why", "[e2e][reload]") {
  TempDir dir;
  dir.write("www/index.html", "running");
  dir.write("other/index.html", "other");
  const std::string good = "root = \"" + dir.path() + "/www\"\n";
  const std::string config = dir.write("spawnd.toml", good);
  Spawnd s({"--config", config});
  CHECK(get(s.port(), "/").body == "running");

  int reloads = 0;
  struct Case {
    const char* what;
    std::string text;
    std::string logged;
  };
  const std::vector<Case> cases{
      {"an unknown key", "root = \"" + dir.path() + "/other\"\nnonsense = 1\n", "spawnd.toml:2: nonsense: unknown key"},
      {"a TOML syntax error", "root = \"" + dir.path() + "/other\n", "spawnd.toml:1:"},
      {"a missing root", "root = \"" + dir.path() + "/missing\"\n", "root: document root " + dir.path() + "/missing"},
      {"a [[site]] with a missing root",
       "root = \"" + dir.path() + "/other\"\n[[site]]\nhosts = [\"x.example\"]\nroot = \"/nonexistent/x\"\n",
       "root (site x.example)"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    dir.write("spawnd.toml", c.text);
    REQUIRE(hang_up_and_wait(s, ++reloads));
    const std::string err = s.stderr_text();
    CHECK_THAT(err, Catch::Contains("spawnd: error: reload: "));
    CHECK_THAT(err, Catch::Contains(c.logged));
    CHECK_THAT(err, Catch::Contains("still serving configuration 1"));
    CHECK(get(s.port(), "/").body == "running");
  }

  // A restart-only setting is kept, and said so; the rest of the configuration applies.
  dir.write("spawnd.toml", "root = \"" + dir.path() + "/other\"\nkill-grace = 3\nbody-memory-limit = 100000\n");
  REQUIRE(hang_up_and_wait(s, ++reloads));
  CHECK_THAT(s.stderr_text(), Catch::Contains("reload: body-memory-limit, kill-grace changed: ignored until restart"));
  CHECK(get(s.port(), "/").body == "other");
  check_clean_end(s);
}

TEST_CASE("Reloads leave no handler process and no fd behind, in fork and fastcgi modes", "[e2e][reload]") {
  const std::string mode = GENERATE(std::string("fork"), std::string("fastcgi"));
  INFO("--mode " << mode);
  TempDir dir;
  dir.write("www/index.html", "hi");
  const std::string config = dir.write("spawnd.toml", "root = \"" + dir.path() + "/www\"\nmode = \"" + mode +
                                                          "\"\nworkers = 2\nfork-servers = 2\ndb = \"" + dir.path() +
                                                          "/site.db\"\n");
  Spawnd s({"--config", config, "--cgi-bin", SPAWND_CGI_BIN_DIR});
  // Warm up: every handler used once, its persistent processes started.
  const std::vector<std::string> targets = {"/cgi-bin/hello", "/cgi-bin/kv?prefix=", "/cgi-bin/guestbook"};
  for (const std::string& target : targets) CHECK(get(s.port(), target).status == 200);
  // The persistent processes of one configuration: fork mode starts 2 fork servers for each handler at its first
  // request, FastCGI 2 workers for every handler in the directory at start-up (an executable that is no dotfile; all
  // of them are SDK handlers there); both in the background.
  std::size_t handlers = targets.size();
  if (mode == "fastcgi") {
    handlers = 0;
    for (const auto& entry : std::filesystem::directory_iterator(SPAWND_CGI_BIN_DIR)) {
      const std::string name = entry.path().filename().string();
      const bool is_executable = (entry.status().permissions() & std::filesystem::perms::owner_exec) !=
                                 std::filesystem::perms::none;
      if (entry.is_regular_file() && is_executable && !name.starts_with('.') && !name.ends_with(".so")) ++handlers;
    }
  }
  const std::size_t processes = 2 * handlers;
  REQUIRE(wait_until([&] { return live_children_of(s.pid()).size() == processes; }, 20s));
  const std::size_t fds = fd_count(s.pid());
  const std::vector<std::string> fds_before = fd_targets(s.pid());

  for (int i = 1; i <= 3; ++i) {
    REQUIRE(hang_up_and_wait(s, i));
    for (const std::string& target : targets) CHECK(get(s.port(), target).status == 200);
  }
  // The old configurations retire (their requests are over) and their processes exit; the new one has as many as
  // the first had.
  CHECK(wait_until([&] { return s.stderr_text().find("configuration 3 retired") != std::string::npos; }, 10s));
  CHECK(wait_until([&] { return live_children_of(s.pid()).size() == processes; }, 20s));
  // Among them the database's: a reload shares the keeper (db_keeper.h's DbKeepers says why a second connection to
  // the file would leave an fd behind).
  INFO("fds before the reloads: " << Catch::Detail::stringify(fds_before));
  const bool is_back = wait_until([&] { return fd_count(s.pid()) <= fds + 2; }, 10s);
  INFO("fds after: " << Catch::Detail::stringify(fd_targets(s.pid())));
  CHECK(is_back);
  INFO(s.stderr_text());
  check_clean_end(s);
}
