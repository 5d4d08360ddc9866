// End-to-end tests of `spawnd --fastcgi-pass PREFIX=ADDR[@DIR]` (issue 6): spawnd as the FastCGI client of
// applications it did not start. Three kinds of application, each started by the test itself on a unix socket in a
// temporary directory and stopped by pid (its whole process group) however the test ends:
//   - fcgiwrap (Debian), running the shell/Perl/Python CGI scripts of tests/cgi;
//   - php-fpm (Debian, /usr/sbin/php-fpm*), running a PHP script written into a temporary --root;
//   - tests/fastcgi/bad_app.py, a scripted responder that misbehaves on request (see its header), and logs what it
//     receives to a file the tests read.
// fcgiwrap and php-fpm are test dependencies (scripts/install-deps.sh): a missing one fails the test, never skips it.
// Every wait is bounded; no test asserts how fast anything is. Starting and stopping the applications: daemon.h.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "daemon.h"
#include "harness.h"
#include "proc.h"


using namespace spawnd::e2e;
using spawnd::Fd;

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

const std::string kBadApp = fs::path(SPAWND_SOURCE_DIR "/tests/fastcgi/bad_app.py").lexically_normal().string();
const std::string kFcgiwrap = "/usr/sbin/fcgiwrap";
constexpr int kReplyTimeoutMs = 15'000;     // generous: 2 cores shared with other suites under ctest -j2
constexpr milliseconds kEventTimeout{5'000};   // for something to show up in a log

bool contains(std::string_view haystack, std::string_view needle) { return haystack.find(needle) != std::string::npos; }

std::size_t count_of(std::string_view haystack, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string_view::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

// The CPU time (user + system, in clock ticks) process `pid` has used so far: fields 14 and 15 of /proc/PID/stat.
long cpu_ticks(pid_t pid) {
  const std::string stat = proc_file(pid, "stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));  // after "pid (comm) "
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

Fd open_connection(std::uint16_t port) { return connect_to(port, kReplyTimeoutMs); }

HttpResponse fetch(std::uint16_t port, std::string_view target) { return get(port, target, kReplyTimeoutMs); }

std::string keep_alive_get(std::string_view target) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
}

std::string post_request(const std::string& target, std::string_view body, std::string_view content_type,
                         bool keep_alive = false) {
  std::string r = "POST " + target + " HTTP/1.1\r\nHost: localhost\r\n";
  r += "Content-Type: " + std::string(content_type) + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (!keep_alive) r += "Connection: close\r\n";
  r += "\r\n";
  r += body;
  return r;
}

HttpResponse post(std::uint16_t port, const std::string& target, std::string_view body,
                  std::string_view content_type = "application/octet-stream") {
  Fd c = open_connection(port);
  std::string leftover;
  // The body is written by a thread of its own: spawnd may answer (or fail) before it has read all of it.
  std::thread writer([&] { (void)send_all(c, post_request(target, body, content_type)); });
  HttpResponse r = read_response(c, leftover, false, kReplyTimeoutMs);
  ::shutdown(c.get(), SHUT_RDWR);
  writer.join();
  return r;
}

// "NAME=value" lines (env.sh's "env:NAME=value", bad_app's params mode, app.php's output) as a map.
std::map<std::string, std::string> parse_lines(const std::string& body, std::string_view line_prefix = "") {
  std::map<std::string, std::string> out;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(line_prefix)) continue;
    line.erase(0, line_prefix.size());
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    out.emplace(line.substr(0, eq), line.substr(eq + 1));
  }
  return out;
}

std::optional<std::string> value_of(const std::map<std::string, std::string>& m, const std::string& name) {
  auto it = m.find(name);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// ---- fcgiwrap ---------------------------------------------------------------------------------------------------

// fcgiwrap on <tmp>/fw.sock, and spawnd with --fastcgi-pass /fcgi-bin/=unix:<tmp>/fw.sock@tests/cgi.
struct FcgiwrapSite {
  TempDir dir;   // the socket and fcgiwrap's output
  TempDir root;  // spawnd's --root
  std::string sock = dir.path() + "/fw.sock";
  std::string log = dir.path() + "/fcgiwrap.log";
  std::unique_ptr<Daemon> fcgiwrap;
  std::unique_ptr<Spawnd> server;

  FcgiwrapSite() {
    require_executable(kFcgiwrap, "fcgiwrap");
    root.write("index.html", "static index\n");
    root.write("redirected.txt", "the local redirect target\n");
    fcgiwrap = std::make_unique<Daemon>(std::vector<std::string>{kFcgiwrap, "-c", "2", "-s", "unix:" + sock}, log);
    wait_listening(*fcgiwrap, sock, {log});
    server = std::make_unique<Spawnd>(std::vector<std::string>{
        "--root", root.path(), "--quiet", "--fastcgi-pass", "/fcgi-bin/=unix:" + sock + "@" + kCgiDir});
  }
  [[nodiscard]] std::uint16_t port() const { return server->port(); }
};

// ---- php-fpm ----------------------------------------------------------------------------------------------------

// What app.php prints: its SCRIPT_FILENAME, SCRIPT_NAME, PATH_INFO and method, then "GET:k=v" and "POST:k=v" lines.
// ?redirect sends only a Location header; ?missing answers http_response_code(404).
constexpr std::string_view kAppPhp = R"php(<?php
if (isset($_GET['redirect'])) { header('Location: /index.html'); exit; }
if (isset($_GET['missing'])) { http_response_code(404); header('Content-Type: text/plain'); echo "no such thing\n"; exit; }
header('Content-Type: text/plain');
echo 'SCRIPT_FILENAME=', $_SERVER['SCRIPT_FILENAME'], "\n";
echo 'SCRIPT_NAME=', $_SERVER['SCRIPT_NAME'], "\n";
echo 'PATH_INFO=', $_SERVER['PATH_INFO'] ?? '(unset)', "\n";
echo 'METHOD=', $_SERVER['REQUEST_METHOD'], "\n";
foreach ($_GET as $k => $v) echo "GET:$k=$v\n";
foreach ($_POST as $k => $v) echo "POST:$k=$v\n";
)php";

// php-fpm (static pool of 2) on <tmp>/fpm.sock, and spawnd with --root <docroot> --fastcgi-pass /app.php=unix:...
struct PhpFpmSite {
  TempDir dir;   // configuration, pid file, logs, socket
  TempDir root;  // spawnd's --root, with app.php
  std::unique_ptr<PhpFpm> fpm;
  std::unique_ptr<Spawnd> server;

  PhpFpmSite() {
    root.write("app.php", kAppPhp);
    root.write("index.html", "static index\n");
    fpm = std::make_unique<PhpFpm>(dir, 2);
    server = std::make_unique<Spawnd>(std::vector<std::string>{
        "--root", root.path(), "--quiet", "--fastcgi-pass", "/app.php=unix:" + fpm->sock});
  }
  [[nodiscard]] std::uint16_t port() const { return server->port(); }
};

// ---- tests/fastcgi/bad_app.py --------------------------------------------------------------------------------------

// bad_app.py on <tmp>/bad.sock (state and log in <tmp>), and spawnd with --fastcgi-pass /bad/=unix:<tmp>/bad.sock@DIR
// plus `extra` flags ("@SOCK" in one stands for the socket's path); with `keep_conn` (most tests: they are about kept-open connections) --fastcgi-keep-conn 8.
struct BadAppSite {
  TempDir dir;
  TempDir root;
  std::string sock = dir.path() + "/bad.sock";
  std::string output = dir.path() + "/bad_app.out";
  std::unique_ptr<Daemon> app;
  std::unique_ptr<Spawnd> server;

  explicit BadAppSite(std::vector<std::string> extra = {}, bool keep_conn = true) {
    require_executable("/usr/bin/python3", "python3");
    root.write("index.html", "static index\n");
    app = std::make_unique<Daemon>(std::vector<std::string>{"/usr/bin/python3", kBadApp, sock, dir.path()}, output);
    wait_listening(*app, sock, {output}, /*probe=*/false);  // bad_app.py renames its socket into place once listening
    std::vector<std::string> args{"--root", root.path(), "--quiet", "--fastcgi-pass",
                                  "/bad/=unix:" + sock + "@/srv/bad"};
    if (keep_conn) args.insert(args.end(), {"--fastcgi-keep-conn", "8"});
    for (std::string& arg : extra) {  // "@SOCK" in an argument names the application's socket
      if (const auto at = arg.find("@SOCK"); at != std::string::npos) arg.replace(at, 5, sock);
      args.push_back(arg);
    }
    server = std::make_unique<Spawnd>(args);
  }
  [[nodiscard]] std::uint16_t port() const { return server->port(); }
  // What the application logged so far (see bad_app.py).
  [[nodiscard]] std::string app_log() const { return read_file(dir.path() + "/log"); }
  // Waits (bounded) until the application's log contains `text`.
  [[nodiscard]] bool wait_logged(std::string_view text) const {
    return wait_until([&] { return contains(app_log(), text); }, kEventTimeout);
  }
  // spawnd still serves: the application's ok mode and a static file, each on a fresh connection.
  void check_still_serving() const {
    const HttpResponse ok = fetch(port(), "/bad/ok");
    CHECK(ok.status == 200);
    CHECK(ok.body.starts_with("ok conn="));
    const HttpResponse index = fetch(port(), "/index.html");
    CHECK(index.status == 200);
    CHECK(index.body == "static index\n");
  }
};

}  // namespace

// ================================================= fcgiwrap =======================================================

TEST_CASE("fcgiwrap runs a shell CGI script mounted with --fastcgi-pass PREFIX=unix:SOCK@DIR", "[e2e][fastcgi-pass]") {
  FcgiwrapSite site;
  const HttpResponse r = fetch(site.port(), "/fcgi-bin/hello.sh");
  CHECK(r.status == 200);
  CHECK(r.body == "hello\n");
  CHECK(r.field("Content-Type") == std::optional<std::string>("text/plain"));
  // A script that is not there: fcgiwrap's own answer (it stats SCRIPT_FILENAME: 403 or 404), passed through.
  const HttpResponse missing = fetch(site.port(), "/fcgi-bin/no-such-script.sh");
  CHECK((missing.status == 403 || missing.status == 404));
  check_clean_end(*site.server);
}

TEST_CASE("through fcgiwrap a script sees SCRIPT_NAME, SCRIPT_FILENAME, PATH_INFO and QUERY_STRING as in CGI mode",
          "[e2e][fastcgi-pass]") {
  FcgiwrapSite site;
  const HttpResponse r = fetch(site.port(), "/fcgi-bin/env.sh/x/y?a=1");
  REQUIRE(r.status == 200);
  INFO(r.body);
  const auto env = parse_lines(r.body, "env:");
  CHECK(value_of(env, "SCRIPT_NAME") == std::optional<std::string>("/fcgi-bin/env.sh"));
  CHECK(value_of(env, "SCRIPT_FILENAME") == std::optional<std::string>(kCgiDir + "/env.sh"));
  CHECK(value_of(env, "PATH_INFO") == std::optional<std::string>("/x/y"));
  CHECK(value_of(env, "QUERY_STRING") == std::optional<std::string>("a=1"));
  CHECK(value_of(env, "REQUEST_METHOD") == std::optional<std::string>("GET"));
  CHECK(value_of(env, "GATEWAY_INTERFACE") == std::optional<std::string>("CGI/1.1"));
  CHECK(value_of(env, "REQUEST_URI") == std::optional<std::string>("/fcgi-bin/env.sh/x/y?a=1"));
  CHECK(value_of(env, "DOCUMENT_ROOT") == std::optional<std::string>(fs::canonical(site.root.path()).string()));
  check_clean_end(*site.server);
}

TEST_CASE("through fcgiwrap a POST body reaches echo.py intact, also when it spans several FCGI_STDIN records",
          "[e2e][fastcgi-pass]") {
  const std::size_t size = GENERATE(as<std::size_t>{}, 0, 1, 65535, 65536, 200'000);
  CAPTURE(size);
  FcgiwrapSite site;
  const std::string body = random_bytes(size, static_cast<unsigned>(size) + 1);
  const HttpResponse r = post(site.port(), "/fcgi-bin/echo.py", body, "application/x-test");
  REQUIRE(r.status == 200);
  CHECK(r.field("X-Content-Length") == std::optional<std::string>(std::to_string(size)));
  CHECK(r.field("X-Content-Type") == std::optional<std::string>("application/x-test"));
  CHECK(r.body.size() == size);
  CHECK(r.body == body);
  check_clean_end(*site.server);
}

TEST_CASE("several requests through fcgiwrap share one keep-alive client connection", "[e2e][fastcgi-pass]") {
  FcgiwrapSite site;
  Fd c = open_connection(site.port());
  std::string leftover;
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    REQUIRE(send_all(c, keep_alive_get("/fcgi-bin/hello.sh")));
    HttpResponse r = read_response(c, leftover, false, kReplyTimeoutMs);
    CHECK(r.status == 200);
    CHECK(r.body == "hello\n");

    const std::string body = random_bytes(70'000, static_cast<unsigned>(round));
    REQUIRE(send_all(c, post_request("/fcgi-bin/echo.py", body, "application/octet-stream", true)));
    r = read_response(c, leftover, false, kReplyTimeoutMs);
    CHECK(r.status == 200);
    CHECK(r.body == body);

    REQUIRE(send_all(c, keep_alive_get("/fcgi-bin/env.sh/round?r=" + std::to_string(round))));
    r = read_response(c, leftover, false, kReplyTimeoutMs);
    CHECK(r.status == 200);
    CHECK(value_of(parse_lines(r.body, "env:"), "QUERY_STRING") ==
          std::optional<std::string>("r=" + std::to_string(round)));
  }
  // Pipelined: both requests in one write, both answered in order.
  REQUIRE(send_all(c, keep_alive_get("/fcgi-bin/hello.sh") + keep_alive_get("/fcgi-bin/status.sh?410")));
  HttpResponse first = read_response(c, leftover, false, kReplyTimeoutMs);
  HttpResponse second = read_response(c, leftover, false, kReplyTimeoutMs);
  CHECK(first.status == 200);
  CHECK(first.body == "hello\n");
  CHECK(second.status == 410);
  c.reset();
  check_clean_end(*site.server);
}

TEST_CASE("through fcgiwrap Status, client-redirect and local-redirect responses behave as in CGI mode",
          "[e2e][fastcgi-pass]") {
  FcgiwrapSite site;
  SECTION("Status") {
    const HttpResponse r = fetch(site.port(), "/fcgi-bin/status.sh");
    CHECK(r.status == 404);
    CHECK(r.status_line == "HTTP/1.1 404 Not Found");
    CHECK(r.field("X-Script") == std::optional<std::string>("status.sh"));
    CHECK(r.body == "status 404 from the script\n");
    const HttpResponse custom = fetch(site.port(), "/fcgi-bin/status.sh?418");
    CHECK(custom.status_line == "HTTP/1.1 418 Custom Reason");
    CHECK(custom.field("Status") == std::nullopt);  // the CGI Status field is consumed, not forwarded
  }
  SECTION("client redirect") {
    const HttpResponse r = fetch(site.port(), "/fcgi-bin/redirect.sh");
    CHECK(r.status == 302);
    CHECK(r.field("Location") == std::optional<std::string>("http://example.test/elsewhere?from=redirect.sh"));
  }
  SECTION("local redirect") {
    const HttpResponse r = fetch(site.port(), "/fcgi-bin/local-redirect.sh");
    CHECK(r.status == 200);
    CHECK(r.body == "the local redirect target\n");
    CHECK(r.field("Location") == std::nullopt);
    // A local redirect to another script behind the same application.
    const HttpResponse again = fetch(site.port(), "/fcgi-bin/local-redirect.sh?fcgi-bin/env.sh/after");
    CHECK(again.status == 200);
    CHECK(value_of(parse_lines(again.body, "env:"), "PATH_INFO") == std::optional<std::string>("/after"));
  }
  check_clean_end(*site.server);
}

// ================================================= php-fpm ========================================================

TEST_CASE("php-fpm runs a PHP script mounted by its exact path, with SCRIPT_FILENAME under --root",
          "[e2e][fastcgi-pass][php]") {
  PhpFpmSite site;
  const std::string script = fs::canonical(site.root.path()).string() + "/app.php";

  const HttpResponse r = fetch(site.port(), "/app.php?name=spawnd&n=42");
  REQUIRE(r.status == 200);
  INFO(r.body);
  auto out = parse_lines(r.body);
  CHECK(value_of(out, "SCRIPT_FILENAME") == std::optional<std::string>(script));
  CHECK(value_of(out, "SCRIPT_NAME") == std::optional<std::string>("/app.php"));
  CHECK(value_of(out, "PATH_INFO") == std::optional<std::string>("(unset)"));
  CHECK(value_of(out, "METHOD") == std::optional<std::string>("GET"));
  CHECK(value_of(out, "GET:name") == std::optional<std::string>("spawnd"));
  CHECK(value_of(out, "GET:n") == std::optional<std::string>("42"));

  const HttpResponse p = post(site.port(), "/app.php?from=query", "field=value+1&other=%C3%A9",
                              "application/x-www-form-urlencoded");
  REQUIRE(p.status == 200);
  INFO(p.body);
  out = parse_lines(p.body);
  CHECK(value_of(out, "METHOD") == std::optional<std::string>("POST"));
  CHECK(value_of(out, "GET:from") == std::optional<std::string>("query"));
  CHECK(value_of(out, "POST:field") == std::optional<std::string>("value 1"));
  CHECK(value_of(out, "POST:other") == std::optional<std::string>("\xC3\xA9"));

  const HttpResponse extra = fetch(site.port(), "/app.php/extra");
  REQUIRE(extra.status == 200);
  INFO(extra.body);
  out = parse_lines(extra.body);
  CHECK(value_of(out, "PATH_INFO") == std::optional<std::string>("/extra"));
  CHECK(value_of(out, "SCRIPT_FILENAME") == std::optional<std::string>(script));
  CHECK(value_of(out, "SCRIPT_NAME") == std::optional<std::string>("/app.php"));
  check_clean_end(*site.server);
}

TEST_CASE("a path that only starts like the PHP script's prefix is not the script", "[e2e][fastcgi-pass][php]") {
  PhpFpmSite site;
  for (const char* target : {"/app.phpx", "/app.phpx/extra", "/app.php.bak"}) {
    CAPTURE(target);
    const HttpResponse r = fetch(site.port(), target);
    CHECK(r.status == 404);
    CHECK_FALSE(contains(r.body, "<?php"));
  }
  check_clean_end(*site.server);
}

TEST_CASE("a spelling of the PHP script's path that normalises to it never serves its source",
          "[e2e][fastcgi-pass][php]") {
  // Static files normalise the path ("//" → "/", "%2e" → ".", "/./" → "/"); were the mount matched on the raw path,
  // these would miss the /app.php mount and come back from the document root as the script's source.
  PhpFpmSite site;
  for (const char* target : {"//app.php", "/app%2ephp", "/./app.php", "/%61pp.php", "/x/../app.php"}) {
    CAPTURE(target);
    const HttpResponse r = fetch(site.port(), target);
    CHECK_FALSE(contains(r.body, "<?php"));
    CHECK_FALSE(contains(r.body, "$_SERVER"));
    CHECK((r.status == 200 || r.status == 404));
  }
  check_clean_end(*site.server);
}

TEST_CASE("a PHP Location header and http_response_code pass through spawnd", "[e2e][fastcgi-pass][php]") {
  PhpFpmSite site;
  // PHP adds "Status: 302 Found" to a Location header of its own accord, so this is a redirect for the client to
  // follow (as behind nginx), not a CGI local redirect.
  const HttpResponse redirect = fetch(site.port(), "/app.php?redirect=1");
  CHECK(redirect.status == 302);
  CHECK(redirect.field("Location") == std::optional<std::string>("/index.html"));
  const HttpResponse missing = fetch(site.port(), "/app.php?missing=1");
  CHECK(missing.status == 404);
  CHECK(missing.body == "no such thing\n");
  check_clean_end(*site.server);
}

// ============================================ failure paths (bad_app.py) ==========================================

TEST_CASE("nothing listening at the FastCGI address gives 502, not a wait for the timeout", "[e2e][fastcgi-pass]") {
  TempDir dir;
  TempDir root;
  root.write("index.html", "static index\n");
  const std::string absent = dir.path() + "/nobody.sock";
  dir.write("stale.sock", "");  // a plain file where a socket should be
  Spawnd s({"--root", root.path(), "--quiet", "--cgi-timeout", "60", "--fastcgi-pass", "/none/=unix:" + absent,
            "--fastcgi-pass", "/stale/=unix:" + dir.path() + "/stale.sock", "--fastcgi-pass", "/tcp/=127.0.0.1:1"});
  for (const char* target : {"/none/x", "/stale/x", "/tcp/x", "/none/again"}) {
    CAPTURE(target);
    // Bounded far below --cgi-timeout: a 502 arriving at all within this wait means spawnd did not sit out the
    // timeout.
    const HttpResponse r = get(s.port(), target, 10'000);
    CHECK(r.status == 502);
  }
  CHECK(fetch(s.port(), "/index.html").status == 200);
  check_clean_end(s);
}

TEST_CASE("a FastCGI application that breaks the protocol gets 502 and spawnd keeps serving", "[e2e][fastcgi-pass]") {
  // Each mode of bad_app.py that answers with something spawnd must refuse (see bad_app.py).
  const std::string mode = GENERATE(as<std::string>{}, "close", "version2", "badheader", "noheader", "endfirst",
                                    "wrongid", "unknowntype", "badend", "status101", "badredirect");
  CAPTURE(mode);
  BadAppSite site;
  const HttpResponse r = fetch(site.port(), "/bad/" + mode);
  CHECK(r.status == 502);
  CHECK(site.wait_logged("mode=" + mode));
  site.check_still_serving();
  // The same again on a connection that served a request before (kept open, FCGI_KEEP_CONN).
  const HttpResponse again = fetch(site.port(), "/bad/" + mode);
  CHECK(again.status == 502);
  site.check_still_serving();
  INFO("bad_app.py's log:\n" << site.app_log());
  // The log line (stderr is collected by a reader thread: wait for it). Bad handler output, rather than a broken
  // protocol, is named in it.
  const std::string logged = mode == "status101"     ? "bad response header: Status 101"
                             : mode == "badredirect" ? "bad response header: local-redirect Location"
                                                     : "fastcgi";
  CHECK(wait_until([&] { return contains(site.server->stderr_text(), logged); }, kEventTimeout));
  check_clean_end(*site.server);
}

TEST_CASE("the FCGI_PARAMS sent to an application are the CGI meta-variables, split with @DIR",
          "[e2e][fastcgi-pass]") {
  BadAppSite site;
  const HttpResponse r = fetch(site.port(), "/bad/params/a%20b/c?x=1&y=2");
  REQUIRE(r.status == 200);
  INFO(r.body);
  const auto params = parse_lines(r.body);
  CHECK(value_of(params, "SCRIPT_NAME") == std::optional<std::string>("/bad/params"));
  CHECK(value_of(params, "SCRIPT_FILENAME") == std::optional<std::string>("/srv/bad/params"));
  CHECK(value_of(params, "PATH_INFO") == std::optional<std::string>("/a b/c"));
  CHECK(value_of(params, "QUERY_STRING") == std::optional<std::string>("x=1&y=2"));
  CHECK(value_of(params, "REQUEST_METHOD") == std::optional<std::string>("GET"));
  CHECK(value_of(params, "GATEWAY_INTERFACE") == std::optional<std::string>("CGI/1.1"));
  CHECK(value_of(params, "SERVER_PORT") == std::optional<std::string>(std::to_string(site.port())));
  CHECK(value_of(params, "CONTENT_LENGTH") == std::nullopt);
  CHECK(site.wait_logged("mode=params method=GET keep=1"));  // FCGI_KEEP_CONN asked for
  // Paths that name no script under the prefix never reach the application.
  for (const char* target : {"/bad/", "/bad/.hidden", "/bad/../index.html/x", "/bad/%2e%2e/x"}) {
    CAPTURE(target);
    const HttpResponse no = fetch(site.port(), target);
    CHECK(no.status != 200);
  }
  CHECK(count_of(site.app_log(), " req=") == 1);
  check_clean_end(*site.server);
}

TEST_CASE("a POST body longer than one FastCGI record arrives whole, in FCGI_STDIN records of at most 65535 bytes",
          "[e2e][fastcgi-pass]") {
  BadAppSite site;
  const std::string body = random_bytes(300'000, 7);
  const HttpResponse r = post(site.port(), "/bad/echo", body);
  REQUIRE(r.status == 200);
  CHECK(r.body.size() == body.size());
  CHECK(r.body == body);
  REQUIRE(site.wait_logged("stdin-records="));
  const std::string log = site.app_log();
  const auto at = log.find("stdin-records=") + std::strlen("stdin-records=");
  std::istringstream sizes(log.substr(at, log.find('\n', at) - at));
  std::size_t total = 0, records = 0;
  for (std::string n; std::getline(sizes, n, ',');) {
    const std::size_t size = std::stoul(n);
    CHECK(size <= 65535);
    CHECK(size > 0);
    total += size;
    ++records;
  }
  CHECK(total == body.size());
  CHECK(records >= 5);
  check_clean_end(*site.server);
}

TEST_CASE("a FastCGI application that never answers gets 504 after --cgi-timeout", "[e2e][fastcgi-pass]") {
  BadAppSite site({"--cgi-timeout", "1"});
  const HttpResponse r = fetch(site.port(), "/bad/hang");
  CHECK(r.status == 504);
  // spawnd gave up on that connection: the application sees it close.
  CHECK(site.wait_logged("conn=1 eof"));
  site.check_still_serving();
  check_clean_end(*site.server);
}

TEST_CASE("FCGI_STDERR lines of an application appear in spawnd's log, tagged as FastCGI", "[e2e][fastcgi-pass]") {
  BadAppSite site;
  const HttpResponse r = fetch(site.port(), "/bad/stderr");
  CHECK(r.status == 200);
  CHECK(r.body.starts_with("ok conn="));
  const bool is_logged = wait_until(
      [&] { return contains(site.server->stderr_text(), "bad-app: second stderr line"); }, kEventTimeout);
  const std::string log = site.server->stderr_text();
  INFO("spawnd's stderr:\n" << log);
  CHECK(is_logged);
  // One log line per stderr line, each tagged "fastcgi[<request>] <application>: ".
  for (const char* line : {"bad-app: first stderr line", "bad-app: second stderr line"}) {
    CAPTURE(line);
    const auto at = log.find(line);
    REQUIRE(at != std::string::npos);
    const auto begin = log.rfind('\n', at) + 1;
    const std::string whole = log.substr(begin, log.find('\n', at) - begin);
    CAPTURE(whole);
    CHECK(whole.starts_with("spawnd: warning: fastcgi["));
    CHECK(contains(whole, site.sock));
    CHECK(whole.ends_with(line));
  }
  check_clean_end(*site.server);
}

TEST_CASE("a client that disconnects mid-response makes spawnd send FCGI_ABORT_REQUEST", "[e2e][fastcgi-pass]") {
  BadAppSite site;
  {
    Fd c = open_connection(site.port());
    REQUIRE(send_all(c, keep_alive_get("/bad/stream")));
    std::string buf;
    REQUIRE(read_until(c, buf, "tick 2\n", kReplyTimeoutMs));
    CHECK(buf.starts_with("HTTP/1.1 200"));
  }  // closed mid-response
  CHECK(site.wait_logged("conn=1 abort id=1"));
  CHECK(site.wait_logged("conn=1 ended stream aborted=1"));
  INFO("bad_app.py's log:\n" << site.app_log());
  // The application ended the aborted request; its connection is reused for the next one.
  const HttpResponse r = fetch(site.port(), "/bad/ok");
  CHECK(r.status == 200);
  CHECK(r.body == "ok conn=1 req=2\n");
  check_clean_end(*site.server);
}

TEST_CASE("a local redirect answered by an application leaves its connection fit for the next request",
          "[e2e][fastcgi-pass]") {
  // The application ends the request in the same write as the redirect: spawnd must not send FCGI_ABORT_REQUEST
  // for a request that has ended, which a strict application (php-fpm, bad_app.py) reads as a broken stream.
  BadAppSite site;
  const HttpResponse r = fetch(site.port(), "/bad/localredirect");
  CHECK(r.status == 200);
  CHECK(r.body == "static index\n");
  const HttpResponse p = post(site.port(), "/bad/echo", "after the redirect");
  CHECK(p.status == 200);
  CHECK(p.body == "after the redirect");
  INFO("bad_app.py's log:\n" << site.app_log());
  CHECK_FALSE(contains(site.app_log(), "before FCGI_BEGIN_REQUEST"));
  CHECK(count_of(site.app_log(), " accepted") == 1);
  check_clean_end(*site.server);
}

TEST_CASE("an application that closes a kept-open connection does not fail the next GET", "[e2e][fastcgi-pass]") {
  BadAppSite site;
  SECTION("closed while idle, between requests") {
    CHECK(fetch(site.port(), "/bad/idleclose").body == "ok conn=1 req=1\n");
    REQUIRE(site.wait_logged("conn=1 closing after the response"));
    const HttpResponse r = fetch(site.port(), "/bad/ok");
    CHECK(r.status == 200);
    CHECK(r.body == "ok conn=2 req=1\n");
  }
  SECTION("closed when the next request arrives: a GET is retried once on a fresh connection") {
    CHECK(fetch(site.port(), "/bad/once").body == "ok conn=1 req=1\n");
    const HttpResponse r = fetch(site.port(), "/bad/once");
    CHECK(r.status == 200);
    CHECK(r.body == "ok conn=2 req=1\n");
    CHECK(site.wait_logged("conn=1 closing reused connection"));
    // A request with a body is not repeated: 502.
    const HttpResponse p = post(site.port(), "/bad/once", "payload");
    CHECK(p.status == 502);
    CHECK(site.wait_logged("conn=2 closing reused connection"));
    // Nor is a GET retried twice: on a fresh connection the close is the application's answer.
    const HttpResponse fresh = fetch(site.port(), "/bad/close");
    CHECK(fresh.status == 502);
  }
  INFO("bad_app.py's log:\n" << site.app_log());
  site.check_still_serving();
  check_clean_end(*site.server);
}

TEST_CASE("with every application connection busy and the queue full a request gets 503 with Retry-After",
          "[e2e][fastcgi-pass]") {
  BadAppSite site({"--max-children", "1", "--queue", "1"});
  Fd a = open_connection(site.port());
  REQUIRE(send_all(a, keep_alive_get("/bad/wait")));
  REQUIRE(site.wait_logged("mode=wait"));  // A holds the one connection
  // B waits in the queue, C finds it full (whichever of the two spawnd reads first).
  Fd b = open_connection(site.port());
  Fd c = open_connection(site.port());
  REQUIRE(send_all(b, keep_alive_get("/bad/ok")));
  REQUIRE(send_all(c, keep_alive_get("/bad/ok")));
  std::string lb, lc;
  // The first answer can only be the 503: the others wait for the release.
  pollfd fds[2] = {{b.get(), POLLIN, 0}, {c.get(), POLLIN, 0}};
  REQUIRE(::poll(fds, 2, kReplyTimeoutMs) > 0);
  const bool is_c_first = (fds[1].revents & POLLIN) != 0;
  const Fd& rejected = is_c_first ? c : b;
  const Fd& queued = is_c_first ? b : c;
  std::string& l_rejected = is_c_first ? lc : lb;
  std::string& l_queued = is_c_first ? lb : lc;
  const HttpResponse busy = read_response(rejected, l_rejected, false, kReplyTimeoutMs);
  CHECK(busy.status == 503);
  CHECK(busy.field("Retry-After").has_value());
  site.dir.write("release", "");
  std::string la;
  const HttpResponse first = read_response(a, la, false, kReplyTimeoutMs);
  CHECK(first.status == 200);
  CHECK(first.body == "ok conn=1 req=1\n");
  const HttpResponse second = read_response(queued, l_queued, false, kReplyTimeoutMs);
  CHECK(second.status == 200);
  CHECK(second.body == "ok conn=1 req=2\n");  // the one connection, reused
  CHECK(count_of(site.app_log(), " accepted") == 1);
  a.reset();
  b.reset();
  c.reset();
  check_clean_end(*site.server);
}

TEST_CASE("a response whose records arrive in pauses is relayed whole, and the kept connection serves the next request",
          "[e2e][fastcgi-pass]") {
  BadAppSite site;
  std::string expected;
  for (int i = 0; i < 100; ++i) {
    char line[16];
    std::snprintf(line, sizeof line, "line %03d\n", i);
    expected += line;
  }
  Fd c = open_connection(site.port());
  std::string leftover;
  REQUIRE(send_all(c, keep_alive_get("/bad/pauses")));
  const HttpResponse r = read_response(c, leftover, false, kReplyTimeoutMs);
  CHECK(r.status == 200);
  CHECK(r.body == expected);
  // The application's connection went back to the pool whole: the next request on it is its second.
  REQUIRE(send_all(c, keep_alive_get("/bad/ok")));
  const HttpResponse next = read_response(c, leftover, false, kReplyTimeoutMs);
  CHECK(next.status == 200);
  CHECK(next.body == "ok conn=1 req=2\n");
  check_clean_end(*site.server);
}

TEST_CASE("a response shorter than its Content-Length is a 502, or an aborted client connection once the head is out",
          "[e2e][fastcgi-pass]") {
  // short: the shortfall is known before spawnd has sent anything (one read holds it all); shortlate: the head and
  // the ten bytes have gone out 0.3 s before the application ends the request.
  const std::string mode = GENERATE(as<std::string>{}, "short", "shortlate");
  CAPTURE(mode);
  BadAppSite site;
  Fd c = open_connection(site.port());
  std::string leftover;
  REQUIRE(send_all(c, keep_alive_get("/bad/" + mode)));
  const HttpResponse r = read_response(c, leftover, false, kReplyTimeoutMs);
  INFO("status " << r.status << ", " << r.body.size() << " body bytes, complete: " << r.is_complete);
  if (r.status == 502) {
    CHECK(r.is_complete);  // a whole error page instead of a truncated document
  } else {
    // The head went out before the shortfall was known: the only honest signal left is closing the connection.
    CHECK(r.status == 200);
    CHECK_FALSE(r.is_complete);
    CHECK(r.body.size() < 100);
    CHECK(wait_closed(c, kReplyTimeoutMs));
  }
  if (mode == "shortlate") CHECK(r.status == 200);
  CHECK(wait_until([&] { return contains(site.server->stderr_text(), "sent 10 of the 100 body bytes"); },
                   kEventTimeout));
  site.check_still_serving();
  check_clean_end(*site.server);
}

TEST_CASE("several MB of FCGI_STDOUT reach a slow-reading client byte for byte, spooled or not",
          "[e2e][fastcgi-pass]") {
  constexpr std::size_t kSize = 8 * 1024 * 1024 + 5;
  const bool is_spooled = GENERATE(true, false);
  INFO("response spooling " << (is_spooled ? "on (the default)" : "off: --max-response-temp-bytes 0"));
  BadAppSite site(is_spooled ? std::vector<std::string>{} : std::vector<std::string>{"--max-response-temp-bytes", "0"});
  Fd c = connect_small_window(site.port(), 16 * 1024, kReplyTimeoutMs);
  REQUIRE(send_all(c, keep_alive_get("/bad/big?" + std::to_string(kSize))));
  // Read nothing for a while. Spooled: the application sends everything without waiting for the client (spawnd
  // writes it to a temporary file). Not spooled: spawnd stops reading FCGI_STDOUT rather than buffer the whole
  // response, and the application's sends block: it has not sent everything yet. (Waits, not timing assertions: on
  // a slow machine the checks only get easier to pass.)
  REQUIRE(site.wait_logged("mode=big"));
  if (is_spooled) CHECK(site.wait_logged("conn=1 big sent"));
  // While it waits for the client, spawnd is idle: the application's socket is out of its epoll set, not reported
  // readable again and again (a spin would burn the whole second).
  const long ticks_before = cpu_ticks(site.server->pid());
  std::this_thread::sleep_for(milliseconds(1000));
  const long idle_ticks = cpu_ticks(site.server->pid()) - ticks_before;
  CHECK(idle_ticks * 1000 / ::sysconf(_SC_CLK_TCK) < 300);
  if (!is_spooled) CHECK_FALSE(contains(site.app_log(), "conn=1 big sent"));
  // Then read it in small pieces, pausing now and then.
  std::string raw;
  char buf[8192];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::size_t reads = 0;
  std::size_t wanted = 0;  // the total once the head is known
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{c.get(), POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    const ssize_t n = ::read(c.get(), buf, sizeof buf);
    if (n <= 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
    if (++reads % 64 == 0) std::this_thread::sleep_for(milliseconds(5));
    if (wanted == 0) {
      const auto end = raw.find("\r\n\r\n");
      if (end != std::string::npos) wanted = end + 4 + kSize;
    }
    if (wanted != 0 && raw.size() >= wanted) break;
  }
  const auto end = raw.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  const std::string head = raw.substr(0, end);
  INFO(head);
  CHECK(head.starts_with("HTTP/1.1 200"));
  CHECK(contains(head, "Content-Length: " + std::to_string(kSize)));
  const std::string body = raw.substr(end + 4);
  REQUIRE(body.size() == kSize);
  std::string expected;
  expected.reserve(kSize + 16);
  char line[16];
  for (std::size_t i = 0; expected.size() < kSize; ++i) {
    std::snprintf(line, sizeof line, "%08zu\n", i);
    expected += line;
  }
  expected.resize(kSize);
  CHECK((body == expected));  // in parentheses: a failure must not print 8 MB twice
  CHECK(site.wait_logged("conn=1 big sent"));
  // The connection and the application connection both stay usable.
  std::string leftover;
  REQUIRE(send_all(c, keep_alive_get("/bad/ok")));
  const HttpResponse r = read_response(c, leftover, false, kReplyTimeoutMs);
  CHECK(r.status == 200);
  CHECK(r.body == "ok conn=1 req=2\n");
  c.reset();
  check_clean_end(*site.server);
}

// ============================================ configuration ========================================================

TEST_CASE("a bad --fastcgi-pass value makes spawnd exit 2 with a message naming it", "[e2e][fastcgi-pass]") {
  TempDir root;
  const std::string value = GENERATE(as<std::string>{}, "noslash=unix:/tmp/x.sock", "/p", "=unix:/tmp/x.sock",
                                     "/p=", "/p=unix:", "/p=@/srv", "/p=127.0.0.1", "/p=:9000", "/p=127.0.0.1:",
                                     "/p=127.0.0.1:notaport", "/p=unix:/tmp/x.sock@relative/dir",
                                     "/p=unix:/tmp/x.sock@");
  CAPTURE(value);
  const ExitResult r = run_spawnd({"--root", root.path(), "--listen", "127.0.0.1:0", "--fastcgi-pass", value});
  INFO("stderr: " << r.stderr_text);
  REQUIRE(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 2);
  // The message names the value, or for a bad address the address.
  CHECK(contains(r.stderr_text, value.starts_with("/p=") ? value.substr(3) : value));
  CHECK(contains(r.stderr_text, "spawnd: "));
  CHECK_FALSE(contains(r.stderr_text, "listening on"));
}

TEST_CASE("a mount for one script owns its path and what follows a slash, not its neighbours", "[e2e][fastcgi-pass]") {
  TempDir root;
  root.write("apidocs.html", "<p>docs</p>\n");
  root.write("api.txt", "text\n");
  Spawnd server({"--root", root.path(), "--quiet", "--fastcgi-pass", "/api=unix:" + root.path() + "/nobody.sock"});
  // Nothing listens on the socket: what reaches the gateway gets 502, what does not is a static file.
  CHECK(get(server.port(), "/api").status == 502);
  CHECK(get(server.port(), "/api/v1/items").status == 502);
  const HttpResponse docs = get(server.port(), "/apidocs.html");
  CHECK(docs.status == 200);
  CHECK(docs.body == "<p>docs</p>\n");
  CHECK(get(server.port(), "/api.txt").status == 200);
}

// ============================================ connections (issue 19) ==============================================

TEST_CASE("by default each request has a FastCGI connection of its own, without FCGI_KEEP_CONN",
          "[e2e][fastcgi-pass][fastcgi-pool]") {
  BadAppSite site({}, /*keep_conn=*/false);
  CHECK(fetch(site.port(), "/bad/ok").body == "ok conn=1 req=1\n");
  CHECK(fetch(site.port(), "/bad/ok").body == "ok conn=2 req=1\n");
  // Also on one keep-alive client connection: the client's connection is not the application's.
  Fd c = open_connection(site.port());
  std::string leftover;
  REQUIRE(send_all(c, keep_alive_get("/bad/ok") + keep_alive_get("/bad/ok")));
  CHECK(read_response(c, leftover, false, kReplyTimeoutMs).body == "ok conn=3 req=1\n");
  CHECK(read_response(c, leftover, false, kReplyTimeoutMs).body == "ok conn=4 req=1\n");
  INFO("bad_app.py's log:\n" << site.app_log());
  CHECK(site.wait_logged("conn=4 req=1 mode=ok method=GET keep=0"));
  CHECK_FALSE(contains(site.app_log(), "keep=1"));
  c.reset();
  check_clean_end(*site.server);
}

TEST_CASE("mounts naming one address share its kept connections, reused first", "[e2e][fastcgi-pass][fastcgi-pool]") {
  // Three mounts of the one application (BadAppSite's /bad/, and /other/ and /one/ok here: "@SOCK" is its socket).
  BadAppSite site({"--fastcgi-pass", "/other/=unix:@SOCK@/srv/bad", "--fastcgi-pass", "/one/ok=unix:@SOCK"});
  int n = 0;
  for (const char* target : {"/bad/ok", "/other/ok", "/one/ok", "/bad/ok", "/other/ok/x", "/one/ok"}) {
    CAPTURE(target);
    const HttpResponse r = fetch(site.port(), target);
    CHECK(r.status == 200);
    CHECK(r.body == "ok conn=1 req=" + std::to_string(++n) + "\n");  // one connection for all three mounts
  }
  INFO("bad_app.py's log:\n" << site.app_log());
  CHECK(count_of(site.app_log(), " accepted") == 1);
  CHECK(site.wait_logged("conn=1 req=6 mode=ok method=GET keep=1"));
  check_clean_end(*site.server);
}

TEST_CASE("an idle kept connection is closed after --fastcgi-idle-timeout, and the next request opens a new one",
          "[e2e][fastcgi-pass][fastcgi-pool]") {
  BadAppSite site({"--fastcgi-idle-timeout", "0.3"});
  CHECK(fetch(site.port(), "/bad/ok").body == "ok conn=1 req=1\n");
  CHECK(site.wait_logged("conn=1 eof"));  // spawnd closed it, idle
  CHECK(fetch(site.port(), "/bad/ok").body == "ok conn=2 req=1\n");
  check_clean_end(*site.server);
}

TEST_CASE("with --fastcgi-keep-conn 1 a second idle connection is closed, the first kept",
          "[e2e][fastcgi-pass][fastcgi-pool]") {
  BadAppSite site({"--fastcgi-keep-conn", "1"}, /*keep_conn=*/false);
  // A holds a connection (wait mode); B needs a second one meanwhile. Both end; only one stays open.
  Fd a = open_connection(site.port());
  REQUIRE(send_all(a, keep_alive_get("/bad/wait")));
  REQUIRE(site.wait_logged("conn=1 req=1 mode=wait"));
  // B's answer comes while A's request has heard nothing back: spawnd must not keep B's connection then (A may wait
  // for the process it would hold); it closes it.
  CHECK(fetch(site.port(), "/bad/ok").body == "ok conn=2 req=1\n");
  CHECK(site.wait_logged("conn=2 eof"));
  site.dir.write("release", "");
  std::string la;
  CHECK(read_response(a, la, false, kReplyTimeoutMs).body == "ok conn=1 req=1\n");
  // A's connection is the one kept: the next request reuses it.
  CHECK(fetch(site.port(), "/bad/ok").body == "ok conn=1 req=2\n");
  INFO("bad_app.py's log:\n" << site.app_log());
  CHECK(count_of(site.app_log(), " accepted") == 2);
  a.reset();
  check_clean_end(*site.server);
}
