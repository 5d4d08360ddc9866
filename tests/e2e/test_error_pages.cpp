// Custom error pages end to end (--error-pages DIR; error_pages.h): the error responses spawnd makes itself get
// DIR/NNN.html as their body, with the same status and fields; a handler's own error responses are never replaced;
// a status without a file keeps the built-in page; a page over the size bound stops start-up.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <filesystem>
#include <string>
#include <vector>

#include "harness.h"

using namespace spawnd::e2e;
using spawnd::Fd;

namespace {

namespace fs = std::filesystem;


// DIR with 400, 404, 405, 502 and 503 pages (no 403.html, no 500.html).
void write_pages(const TempDir& dir) {
  for (const char* code : {"400", "404", "405", "502", "503"})
    dir.write(std::string(code) + ".html", std::string("<h1>custom ") + code + "</h1>\n");
  dir.write("notes.txt", "not a page\n");
  dir.write("4044.html", "not a page either\n");
}

std::string custom(const char* code) { return std::string("<h1>custom ") + code + "</h1>\n"; }

}  // namespace

TEST_CASE("Error pages: spawnd's own 404, 405 and 400 get the custom page, fields kept", "[e2e][error-pages]") {
  TempDir root;
  TempDir pages;
  write_pages(pages);
  root.write("page.html", "<p>page</p>\n");
  Spawnd s({"--root", root.path(), "--quiet", "--error-pages", pages.path(), "--cgi-bin", kCgiDir});

  const HttpResponse missing = get(s.port(), "/nothing-here.html");
  CHECK(missing.status == 404);
  CHECK(missing.body == custom("404"));
  CHECK(missing.field("Content-Type") == std::optional<std::string>("text/html"));
  // A script that does not exist is spawnd's 404 too.
  const HttpResponse no_script = get(s.port(), "/cgi-bin/no-such-script");
  CHECK(no_script.status == 404);
  CHECK(no_script.body == custom("404"));

  const HttpResponse post = request(s.port(), "POST /page.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                              "Content-Length: 0\r\n\r\n");
  CHECK(post.status == 405);
  CHECK(post.body == custom("405"));
  CHECK(post.field("Allow") == std::optional<std::string>("GET, HEAD"));

  const HttpResponse bad = request(s.port(), "GET /page.html HTTP/1.1\r\nHost: x\r\nBad Field\r\n\r\n");
  CHECK(bad.status == 400);
  CHECK(bad.body == custom("400"));

  // HEAD: the page's length, no body.
  Fd fd = connect_to(s.port());
  REQUIRE(send_all(fd, "HEAD /nothing-here.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const HttpResponse head = read_response(fd, true);
  CHECK(head.status == 404);
  CHECK(head.body.empty());
  CHECK(head.field("Content-Length") == std::optional<std::string>(std::to_string(custom("404").size())));
  check_clean_end(s);
}

TEST_CASE("Error pages: the gateway's 502 and 503 get the custom page, Retry-After kept", "[e2e][error-pages]") {
  TempDir root;
  TempDir pages;
  write_pages(pages);
  Spawnd s({"--root", root.path(), "--quiet", "--error-pages", pages.path(), "--cgi-bin", kCgiDir,
            "--max-children", "1", "--queue", "0"});
  const HttpResponse crashed = get(s.port(), "/cgi-bin/crash.sh");
  CHECK(crashed.status == 502);
  CHECK(crashed.body == custom("502"));
  CHECK(crashed.field("Content-Type") == std::optional<std::string>("text/html"));

  // The status page says when the crashed child has been reaped (its slot is free), then when the sleeper holds it.
  const auto running_is = [&](const char* n) {
    return wait_until(
        [&] {
          return get(s.port(), "/server-status").body.find("spawnd_handlers_running{site=\"default\",mode=\"cgi\"} " +
                                                           std::string(n) + "\n") != std::string::npos;
        },
        std::chrono::milliseconds(5'000));
  };
  REQUIRE(running_is("0"));
  Fd busy = connect_to(s.port());
  REQUIRE(send_all(busy, "GET /cgi-bin/sleep.sh?2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  REQUIRE(running_is("1"));
  const HttpResponse refused = get(s.port(), "/cgi-bin/hello.sh");
  CHECK(refused.status == 503);
  CHECK(refused.body == custom("503"));
  CHECK(refused.field("Retry-After").has_value());
  CHECK(read_response(busy).status == 200);
  check_clean_end(s);
}

TEST_CASE("Error pages: a handler's own error response is never replaced, a missing page falls back",
          "[e2e][error-pages]") {
  TempDir root;
  TempDir pages;
  write_pages(pages);
  Spawnd s({"--root", root.path(), "--quiet", "--error-pages", pages.path(), "--cgi-bin", kCgiDir, "--deny",
            "/private"});
  const HttpResponse own = get(s.port(), "/cgi-bin/status.sh");  // "Status: 404" from the script
  CHECK(own.status == 404);
  CHECK(own.body == "status 404 from the script\n");
  CHECK(own.field("Content-Type") == std::optional<std::string>("text/plain"));
  const HttpResponse own_502 = get(s.port(), "/cgi-bin/status.sh?502");
  CHECK(own_502.status == 502);
  CHECK(own_502.body == "status 502 from the script\n");

  // No 403.html: --deny's 403 keeps the built-in page.
  const HttpResponse denied = get(s.port(), "/private/x");
  CHECK(denied.status == 403);
  CHECK(denied.body.find("403 Forbidden") != std::string::npos);
  CHECK(denied.field("Content-Type") == std::optional<std::string>("text/html; charset=utf-8"));
  check_clean_end(s);
}

TEST_CASE("Error pages: a page over 64 KiB or a missing directory stops start-up", "[e2e][error-pages]") {
  TempDir root;
  TempDir pages;
  pages.write("404.html", std::string(64 * 1024 + 1, 'x'));
  const ExitResult big = run_spawnd({"--root", root.path(), "--listen", "127.0.0.1:0", "--error-pages", pages.path()});
  CHECK(WEXITSTATUS(big.status) == 2);
  CHECK(big.stderr_text.find("404.html") != std::string::npos);
  CHECK(big.stderr_text.find("65536") != std::string::npos);

  const ExitResult none =
      run_spawnd({"--root", root.path(), "--listen", "127.0.0.1:0", "--error-pages", pages.path() + "/nope"});
  CHECK(WEXITSTATUS(none.status) == 2);
}
