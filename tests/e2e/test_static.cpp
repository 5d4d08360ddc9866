// Static files end to end: a real spawnd serving a temp document root. Conditional requests (RFC 9110 §13),
// ranges (§14), path safety (no way out of the root), directories, MIME types and large files.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "harness.h"

using namespace spawnd::e2e;

namespace {

std::vector<std::string> static_args(const TempDir& root) { return {"--root", root.path(), "--quiet"}; }

// "GET target HTTP/1.1" with Host, Connection: close and the given extra field lines (each ending in CRLF).
std::string get_with(std::string_view target, std::string_view extra_fields) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
         std::string(extra_fields) + "\r\n";
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

}  // namespace

// ---- conditional requests ----

TEST_CASE("If-None-Match with the ETag of a first GET yields 304 without a body", "[e2e][static]") {
  TempDir root;
  root.write("page.html", "<p>hello</p>\n");
  Spawnd s(static_args(root));
  auto first = get(s.port(), "/page.html");
  REQUIRE(first.status == 200);
  REQUIRE(first.field("ETag").has_value());

  auto again = request(s.port(), get_with("/page.html", "If-None-Match: " + *first.field("ETag") + "\r\n"));
  CHECK(again.status == 304);
  CHECK(again.body.empty());
  CHECK(again.field("ETag") == first.field("ETag"));
  CHECK(!again.field("Content-Length").has_value());

  auto other = request(s.port(), get_with("/page.html", "If-None-Match: \"not-the-tag\"\r\n"));
  CHECK(other.status == 200);
  CHECK(other.body == "<p>hello</p>\n");
}

TEST_CASE("If-Modified-Since with the Last-Modified of a first GET yields 304", "[e2e][static]") {
  TempDir root;
  root.write("page.html", "<p>hello</p>\n");
  Spawnd s(static_args(root));
  auto first = get(s.port(), "/page.html");
  REQUIRE(first.status == 200);
  REQUIRE(first.field("Last-Modified").has_value());

  auto again = request(s.port(), get_with("/page.html", "If-Modified-Since: " + *first.field("Last-Modified") + "\r\n"));
  CHECK(again.status == 304);
  CHECK(again.body.empty());

  auto older = request(s.port(), get_with("/page.html", "If-Modified-Since: Mon, 01 Jan 2001 00:00:00 GMT\r\n"));
  CHECK(older.status == 200);
  CHECK(older.body == "<p>hello</p>\n");
}

TEST_CASE("If-Match with a tag that does not match yields 412", "[e2e][static]") {
  TempDir root;
  root.write("page.html", "<p>hello</p>\n");
  Spawnd s(static_args(root));
  auto failed = request(s.port(), get_with("/page.html", "If-Match: \"stale\"\r\n"));
  CHECK(failed.status == 412);

  auto first = get(s.port(), "/page.html");
  REQUIRE(first.field("ETag").has_value());
  auto matched = request(s.port(), get_with("/page.html", "If-Match: " + *first.field("ETag") + "\r\n"));
  CHECK(matched.status == 200);
  CHECK(matched.body == "<p>hello</p>\n");
}

// ---- ranges ----

TEST_CASE("Range bytes=0-3 yields 206 with the first four bytes and their Content-Range", "[e2e][static]") {
  TempDir root;
  const std::string content = "0123456789abcdef";
  root.write("data.bin", content);
  Spawnd s(static_args(root));
  auto r = request(s.port(), get_with("/data.bin", "Range: bytes=0-3\r\n"));
  CHECK(r.status == 206);
  CHECK(r.field("Content-Range") == std::optional<std::string>("bytes 0-3/16"));
  CHECK(r.field("Content-Length") == std::optional<std::string>("4"));
  CHECK(r.body == "0123");
}

TEST_CASE("A suffix range bytes=-4 yields the last four bytes", "[e2e][static]") {
  TempDir root;
  root.write("data.bin", "0123456789abcdef");
  Spawnd s(static_args(root));
  auto r = request(s.port(), get_with("/data.bin", "Range: bytes=-4\r\n"));
  CHECK(r.status == 206);
  CHECK(r.field("Content-Range") == std::optional<std::string>("bytes 12-15/16"));
  CHECK(r.body == "cdef");
}

TEST_CASE("A range past the end yields 416 with Content-Range bytes */SIZE", "[e2e][static]") {
  TempDir root;
  root.write("data.bin", "0123456789abcdef");
  Spawnd s(static_args(root));
  auto r = request(s.port(), get_with("/data.bin", "Range: bytes=100-200\r\n"));
  CHECK(r.status == 416);
  CHECK(r.field("Content-Range") == std::optional<std::string>("bytes */16"));
}

TEST_CASE("If-Range with a stale ETag yields the full 200 response", "[e2e][static]") {
  TempDir root;
  root.write("data.bin", "0123456789abcdef");
  Spawnd s(static_args(root));
  auto stale = request(s.port(), get_with("/data.bin", "Range: bytes=0-3\r\nIf-Range: \"stale-tag\"\r\n"));
  CHECK(stale.status == 200);
  CHECK(!stale.field("Content-Range").has_value());
  CHECK(stale.body == "0123456789abcdef");

  auto etag = get(s.port(), "/data.bin").field("ETag");
  REQUIRE(etag.has_value());
  auto fresh = request(s.port(), get_with("/data.bin", "Range: bytes=0-3\r\nIf-Range: " + *etag + "\r\n"));
  CHECK(fresh.status == 206);
  CHECK(fresh.body == "0123");
}

// ---- path safety ----

TEST_CASE("A missing file yields 404", "[e2e][static]") {
  TempDir root;
  root.write("here.txt", "here");
  Spawnd s(static_args(root));
  auto r = get(s.port(), "/not-here.txt");
  CHECK(r.status == 404);
  CHECK(r.field("Content-Type") == std::optional<std::string>("text/html; charset=utf-8"));
}

TEST_CASE("Dot-dot segments, raw or percent-encoded, cannot leave the root", "[e2e][static]") {
  TempDir root;
  root.write("a.txt", "inside");
  Spawnd s(static_args(root));
  // Sent raw: the harness does not normalise the request-target as a browser or curl would.
  for (const char* target : {"/../etc/passwd", "/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                             "/%2E%2E/%2E%2E/%2E%2E/etc/passwd", "/a/../../etc/passwd", "/.%2e/etc/passwd"}) {
    INFO(target);
    auto r = get(s.port(), target);
    CHECK(r.status == 404);
    CHECK(r.body.find("root:") == std::string::npos);
  }
  // Dot-dot that stays inside the root is resolved, not refused.
  auto inside = get(s.port(), "/sub/../a.txt");
  CHECK(inside.status == 200);
  CHECK(inside.body == "inside");
}

TEST_CASE("A percent-encoded slash is not a path separator", "[e2e][static]") {
  TempDir root;
  root.write("dir/file.txt", "nested");
  Spawnd s(static_args(root));
  CHECK(get(s.port(), "/dir/file.txt").status == 200);
  CHECK(get(s.port(), "/dir%2Ffile.txt").status == 404);
  CHECK(get(s.port(), "/dir%2ffile.txt").status == 404);
  CHECK(get(s.port(), "/%2Fetc%2Fpasswd").status == 404);
}

TEST_CASE("Dotfiles and dot-directories are never served", "[e2e][static]") {
  TempDir root;
  root.write(".hidden", "secret");
  root.write("dir/.git/config", "[core]");
  root.write(".htpasswd", "user:hash");
  Spawnd s(static_args(root));
  for (const char* target : {"/.hidden", "/dir/.git/config", "/.htpasswd", "/dir/%2egit/config"}) {
    INFO(target);
    auto r = get(s.port(), target);
    CHECK(r.status == 404);
    CHECK(r.body.find("secret") == std::string::npos);
    CHECK(r.body.find("[core]") == std::string::npos);
  }
}

// A root with symbolic links of every kind (issue 19, --follow-symlinks). Owners: everything is the test's user,
// except foreign.txt (a link owned by `nobody`, to a file of ours) and to-foreign.txt (our link to a file owned by
// `nobody`), which need root to create (lchown); has_foreign says whether they exist.
struct LinkTree {
  TempDir root;
  TempDir outside;
  bool has_foreign = ::geteuid() == 0;
  LinkTree() {
    namespace fs = std::filesystem;
    root.write("real.txt", "real content");
    root.write("sub/keep", "");
    outside.write("secret.txt", "outside the root");
    fs::create_symlink("real.txt", root.path() + "/alias.txt");
    fs::create_symlink("../real.txt", root.path() + "/sub/up.txt");
    fs::create_symlink(outside.path() + "/secret.txt", root.path() + "/out.txt");
    fs::create_symlink(outside.path(), root.path() + "/outdir");  // a directory link, as Debian's lib/tpl
    if (has_foreign) {
      constexpr uid_t kNobody = 65534;
      fs::create_symlink("real.txt", root.path() + "/foreign.txt");
      REQUIRE(::lchown((root.path() + "/foreign.txt").c_str(), kNobody, kNobody) == 0);
      const std::string theirs = outside.write("theirs.txt", "owned by nobody");
      REQUIRE(::chown(theirs.c_str(), kNobody, kNobody) == 0);
      fs::create_symlink(theirs, root.path() + "/to-foreign.txt");
      fs::create_symlink(outside.path(), root.path() + "/foreign-dir");
      REQUIRE(::lchown((root.path() + "/foreign-dir").c_str(), kNobody, kNobody) == 0);
    }
  }
  [[nodiscard]] std::vector<std::string> args(const char* policy) const {
    std::vector<std::string> a{"--root", root.path(), "--quiet"};
    if (policy != nullptr) a.insert(a.end(), {"--follow-symlinks", policy});
    return a;
  }
};

TEST_CASE("symlink policy never refuses every symlink with 403", "[e2e][static][symlinks]") {
  LinkTree tree;
  Spawnd s(tree.args("never"));
  CHECK(get(s.port(), "/real.txt").status == 200);
  for (const char* target : {"/alias.txt", "/sub/up.txt", "/out.txt", "/outdir/secret.txt", "/foreign.txt"}) {
    INFO(target);
    const auto r = get(s.port(), target);
    CHECK((r.status == 403 || (r.status == 404 && std::string_view(target) == "/foreign.txt" && !tree.has_foreign)));
    CHECK(r.body.find("content") == std::string::npos);
  }
}

TEST_CASE("symlink policy owner (the default) follows a link only to a file of the link's owner",
          "[e2e][static][symlinks]") {
  LinkTree tree;
  const char* policy = GENERATE(as<const char*>{}, nullptr, "owner");
  CAPTURE(policy == nullptr ? "(default)" : policy);
  Spawnd s(tree.args(policy));
  CHECK(get(s.port(), "/alias.txt").body == "real content");
  CHECK(get(s.port(), "/sub/up.txt").body == "real content");
  // Out of the root, as Debian's packages link into /var/lib and /etc: followed, the owner being the same.
  CHECK(get(s.port(), "/out.txt").body == "outside the root");
  CHECK(get(s.port(), "/outdir/secret.txt").body == "outside the root");
  if (!tree.has_foreign) {
    WARN("not root: the links of another owner could not be made (lchown)");
    return;
  }
  for (const char* target : {"/foreign.txt", "/to-foreign.txt", "/foreign-dir/secret.txt"}) {
    INFO(target);
    const auto r = get(s.port(), target);
    CHECK(r.status == 403);
    CHECK(r.body.find("content") == std::string::npos);
    CHECK(r.body.find("owned by nobody") == std::string::npos);
    CHECK(r.body.find("outside the root") == std::string::npos);
  }
}

TEST_CASE("symlink policy always follows every link, but a path still cannot climb out or name a dotfile",
          "[e2e][static][symlinks]") {
  LinkTree tree;
  tree.root.write(".hidden", "hidden");
  Spawnd s(tree.args("always"));
  CHECK(get(s.port(), "/alias.txt").body == "real content");
  CHECK(get(s.port(), "/out.txt").body == "outside the root");
  CHECK(get(s.port(), "/outdir/secret.txt").body == "outside the root");
  if (tree.has_foreign) {
    CHECK(get(s.port(), "/foreign.txt").body == "real content");
    CHECK(get(s.port(), "/to-foreign.txt").body == "owned by nobody");
  }
  const std::string up = "/../" + std::filesystem::path(tree.outside.path()).filename().string() + "/secret.txt";
  for (const std::string& target : {up, std::string("/.hidden"), std::string("/%2e%2e/etc/passwd"),
                                    std::string("/outdir/../../etc/passwd")}) {
    INFO(target);
    const auto r = get(s.port(), target);
    CHECK(r.status == 404);
    CHECK(r.body.find("root:") == std::string::npos);
  }
}

TEST_CASE("/.well-known/ is served although other dot segments are not (RFC 8615)", "[e2e][static]") {
  TempDir root;
  root.write(".well-known/security.txt", "Contact: mailto:x@example.org\n");
  root.write(".git/config", "[core]\n");
  Spawnd s({"--root", root.path(), "--quiet"});
  CHECK(get(s.port(), "/.well-known/security.txt").status == 200);
  CHECK(get(s.port(), "/.git/config").status == 404);
  CHECK(get(s.port(), "/a/.well-known/x").status == 404);
}

// ---- directories ----

TEST_CASE("A directory is answered with its index.html", "[e2e][static]") {
  TempDir root;
  root.write("index.html", "<h1>home</h1>");
  root.write("docs/index.html", "<h1>docs</h1>");
  root.write("empty/other.txt", "x");
  Spawnd s(static_args(root));
  auto home = get(s.port(), "/");
  CHECK(home.status == 200);
  CHECK(home.body == "<h1>home</h1>");
  CHECK(home.field("Content-Type") == std::optional<std::string>("text/html; charset=utf-8"));
  auto docs = get(s.port(), "/docs/");
  CHECK(docs.status == 200);
  CHECK(docs.body == "<h1>docs</h1>");
  CHECK(get(s.port(), "/empty/").status == 404);  // no index.html, and no listings
}

TEST_CASE("A directory named without its trailing slash is redirected with 301, query kept", "[e2e][static]") {
  TempDir root;
  root.write("docs/index.html", "<h1>docs</h1>");
  Spawnd s(static_args(root));
  auto r = get(s.port(), "/docs");
  CHECK(r.status == 301);
  CHECK(r.field("Location") == std::optional<std::string>("/docs/"));
  auto q = get(s.port(), "/docs?page=2&x=y");
  CHECK(q.status == 301);
  CHECK(q.field("Location") == std::optional<std::string>("/docs/?page=2&x=y"));
}

TEST_CASE("A directory redirect always stays on this site", "[e2e][static]") {
  TempDir root;
  root.write("docs/index.html", "<h1>docs</h1>");
  root.write("my dir/index.html", "<h1>spaced</h1>");
  Spawnd s(static_args(root));
  // The Location is built from the normalised path: a raw "//host/.." or "/\\host/.." prefix would otherwise make
  // it a protocol-relative URL that a browser follows to another site (an open redirect).
  for (const char* target : {"//evil.example/../docs", "/\\evil.example/../docs", "///evil.example/../docs",
                             "/x/../docs", "/%64ocs", "/./docs"}) {
    INFO(target);
    auto r = get(s.port(), target);
    CHECK(r.status == 301);
    CHECK(r.field("Location") == std::optional<std::string>("/docs/"));
  }
  auto q = get(s.port(), "//evil.example/../docs?next=1");
  CHECK(q.field("Location") == std::optional<std::string>("/docs/?next=1"));
  auto spaced = get(s.port(), "/my%20dir");
  CHECK(spaced.status == 301);
  CHECK(spaced.field("Location") == std::optional<std::string>("/my%20dir/"));
  CHECK(get(s.port(), "/my%20dir/").body == "<h1>spaced</h1>");
}

// ---- types and sizes ----

TEST_CASE("Content-Type follows the file extension, unknown ones are application/octet-stream", "[e2e][static]") {
  TempDir root;
  root.write("a.html", "<p>");
  root.write("a.css", "p{}");
  root.write("a.png", "\x89PNG\r\n\x1a\n");
  root.write("a.svg", "<svg/>");
  root.write("a.unknownext", "?");
  root.write("noextension", "?");
  root.write("UPPER.HTML", "<p>");
  Spawnd s(static_args(root));
  auto type = [&](const char* target) { return get(s.port(), target).field("Content-Type").value_or("(none)"); };
  CHECK(type("/a.html") == "text/html; charset=utf-8");
  CHECK(type("/a.css") == "text/css; charset=utf-8");
  CHECK(type("/a.png") == "image/png");
  CHECK(type("/a.svg") == "image/svg+xml");
  CHECK(type("/a.unknownext") == "application/octet-stream");
  CHECK(type("/noextension") == "application/octet-stream");
  CHECK(type("/UPPER.HTML") == "text/html; charset=utf-8");
}

TEST_CASE("A file of several MiB arrives byte-exact", "[e2e][static]") {
  TempDir root;
  const std::string content = random_bytes(5 * 1024 * 1024 + 123, 42);
  root.write("big.bin", content);
  Spawnd s(static_args(root));
  auto r = get(s.port(), "/big.bin", 20000);
  REQUIRE(r.status == 200);
  CHECK(r.is_complete);
  CHECK(r.field("Content-Length") == std::optional<std::string>(std::to_string(content.size())));
  CHECK(r.body.size() == content.size());
  CHECK((r.body == content));  // parenthesised: a mismatch must not print megabytes
}

TEST_CASE("An empty file is a 200 with Content-Length 0", "[e2e][static]") {
  TempDir root;
  root.write("empty.txt", "");
  Spawnd s(static_args(root));
  auto r = get(s.port(), "/empty.txt");
  CHECK(r.status == 200);
  CHECK(r.field("Content-Length") == std::optional<std::string>("0"));
  CHECK(r.body.empty());
}
