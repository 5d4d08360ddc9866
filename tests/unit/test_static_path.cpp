// Unit tests for server/static_path.h: normalize_request_path, the first line of defence of the document root.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "server/static_path.h"

using spawnd::server::normalize_request_path;
using spawnd::server::PathStatus;

namespace {

struct PathCase {
  std::string_view raw;
  PathStatus status;
  std::string_view expected;  // only checked when status is Ok
};

const char* to_string(PathStatus s) {
  switch (s) {
    case PathStatus::Ok: return "Ok";
    case PathStatus::BadRequest: return "BadRequest";
    case PathStatus::NotFound: return "NotFound";
  }
  return "?";
}

void check_cases(std::initializer_list<PathCase> cases) {
  for (const PathCase& c : cases) {
    CAPTURE(c.raw);
    std::string out;
    const PathStatus status = normalize_request_path(c.raw, out);
    INFO("got " << to_string(status) << " \"" << out << "\", expected " << to_string(c.status));
    REQUIRE(status == c.status);
    if (c.status == PathStatus::Ok) CHECK(out == c.expected);
  }
}

}  // namespace

TEST_CASE("ordinary paths normalise to themselves", "[unit][static_path]") {
  check_cases({
      {"/", PathStatus::Ok, "/"},
      {"/index.html", PathStatus::Ok, "/index.html"},
      {"/docs/page.html", PathStatus::Ok, "/docs/page.html"},
      {"/a-b_c~d/e.f.g", PathStatus::Ok, "/a-b_c~d/e.f.g"},
      {"/file.", PathStatus::Ok, "/file."},
  });
}

TEST_CASE("a trailing slash is kept so the caller can serve the directory index", "[unit][static_path]") {
  check_cases({
      {"/docs/", PathStatus::Ok, "/docs/"},
      {"/docs//", PathStatus::Ok, "/docs/"},
      {"/docs/.", PathStatus::Ok, "/docs/"},
      {"/docs/sub/..", PathStatus::Ok, "/docs/"},
      {"/docs", PathStatus::Ok, "/docs"},
  });
}

TEST_CASE("repeated slashes collapse and dot segments are removed", "[unit][static_path]") {
  check_cases({
      {"//", PathStatus::Ok, "/"},
      {"///a///b", PathStatus::Ok, "/a/b"},
      {"/./a/./b", PathStatus::Ok, "/a/b"},
      {"/a/../b", PathStatus::Ok, "/b"},
      {"/a/b/../../c", PathStatus::Ok, "/c"},
      {"/a/b/..", PathStatus::Ok, "/a/"},
      {"/a/%2e%2e/b", PathStatus::Ok, "/b"},  // an encoded ".." inside the root is resolved like a plain one
      {"/.", PathStatus::Ok, "/"},
  });
}

TEST_CASE("percent-encoded characters are decoded", "[unit][static_path]") {
  check_cases({
      {"/hello%20world.txt", PathStatus::Ok, "/hello world.txt"},
      {"/%41%42c", PathStatus::Ok, "/ABc"},
      {"/caf%C3%A9", PathStatus::Ok, "/caf\xC3\xA9"},
      {"/a+b", PathStatus::Ok, "/a+b"},  // '+' is not a space in a path
      {"/100%25", PathStatus::Ok, "/100%"},
  });
}

TEST_CASE("hostile paths that climb above the root are not found", "[unit][static_path]") {
  check_cases({
      {"/..", PathStatus::NotFound, ""},
      {"/../etc/passwd", PathStatus::NotFound, ""},
      {"/a/../../b", PathStatus::NotFound, ""},
      {"/a/../../../etc/passwd", PathStatus::NotFound, ""},
      {"/%2e%2e/etc/passwd", PathStatus::NotFound, ""},
      {"/%2E%2E/etc/passwd", PathStatus::NotFound, ""},
      {"/.%2e/etc/passwd", PathStatus::NotFound, ""},
      {"/%2e%2e%2fetc", PathStatus::NotFound, ""},
      {"/..%2fetc/passwd", PathStatus::NotFound, ""},
      {"//../etc/passwd", PathStatus::NotFound, ""},
      {"/./../etc", PathStatus::NotFound, ""},
  });
}

TEST_CASE("dotfiles and dot directories are not found", "[unit][static_path]") {
  check_cases({
      {"/.git/config", PathStatus::NotFound, ""},
      {"/.git", PathStatus::NotFound, ""},
      {"/.git/", PathStatus::NotFound, ""},
      {"/a/.hidden", PathStatus::NotFound, ""},
      {"/.htpasswd", PathStatus::NotFound, ""},
      {"/%2ehtpasswd", PathStatus::NotFound, ""},
      {"/a/.well/b", PathStatus::NotFound, ""},
      {"/...", PathStatus::NotFound, ""},
      {"/a/.well-known/x", PathStatus::NotFound, ""},
      {"/.well-known2/x", PathStatus::NotFound, ""},
  });
}

TEST_CASE("/.well-known/ is the one dot segment allowed, and only first (RFC 8615)", "[unit][static_path]") {
  check_cases({
      {"/.well-known/security.txt", PathStatus::Ok, "/.well-known/security.txt"},
      {"/.well-known/", PathStatus::Ok, "/.well-known/"},
      {"/%2ewell-known/acme-challenge/t", PathStatus::Ok, "/.well-known/acme-challenge/t"},
      {"/.well-known/.git", PathStatus::NotFound, ""},
  });
}

TEST_CASE("script_path_length splits after the first segment ending in the extension", "[unit][static_path]") {
  using spawnd::server::script_path_length;
  constexpr auto npos = std::string_view::npos;
  CHECK(script_path_length("/a.php", ".php") == 6);
  CHECK(script_path_length("/a.php/extra", ".php") == 6);
  CHECK(script_path_length("/x/b.php/y/c.php", ".php") == 8);
  CHECK(script_path_length("/lib/exe/css.php", ".php") == 16);
  CHECK(script_path_length("/a.phpx", ".php") == npos);
  CHECK(script_path_length("/a.php.bak", ".php") == npos);
  CHECK(script_path_length("/.php", ".php") == npos);  // a name that is only the extension
  CHECK(script_path_length("/", ".php") == npos);
  CHECK(script_path_length("/dir/", ".php") == npos);
  CHECK(script_path_length("/a.cgi/x", ".cgi") == 6);
}

TEST_CASE("is_under_prefix matches at segment boundaries only", "[unit][static_path]") {
  using spawnd::server::is_under_prefix;
  CHECK(is_under_prefix("/conf", "/conf"));
  CHECK(is_under_prefix("/conf/", "/conf"));
  CHECK(is_under_prefix("/conf/x/y", "/conf/"));
  CHECK(is_under_prefix("/conf", "/conf/"));
  CHECK_FALSE(is_under_prefix("/conference", "/conf"));
  CHECK_FALSE(is_under_prefix("/conference", "/conf/"));
  CHECK_FALSE(is_under_prefix("/a/conf", "/conf"));
  CHECK(is_under_prefix("/anything", "/"));
}

TEST_CASE("an encoded slash or NUL is not found", "[unit][static_path]") {
  check_cases({
      {"/a%2Fb", PathStatus::NotFound, ""},
      {"/a%2fb", PathStatus::NotFound, ""},
      {"/%2F", PathStatus::NotFound, ""},
      {"/%2Fetc%2Fpasswd", PathStatus::NotFound, ""},
      {"/index.html%00", PathStatus::NotFound, ""},
      {"/%00", PathStatus::NotFound, ""},
      {"/a%00b/c", PathStatus::NotFound, ""},
  });
}

TEST_CASE("malformed escapes and paths that do not start with a slash are bad requests", "[unit][static_path]") {
  check_cases({
      {"", PathStatus::BadRequest, ""},
      {"index.html", PathStatus::BadRequest, ""},
      {"..", PathStatus::BadRequest, ""},
      {"%2e%2e/", PathStatus::BadRequest, ""},
      {"%2Fetc", PathStatus::BadRequest, ""},
      {"*", PathStatus::BadRequest, ""},
      {"http://example.com/", PathStatus::BadRequest, ""},
      {"/%zz", PathStatus::BadRequest, ""},
      {"/%4", PathStatus::BadRequest, ""},
      {"/a%", PathStatus::BadRequest, ""},
      {"/a%g1/b", PathStatus::BadRequest, ""},
      {"/ok/%", PathStatus::BadRequest, ""},
  });
}

TEST_CASE("a normalised path never contains dot segments or double slashes", "[unit][static_path]") {
  const std::string_view inputs[] = {"/a/./b/../c//d/", "/x/y/z/../../..", "//a//..//b//", "/a/b/c/./../../d"};
  for (const std::string_view raw : inputs) {
    CAPTURE(raw);
    std::string out;
    REQUIRE(normalize_request_path(raw, out) == PathStatus::Ok);
    CHECK(out.front() == '/');
    CHECK(out.find("//") == std::string::npos);
    CHECK(out.find("/./") == std::string::npos);
    CHECK(out.find("/../") == std::string::npos);
    std::string again;
    REQUIRE(normalize_request_path(out, again) == PathStatus::Ok);
    CHECK(again == out);  // idempotent
  }
}
