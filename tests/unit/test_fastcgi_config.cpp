// Unit tests for the configuration side of `--fastcgi-pass PREFIX=ADDR[@DIR]`: parse_fastcgi_pass and
// parse_fastcgi_address (server/gateway/fastcgi_gateway.h), and map_script (server/gateway/script_request.h), which
// splits a request path into SCRIPT_NAME, SCRIPT_FILENAME and PATH_INFO for every script gateway.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "common/error.h"
#include "server/gateway/fastcgi_gateway.h"
#include "server/gateway/script_request.h"

using spawnd::server::FastCgiAddress;
using spawnd::server::FastCgiPass;
using spawnd::server::map_script;
using spawnd::server::parse_fastcgi_address;
using spawnd::server::parse_fastcgi_pass;
using spawnd::server::ScriptCheck;
using spawnd::server::ScriptTarget;

namespace {

namespace fs = std::filesystem;

// The status answered for what map_script returned (ENOENT 404, EACCES 403), or 0 for a target.
int status_of(const spawnd::Result<ScriptTarget>& r) {
  if (r) return 0;
  return r.error().value() == EACCES ? 403 : 404;
}

ScriptTarget target_of(std::string_view path, std::string_view prefix, const std::string& dir,
                       ScriptCheck check = ScriptCheck::None) {
  auto r = map_script(path, prefix, dir, check);
  INFO("map_script(\"" << path << "\", \"" << prefix << "\") answered " << status_of(r));
  REQUIRE(r.ok());
  return std::move(r).value();
}

// A scratch directory for the ScriptCheck::Executable cases.
struct ScriptDir {
  std::string path;
  ScriptDir() {
    std::string tmpl = (fs::temp_directory_path() / "spawnd-unit-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~ScriptDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  void write(const std::string& name, fs::perms perms) const {
    std::ofstream(path + "/" + name) << "#!/bin/sh\n";
    fs::permissions(path + "/" + name, perms);
  }
};

}  // namespace

// ---- parse_fastcgi_pass ----

TEST_CASE("parse_fastcgi_pass splits PREFIX=ADDR@DIR", "[unit][fastcgi-config]") {
  FastCgiPass p = parse_fastcgi_pass("/fcgi-bin/=unix:/run/fcgiwrap.sock@/srv/scripts");
  CHECK(p.prefix == "/fcgi-bin/");
  CHECK(p.address == "unix:/run/fcgiwrap.sock");
  CHECK(p.directory == "/srv/scripts");

  p = parse_fastcgi_pass("/app.php=unix:/run/php-fpm.sock");
  CHECK(p.prefix == "/app.php");
  CHECK(p.address == "unix:/run/php-fpm.sock");
  CHECK(p.directory.empty());

  p = parse_fastcgi_pass("/php/=127.0.0.1:9000");
  CHECK(p.prefix == "/php/");
  CHECK(p.address == "127.0.0.1:9000");

  p = parse_fastcgi_pass("/v6/=[::1]:9000@/srv/x/");
  CHECK(p.address == "[::1]:9000");
  CHECK(p.directory == "/srv/x");  // trailing slashes dropped
  CHECK(parse_fastcgi_pass("/r=unix:/s@/").directory == "/");

  // The last '@' starts DIR: an '@' inside a socket path stays in ADDR.
  p = parse_fastcgi_pass("/a/=unix:/run/a@b.sock@/srv");
  CHECK(p.address == "unix:/run/a@b.sock");
  CHECK(p.directory == "/srv");
  // '=' after the first one belongs to ADDR.
  CHECK(parse_fastcgi_pass("/a=unix:/run/x=y.sock").address == "unix:/run/x=y.sock");
}

TEST_CASE("parse_fastcgi_pass refuses values without a /PREFIX, an ADDR or an absolute DIR", "[unit][fastcgi-config]") {
  for (const char* bad : {"", "/p", "=unix:/s", "p=unix:/s", "noslash/=unix:/s", "/p=", "/p=@/srv", "/p=unix:/s@",
                          "/p=unix:/s@relative", "/p=unix:/s@./x"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_fastcgi_pass(bad), spawnd::Error);
  }
  // The message names the value.
  try {
    (void)parse_fastcgi_pass("/p=unix:/s@relative");
    FAIL("no exception");
  } catch (const spawnd::Error& e) {
    CHECK(std::string(e.what()).find("/p=unix:/s@relative") != std::string::npos);
  }
}

// ---- parse_fastcgi_address ----

TEST_CASE("parse_fastcgi_address resolves unix:PATH, IPv4 and [IPv6] addresses", "[unit][fastcgi-config]") {
  FastCgiAddress a = parse_fastcgi_address("unix:/run/php/php-fpm.sock");
  CHECK(a.text == "unix:/run/php/php-fpm.sock");
  REQUIRE(a.addr.family() == AF_UNIX);
  const auto* sun = reinterpret_cast<const sockaddr_un*>(&a.addr.storage);
  CHECK(std::string(sun->sun_path) == "/run/php/php-fpm.sock");
  CHECK(a.addr.length > 0);

  a = parse_fastcgi_address("127.0.0.1:9000");
  REQUIRE(a.addr.family() == AF_INET);
  const auto* sin = reinterpret_cast<const sockaddr_in*>(&a.addr.storage);
  CHECK(ntohs(sin->sin_port) == 9000);
  CHECK(ntohl(sin->sin_addr.s_addr) == INADDR_LOOPBACK);
  CHECK(a.addr.length == sizeof(sockaddr_in));

  a = parse_fastcgi_address("[::1]:9001");
  REQUIRE(a.addr.family() == AF_INET6);
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&a.addr.storage);
  CHECK(ntohs(sin6->sin6_port) == 9001);
  CHECK(std::memcmp(&sin6->sin6_addr, &in6addr_loopback, sizeof in6addr_loopback) == 0);
  CHECK(a.text == "[::1]:9001");

  // The longest path a sockaddr_un holds (107 bytes and the NUL).
  const std::string longest = "/" + std::string(106, 'x');
  CHECK(parse_fastcgi_address("unix:" + longest).text == "unix:" + longest);
}

TEST_CASE("parse_fastcgi_address refuses what is neither unix:PATH nor HOST:PORT", "[unit][fastcgi-config]") {
  const std::string too_long = "unix:/" + std::string(107, 'x');  // no room for the NUL
  for (const std::string& bad : {std::string("unix:"), too_long, std::string("127.0.0.1"), std::string(":9000"),
                                std::string("127.0.0.1:"), std::string("127.0.0.1:notaport"), std::string("")}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_fastcgi_address(bad), spawnd::Error);
  }
  try {
    (void)parse_fastcgi_address("127.0.0.1");
    FAIL("no exception");
  } catch (const spawnd::Error& e) {
    CHECK(std::string(e.what()).find("'127.0.0.1'") != std::string::npos);
  }
}

// ---- map_script ----

TEST_CASE("map_script with a directory prefix: the first segment is the script, the rest PATH_INFO",
          "[unit][fastcgi-config]") {
  ScriptTarget t = target_of("/fcgi-bin/tool/x", "/fcgi-bin/", "/srv/scripts");
  CHECK(t.name == "tool");
  CHECK(t.script_name == "/fcgi-bin/tool");
  CHECK(t.script_filename == "/srv/scripts/tool");
  CHECK(t.path_info == "/x");

  t = target_of("/fcgi-bin/env.sh", "/fcgi-bin/", "/srv/scripts");
  CHECK(t.script_name == "/fcgi-bin/env.sh");
  CHECK(t.path_info.empty());

  t = target_of("/fcgi-bin/env.sh/", "/fcgi-bin/", "/srv/scripts");
  CHECK(t.path_info == "/");

  // PATH_INFO is decoded; repeated slashes collapse and "." segments go.
  t = target_of("/fcgi-bin/env.sh/a%20b//c/./d", "/fcgi-bin/", "/srv/scripts");
  CHECK(t.path_info == "/a b/c/d");
  t = target_of("/fcgi-bin/e%6ev.sh/x", "/fcgi-bin/", "/srv/scripts");
  CHECK(t.name == "env.sh");
  CHECK(t.script_name == "/fcgi-bin/env.sh");
  // A ".." inside PATH_INFO that stays below the prefix is resolved.
  t = target_of("/fcgi-bin/env.sh/a/../b", "/fcgi-bin/", "/srv/scripts");
  CHECK(t.path_info == "/b");
  t = target_of("/fcgi-bin/one/../two/x", "/fcgi-bin/", "/srv/scripts");
  CHECK(t.name == "two");
  CHECK(t.path_info == "/x");
}

TEST_CASE("map_script with an exact-file prefix: the path is the prefix or continues with a slash",
          "[unit][fastcgi-config]") {
  ScriptTarget t = target_of("/app.php", "/app.php", "/var/www");
  CHECK(t.name == "app.php");
  CHECK(t.script_name == "/app.php");
  CHECK(t.script_filename == "/var/www/app.php");
  CHECK(t.path_info.empty());

  t = target_of("/app.php/extra/more", "/app.php", "/var/www");
  CHECK(t.script_name == "/app.php");
  CHECK(t.path_info == "/extra/more");

  t = target_of("/shop/index.php/item/7", "/shop/index.php", "/var/www/shop");
  CHECK(t.name == "index.php");
  CHECK(t.script_name == "/shop/index.php");
  CHECK(t.script_filename == "/var/www/shop/index.php");
  CHECK(t.path_info == "/item/7");

  for (const char* path : {"/app.phpx", "/app.php.bak", "/app.phpx/extra", "/app.ph", "/", "/other.php"}) {
    CAPTURE(path);
    CHECK(status_of(map_script(path, "/app.php", "/var/www", ScriptCheck::None)) == 404);
  }
}

TEST_CASE("map_script names nothing outside its directory: no '..' escape, no dotfile, no encoded slash",
          "[unit][fastcgi-config]") {
  for (const char* path : {"/fcgi-bin/../etc/passwd", "/fcgi-bin/%2e%2e/x", "/fcgi-bin/..%2fx", "/fcgi-bin/a%2fb",
                           "/fcgi-bin/.htaccess", "/fcgi-bin/.git/config", "/fcgi-bin/env.sh/.hidden",
                           "/fcgi-bin/%2ehidden", "/fcgi-bin/", "/fcgi-bin", "/fcgi-bin//", "/fcgi-bin/a%00b",
                           "/fcgi-binx/env.sh", "/../fcgi-bin/env.sh/../../x"}) {
    CAPTURE(path);
    const int status = status_of(map_script(path, "/fcgi-bin/", "/srv/scripts", ScriptCheck::None));
    CHECK((status == 404 || status == 400));
  }
  CHECK(status_of(map_script("/app.php/../secret", "/app.php", "/var/www", ScriptCheck::None)) == 404);
  CHECK(status_of(map_script("/app.php/.env", "/app.php", "/var/www", ScriptCheck::None)) == 404);
}

TEST_CASE("map_script with ScriptCheck::Executable: missing 404, not executable 403, ScriptCheck::None no check",
          "[unit][fastcgi-config]") {
  ScriptDir dir;
  dir.write("run.sh", fs::perms::owner_all);
  dir.write("text.sh", fs::perms::owner_read | fs::perms::owner_write);
  fs::create_directory(dir.path + "/subdir");

  CHECK(status_of(map_script("/cgi-bin/run.sh/x", "/cgi-bin/", dir.path, ScriptCheck::Executable)) == 0);
  CHECK(status_of(map_script("/cgi-bin/missing.sh", "/cgi-bin/", dir.path, ScriptCheck::Executable)) == 404);
  CHECK(status_of(map_script("/cgi-bin/subdir/x", "/cgi-bin/", dir.path, ScriptCheck::Executable)) == 404);
  // access(X_OK) wants an execute bit even for root.
  CHECK(status_of(map_script("/cgi-bin/text.sh", "/cgi-bin/", dir.path, ScriptCheck::Executable)) == 403);
  // --fastcgi-pass: the script belongs to the application's host, so nothing is checked here.
  CHECK(status_of(map_script("/cgi-bin/missing.sh", "/cgi-bin/", dir.path, ScriptCheck::None)) == 0);
}
