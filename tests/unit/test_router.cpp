// Unit tests for server/router.h: prefix matching and the re-routing of CGI local redirects (RFC 3875 §6.2.2).
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>

#include "server/router.h"
#include "server/static_files.h"

using spawnd::server::Exchange;
using spawnd::server::Gateway;
using spawnd::server::Request;
using spawnd::server::RequestBody;
using spawnd::server::ResponseSink;
using spawnd::server::Router;

namespace {

class NullGateway final : public Gateway {
 public:
  std::unique_ptr<Exchange> start(const Request&, ResponseSink&, RequestBody&) override { return nullptr; }
  [[nodiscard]] spawnd::server::ServedBy served_by() const noexcept override { return spawnd::server::ServedBy::Cgi; }
};

// A router with "/cgi-bin/" (a directory of scripts) and "/app.php" (one script), and the gateways to compare.
struct Mounted {
  Router router;
  Gateway* cgi = nullptr;
  Gateway* app = nullptr;
  Mounted() {
    auto c = std::make_unique<NullGateway>();
    auto a = std::make_unique<NullGateway>();
    cgi = c.get();
    app = a.get();
    router.mount("/cgi-bin/", std::move(c));
    router.mount("/app.php", std::move(a));
  }
};

}  // namespace

TEST_CASE("router: paths under a directory prefix go to its gateway", "[unit][router]") {
  Mounted m;
  CHECK(m.router.route("/cgi-bin/hello").gateway == m.cgi);
  CHECK(m.router.route("/cgi-bin/kv/a/b").gateway == m.cgi);
  CHECK(m.router.route("/cgi-bin/").gateway == m.cgi);
  CHECK(m.router.route("/cgi-bin").gateway == m.cgi);  // the mount named without its slash
  CHECK(m.router.route("/cgi-binx").is_static());
  CHECK(m.router.route("/index.html").is_static());
  CHECK(m.router.route("/").is_static());
}

TEST_CASE("router: a one-script prefix owns the script and paths below it, nothing else", "[unit][router]") {
  Mounted m;
  CHECK(m.router.route("/app.php").gateway == m.app);
  CHECK(m.router.route("/app.php/extra/path").gateway == m.app);
  CHECK(m.router.route("/app.phpx").is_static());
  CHECK(m.router.route("/app.ph").is_static());
}

TEST_CASE("router: a raw path under a mount stays with it even if it climbs out", "[unit][router]") {
  Mounted m;
  CHECK(m.router.route("/cgi-bin/../index.html").gateway == m.cgi);  // the gateway refuses it, not the static files
}

TEST_CASE("router: paths the static files would normalise onto a script reach its gateway", "[unit][router]") {
  Mounted m;
  CHECK(m.router.route("//app.php").gateway == m.app);
  CHECK(m.router.route("/app%2ephp").gateway == m.app);
  CHECK(m.router.route("/x/../app.php").gateway == m.app);
  CHECK(m.router.route("/%63gi-bin/hello").gateway == m.cgi);
  CHECK(m.router.route("/bad%zz").is_static());  // the static files answer 400
}

TEST_CASE("router: the first matching mount wins, and without mounts every path is static", "[unit][router]") {
  Router empty;
  CHECK(empty.route("/cgi-bin/x").is_static());

  Router r;
  auto first = std::make_unique<NullGateway>();
  Gateway* first_ptr = first.get();
  r.mount("/api", std::move(first));
  r.mount("", std::make_unique<NullGateway>());
  CHECK(r.route("/api/v1").gateway == first_ptr);
  CHECK(r.route("/apidocs.html").gateway != first_ptr);  // the catch-all "" mount
  CHECK_FALSE(r.route("/anything").is_static());
}

TEST_CASE("router: a local redirect becomes a GET of the new path without a body", "[unit][router]") {
  Mounted m;
  Request r;
  r.method = "POST";
  r.target = "/cgi-bin/form?x=1";
  r.path = "/cgi-bin/form";
  r.query = "x=1";
  r.content_length = 4;
  r.has_body = true;
  r.is_chunked = false;
  r.expects_continue = true;
  r.fields = {{"Host", "example.org"},
              {"content-length", "4"},
              {"Content-Type", "application/x-www-form-urlencoded"},
              {"Cookie", "a=b"}};
  int redirects = 0;
  auto route = m.router.route_local_redirect(r, "/index.html?from=form", redirects);
  REQUIRE(route);
  CHECK(route->is_static());
  CHECK(redirects == 1);
  CHECK(r.method == "GET");
  CHECK(r.target == "/index.html?from=form");
  CHECK(r.path == "/index.html");
  CHECK(r.query == "from=form");
  CHECK_FALSE(r.content_length);
  CHECK_FALSE(r.has_body);
  CHECK_FALSE(r.expects_continue);
  REQUIRE(r.fields.size() == 2);
  CHECK(r.fields[0].first == "Host");
  CHECK(r.fields[1].first == "Cookie");

  route = m.router.route_local_redirect(r, "/cgi-bin/hello", redirects);
  REQUIRE(route);
  CHECK(route->gateway == m.cgi);
  CHECK(r.query.empty());
}

TEST_CASE("router: a chain of local redirects ends after kMaxLocalRedirects", "[unit][router]") {
  Mounted m;
  Request r;
  r.method = "GET";
  r.path = "/cgi-bin/loop";
  int redirects = 0;
  for (int i = 0; i < Router::kMaxLocalRedirects; ++i)
    REQUIRE(m.router.route_local_redirect(r, "/cgi-bin/loop", redirects));
  r.path = "/unchanged";
  CHECK_FALSE(m.router.route_local_redirect(r, "/cgi-bin/loop", redirects));
  CHECK(r.path == "/unchanged");  // left as it was
}

// ---- issue 19: --deny, extension mounts and index files (a real directory: the Router stats through StaticFiles) ----

namespace {

// A directory removed at the end of the test, with `files` (relative path → content) in it.
struct TreeDir {
  std::string path;
  explicit TreeDir(std::initializer_list<std::pair<const char*, const char*>> files) {
    char tmpl[] = "/tmp/spawnd-router-XXXXXX";
    path = ::mkdtemp(tmpl);
    for (const auto& [rel, content] : files) {
      const std::filesystem::path p = std::filesystem::path(path) / rel;
      std::filesystem::create_directories(p.parent_path());
      std::ofstream(p) << content;
    }
  }
  ~TreeDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("router: --deny refuses the prefix and below with 403, whatever the spelling, before any mount",
          "[unit][router]") {
  Mounted m;
  m.router.deny("/cgi-bin/secret");
  m.router.deny("/conf/");
  for (const char* path : {"/conf", "/conf/", "/conf/x", "//conf/x", "/%63onf/x", "/a/../conf/x",
                           "/cgi-bin/secret", "/cgi-bin/secret/x"}) {
    CAPTURE(path);
    const spawnd::server::Route r = m.router.route(path);
    CHECK(r.status == 403);
    CHECK(r.gateway == nullptr);
  }
  CHECK(m.router.route("/conference").is_static());
  CHECK(m.router.route("/cgi-bin/secretary").gateway == m.cgi);
}

TEST_CASE("router: an extension mount takes existing scripts only, and a directory's index script", "[unit][router]") {
  TreeDir tree({{"a.php", "<?php"}, {"sub/b.php", "<?php"}, {"index.php", "<?php"}, {"docs/index.html", "docs"},
                {"dir.php/x", ""}, {"text.txt", "t"}});
  spawnd::server::StaticFiles files(tree.path, spawnd::server::SymlinkPolicy::Owner, {"index.php", "index.html"});
  Router router;
  router.set_static_files(&files);
  auto php = std::make_unique<NullGateway>();
  Gateway* php_ptr = php.get();
  router.mount("*.php", std::move(php));
  CHECK(router.route("/a.php").gateway == php_ptr);
  CHECK(router.route("/a.php/extra/x").gateway == php_ptr);
  CHECK(router.route("/sub/b.php").gateway == php_ptr);
  CHECK(router.route("/%61.php").gateway == php_ptr);
  CHECK(router.route("/missing.php").status == 404);
  CHECK(router.route("/missing.php/x").status == 404);
  CHECK(router.route("/dir.php").status == 404);  // a directory, not a script
  CHECK(router.route("/text.txt").is_static());
  // Directories: "/" has index.php (a script), "/docs/" index.html (static, its path rewritten), "/sub/" none.
  const spawnd::server::Route top = router.route("/");
  CHECK(top.gateway == php_ptr);
  CHECK(top.path == "/index.php");
  const spawnd::server::Route docs = router.route("/docs/");
  CHECK(docs.is_static());
  CHECK(docs.path == "/docs/index.html");
  CHECK(router.route("/sub/").is_static());
  CHECK(router.route("/sub/").path.empty());
}
