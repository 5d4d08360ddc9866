// End-to-end tests of PHP sites as nginx serves them (issue 19): extension routing (--fastcgi-pass '*.php=ADDR'),
// index files (--index), --deny, --follow-symlinks, and a FastCGI client that cannot deadlock a php-fpm pool. Real
// php-fpm from Debian (daemon.h) with a small static pool, a temporary --root, raw HTTP over loopback. DokuWiki, a
// whole PHP application: test_dokuwiki.cpp.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "daemon.h"
#include "harness.h"

using namespace spawnd::e2e;
using spawnd::Fd;

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr int kReplyTimeoutMs = 15'000;  // generous: 2 cores shared with other suites under ctest -j2

bool contains(std::string_view haystack, std::string_view needle) { return haystack.find(needle) != std::string::npos; }

// What info.php prints: the meta-variables of the split, one "NAME=value" line each.
constexpr std::string_view kInfoPhp = R"php(<?php
header('Content-Type: text/plain');
foreach (['SCRIPT_FILENAME', 'SCRIPT_NAME', 'PATH_INFO', 'REQUEST_URI', 'QUERY_STRING'] as $k)
  echo $k, '=', $_SERVER[$k] ?? '(unset)', "\n";
echo 'FILE=', basename(__FILE__), "\n";
)php";

// sleep.php?ms=N: answers after N milliseconds; with &mark=PATH it first creates the file PATH (it has started).
constexpr std::string_view kSleepPhp = R"php(<?php
if (isset($_GET['mark'])) touch($_GET['mark']);
usleep(intval($_GET['ms'] ?? '0') * 1000);
header('Content-Type: text/plain');
echo "slept ", basename(__FILE__), "\n";
)php";

std::map<std::string, std::string> parse_lines(const std::string& body) {
  std::map<std::string, std::string> out;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) out.emplace(line.substr(0, eq), line.substr(eq + 1));
  }
  return out;
}

std::optional<std::string> value_of(const std::map<std::string, std::string>& m, const std::string& name) {
  auto it = m.find(name);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

HttpResponse fetch(std::uint16_t port, std::string_view target) { return get(port, target, kReplyTimeoutMs); }

// The number of requests php-fpm's access log has recorded (one line each).
std::size_t fpm_requests(const std::string& access_log) {
  const std::string text = read_file(access_log);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// php-fpm with `children` static workers and an access log, and a --root with PHP scripts; spawnd is started by the
// test with site.args() plus its own flags.
struct PhpSite {
  TempDir dir;   // php-fpm's configuration, logs and socket
  TempDir root;  // spawnd's --root
  std::string access_log = dir.path() + "/access.log";
  std::unique_ptr<PhpFpm> fpm;

  explicit PhpSite(int children = 2) {
    fpm = std::make_unique<PhpFpm>(dir, children, "access.log = " + access_log + "\naccess.format = \"%m %r\"");
  }
  [[nodiscard]] std::vector<std::string> args(std::vector<std::string> extra) const {
    std::vector<std::string> a{"--root", root.path(), "--quiet", "--fastcgi-pass", "*.php=unix:" + fpm->sock};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  [[nodiscard]] std::string canonical_root() const { return fs::canonical(root.path()).string(); }
};

}  // namespace

// ============================================ extension routing ===================================================

TEST_CASE("extension routing runs any existing .php under the root in php-fpm, split like fastcgi_split_path_info",
          "[e2e][php-site]") {
  PhpSite site;
  site.root.write("info.php", kInfoPhp);
  site.root.write("sub/dir/deep.php", kInfoPhp);
  site.root.write("plain.txt", "plain\n");
  Spawnd s(site.args({}));
  const std::string root = site.canonical_root();

  const HttpResponse top = fetch(s.port(), "/info.php?a=1");
  REQUIRE(top.status == 200);
  INFO(top.body);
  auto out = parse_lines(top.body);
  CHECK(value_of(out, "SCRIPT_FILENAME") == std::optional<std::string>(root + "/info.php"));
  CHECK(value_of(out, "SCRIPT_NAME") == std::optional<std::string>("/info.php"));
  CHECK(value_of(out, "PATH_INFO") == std::optional<std::string>("(unset)"));
  CHECK(value_of(out, "QUERY_STRING") == std::optional<std::string>("a=1"));

  // /a.php/extra → script /a.php, PATH_INFO /extra (nginx: ^(.+?\.php)(/.*)$).
  const HttpResponse extra = fetch(s.port(), "/sub/dir/deep.php/extra/x.php?b=2");
  REQUIRE(extra.status == 200);
  INFO(extra.body);
  out = parse_lines(extra.body);
  CHECK(value_of(out, "SCRIPT_FILENAME") == std::optional<std::string>(root + "/sub/dir/deep.php"));
  CHECK(value_of(out, "SCRIPT_NAME") == std::optional<std::string>("/sub/dir/deep.php"));
  CHECK(value_of(out, "PATH_INFO") == std::optional<std::string>("/extra/x.php"));
  CHECK(value_of(out, "REQUEST_URI") == std::optional<std::string>("/sub/dir/deep.php/extra/x.php?b=2"));
  CHECK(value_of(out, "FILE") == std::optional<std::string>("deep.php"));

  // Other files are still static, and a .php file's source is never served.
  const HttpResponse plain = fetch(s.port(), "/plain.txt");
  CHECK(plain.status == 200);
  CHECK(plain.body == "plain\n");
  for (const char* target : {"//info.php", "/info%2ephp", "/sub/../info.php", "/%69nfo.php"}) {
    CAPTURE(target);
    const HttpResponse r = fetch(s.port(), target);
    CHECK(r.status == 200);
    CHECK_FALSE(contains(r.body, "<?php"));
  }
  check_clean_end(s);
}

TEST_CASE("a .php path naming no file is 404 from spawnd and never reaches php-fpm", "[e2e][php-site]") {
  PhpSite site;
  site.root.write("info.php", kInfoPhp);
  site.root.write("dir.php/inner.php", kInfoPhp);  // a directory whose name ends in .php
  Spawnd s(site.args({}));
  for (const char* target : {"/missing.php", "/missing.php/extra", "/nodir/x.php", "/dir.php", "/dir.php/inner.php",
                             "/info.php.bak", "/.php"}) {
    CAPTURE(target);
    const HttpResponse r = fetch(s.port(), target);
    CHECK(r.status == 404);
  }
  // One request that does reach php-fpm, so that its access log is known to work.
  CHECK(fetch(s.port(), "/info.php").status == 200);
  CHECK(wait_until([&] { return fpm_requests(site.access_log) >= 1; }, milliseconds(5000)));
  std::this_thread::sleep_for(milliseconds(200));
  INFO("php-fpm's access log:\n" << read_file(site.access_log));
  CHECK(fpm_requests(site.access_log) == 1);
  CHECK(contains(read_file(site.access_log), "GET /info.php"));
  check_clean_end(s);
}

// =============================================== index files ======================================================

TEST_CASE("index names are tried in order, and an index.php runs in php-fpm", "[e2e][php-site]") {
  PhpSite site;
  site.root.write("index.php", kInfoPhp);
  site.root.write("index.html", "<p>html index</p>\n");  // second in order: index.php wins at /
  site.root.write("docs/index.html", "<p>docs</p>\n");
  site.root.write("app/start.php", kInfoPhp);
  site.root.write("empty/other.txt", "x");
  Spawnd s(site.args({"--index", "start.php", "--index", "index.php", "--index", "index.html"}));
  const std::string root = site.canonical_root();

  const HttpResponse top = fetch(s.port(), "/?q=1");
  REQUIRE(top.status == 200);
  INFO(top.body);
  auto out = parse_lines(top.body);
  CHECK(value_of(out, "SCRIPT_NAME") == std::optional<std::string>("/index.php"));
  CHECK(value_of(out, "SCRIPT_FILENAME") == std::optional<std::string>(root + "/index.php"));
  CHECK(value_of(out, "REQUEST_URI") == std::optional<std::string>("/?q=1"));
  CHECK(value_of(out, "QUERY_STRING") == std::optional<std::string>("q=1"));

  const HttpResponse app = fetch(s.port(), "/app/");
  REQUIRE(app.status == 200);
  CHECK(value_of(parse_lines(app.body), "SCRIPT_NAME") == std::optional<std::string>("/app/start.php"));
  // A POST to a directory goes to its index script too (forms posting to "/").
  {
    Fd c = connect_to(s.port());
    REQUIRE(send_all(c, "POST /app/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                        "Content-Length: 3\r\nConnection: close\r\n\r\nx=1"));
    const HttpResponse p = read_response(c, false, kReplyTimeoutMs);
    CHECK(p.status == 200);
    CHECK(value_of(parse_lines(p.body), "SCRIPT_NAME") == std::optional<std::string>("/app/start.php"));
  }

  const HttpResponse docs = fetch(s.port(), "/docs/");
  CHECK(docs.status == 200);
  CHECK(docs.body == "<p>docs</p>\n");
  const HttpResponse redirect = fetch(s.port(), "/docs");
  CHECK(redirect.status == 301);
  CHECK(redirect.field("Location") == std::optional<std::string>("/docs/"));
  CHECK(fetch(s.port(), "/empty/").status == 404);
  check_clean_end(s);
}

TEST_CASE("index names without extension routing serve static index files in order", "[e2e][php-site][static]") {
  TempDir root;
  root.write("a/home.html", "home\n");
  root.write("a/index.html", "index\n");
  root.write("b/index.html", "b index\n");
  Spawnd s({"--root", root.path(), "--quiet", "--index", "home.html", "--index", "index.html"});
  CHECK(get(s.port(), "/a/").body == "home\n");
  CHECK(get(s.port(), "/b/").body == "b index\n");
  Spawnd plain({"--root", root.path(), "--quiet"});  // the default: index.html only
  CHECK(get(plain.port(), "/a/").body == "index\n");
}

// ================================================== --deny ========================================================

TEST_CASE("a deny rule answers 403 at and below its prefix, in any spelling, and never runs a script there",
          "[e2e][php-site]") {
  PhpSite site;
  site.root.write("conf/local.php", kInfoPhp);
  site.root.write("conf/secret.txt", "secret\n");
  site.root.write("data/pages/start.txt", "page\n");
  site.root.write("conference.txt", "open\n");
  site.root.write("info.php", kInfoPhp);
  Spawnd s(site.args({"--deny", "/conf", "--deny", "/data/"}));
  for (const char* target : {"/conf", "/conf/", "/conf/secret.txt", "/conf/local.php", "/conf/local.php/x", "//conf/x",
                             "/%63onf/secret.txt", "/x/../conf/secret.txt", "/data", "/data/pages/start.txt"}) {
    CAPTURE(target);
    const HttpResponse r = fetch(s.port(), target);
    CHECK(r.status == 403);
    CHECK_FALSE(contains(r.body, "secret"));
  }
  // A POST is refused as well.
  {
    Fd c = connect_to(s.port());
    REQUIRE(send_all(c, "POST /conf/local.php HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nx=1"));
    CHECK(read_response(c, false, kReplyTimeoutMs).status == 403);
  }
  CHECK(fetch(s.port(), "/conference.txt").status == 200);
  CHECK(fetch(s.port(), "/info.php").status == 200);
  CHECK(wait_until([&] { return fpm_requests(site.access_log) >= 1; }, milliseconds(5000)));
  std::this_thread::sleep_for(milliseconds(200));
  CHECK(fpm_requests(site.access_log) == 1);  // only /info.php reached php-fpm
  check_clean_end(s);
}

// ============================================ no deadlock (issue 19) ==============================================

TEST_CASE("three and more PHP entry points in a row never hang a two-worker static php-fpm pool",
          "[e2e][php-site][fastcgi-pool]") {
  // The regression: each --fastcgi-pass mount kept its own FCGI_KEEP_CONN connection, two idle ones held both
  // php-fpm workers, and the third mount's request waited in the listen backlog until 504. With one pool per
  // address (and a connection per request by default, or kept ones reused first), every request is answered.
  const std::string keep = GENERATE(as<std::string>{}, "0", "1", "2", "8");
  CAPTURE(keep);
  PhpSite site(2);
  for (const char* name : {"index.php", "doku.php", "a.php", "lib/exe/css.php", "lib/exe/js.php", "b/c.php"})
    site.root.write(name, kSleepPhp);
  // Several mounts on the one address: the extension mount, a one-script mount and a directory mount.
  Spawnd s(site.args({"--fastcgi-pass", "/a.php=unix:" + site.fpm->sock, "--fastcgi-pass",
                      "/b/=unix:" + site.fpm->sock, "--index", "doku.php", "--handler-timeout", "8",
                      "--fastcgi-keep-conn", keep}));
  for (int round = 0; round < 2; ++round) {
    for (const char* target : {"/", "/index.php", "/doku.php", "/lib/exe/css.php", "/a.php", "/lib/exe/js.php",
                               "/b/c.php", "/doku.php?id=start"}) {
      CAPTURE(round, target);
      const HttpResponse r = fetch(s.port(), target);
      CHECK(r.status == 200);
      CHECK(r.body.starts_with("slept "));
    }
  }
  // Now concurrently: more requests at once than the pool has workers, over the different entry points.
  std::vector<std::thread> clients;
  std::vector<int> statuses(6, 0);
  const char* targets[] = {"/a.php?ms=300", "/b/c.php?ms=300", "/doku.php?ms=300",
                           "/lib/exe/css.php?ms=300", "/index.php?ms=300", "/lib/exe/js.php?ms=300"};
  for (std::size_t i = 0; i < statuses.size(); ++i)
    clients.emplace_back([&, i] { statuses[i] = fetch(s.port(), targets[i]).status; });
  for (auto& t : clients) t.join();
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    CAPTURE(targets[i]);
    CHECK(statuses[i] == 200);
  }
  // And in a row again, after the burst left (maybe) kept connections behind.
  for (const char* target : {"/lib/exe/css.php", "/a.php", "/b/c.php", "/", "/lib/exe/js.php"}) {
    CAPTURE(target);
    CHECK(fetch(s.port(), target).status == 200);
  }
  // A hung request would have been a 504 above, and logged; none was.
  const std::string log = s.stderr_text();
  CHECK_FALSE(contains(log, "no complete response"));
  check_clean_end(s);
}

TEST_CASE("an application that does not take a request in time gets 504 for that request only, logged with why",
          "[e2e][php-site][fastcgi-pool]") {
  PhpSite site(1);  // one worker: while it sleeps, a second connection waits in php-fpm's listen backlog
  site.root.write("sleep.php", kSleepPhp);
  site.root.write("fast.php", kSleepPhp);
  Spawnd s(site.args({"--handler-timeout", "1.5", "--fastcgi-keep-conn", "2"}));
  HttpResponse slow;
  const std::string mark = site.dir.path() + "/slow-started";
  std::thread holder([&] { slow = get(s.port(), "/sleep.php?ms=2500&mark=" + mark, kReplyTimeoutMs); });
  // The one worker has taken the slow request: the next one can only wait in the listen backlog.
  REQUIRE(wait_until([&] { return fs::exists(mark); }, milliseconds(10'000)));
  const HttpResponse waiting = fetch(s.port(), "/fast.php");
  holder.join();
  CHECK(slow.status == 504);
  CHECK(waiting.status == 504);
  // The why: nothing came back, so the application may not have accepted the request.
  CHECK(wait_until([&] { return contains(s.stderr_text(), "nothing received from the application"); },
                   milliseconds(5000)));
  // Once the worker is free again, requests succeed: the failure was that request's alone.
  CHECK(wait_until([&] { return fetch(s.port(), "/fast.php").status == 200; }, milliseconds(8000)));
  CHECK(fetch(s.port(), "/sleep.php").status == 200);
  check_clean_end(s);
}

// ============================================ CGI by extension =====================================================

TEST_CASE("CGI by extension runs executable *.cgi files under the root, in their directory", "[e2e][php-site][cgi]") {
  TempDir root;
  constexpr std::string_view kScript =
      "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
      "echo \"SCRIPT_NAME=$SCRIPT_NAME\"\necho \"PATH_INFO=$PATH_INFO\"\necho \"PWD=$(pwd)\"\n";
  root.write("sub/a.cgi", kScript, /*is_executable=*/true);
  root.write("plain.cgi", kScript, /*is_executable=*/false);
  const std::string real_root = fs::canonical(root.path()).string();
  {
    Spawnd s({"--root", root.path(), "--quiet", "--cgi-ext", "cgi"});
    const HttpResponse r = fetch(s.port(), "/sub/a.cgi/x/y?q=1");
    REQUIRE(r.status == 200);
    INFO(r.body);
    const auto out = parse_lines(r.body);
    CHECK(value_of(out, "SCRIPT_NAME") == std::optional<std::string>("/sub/a.cgi"));
    CHECK(value_of(out, "PATH_INFO") == std::optional<std::string>("/x/y"));
    CHECK(value_of(out, "PWD") == std::optional<std::string>(real_root + "/sub"));
    CHECK(fetch(s.port(), "/plain.cgi").status == 403);  // not executable
    CHECK(fetch(s.port(), "/missing.cgi").status == 404);
    check_clean_end(s);
  }
  // Off by default: the file is just a file.
  Spawnd plain({"--root", root.path(), "--quiet"});
  const HttpResponse source = fetch(plain.port(), "/sub/a.cgi");
  CHECK(source.status == 200);
  CHECK(source.body == kScript);
}
