// The example handlers end to end: a real spawnd in CGI mode, the built handlers, a temp SQLite file.
#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

using namespace spawnd::e2e;

namespace {

std::vector<std::string> handler_args(const TempDir& dir) {
  return {"--root", SPAWND_SOURCE_DIR "/www", "--cgi-bin", SPAWND_CGI_BIN_DIR, "--db", dir.path() + "/site.db",
          "--quiet"};
}

std::string form_post(std::string_view target, std::string_view body) {
  return "POST " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
         "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + std::string(body);
}

std::string with_body(std::string_view method, std::string_view target, std::string_view body) {
  return std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
         "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}


}  // namespace

TEST_CASE("hello answers through the CGI gateway", "[e2e][handlers]") {
  TempDir dir;
  Spawnd s(handler_args(dir));
  auto r = get(s.port(), "/cgi-bin/hello");
  CHECK(r.status == 200);
  CHECK(r.body == "Hello, world!\n");
  CHECK(r.field("Content-Length") == std::optional<std::string>("14"));
}

TEST_CASE("guestbook signs with 303, shows the entry, and escapes hostile input", "[e2e][handlers]") {
  TempDir dir;
  Spawnd s(handler_args(dir));
  auto page = get(s.port(), "/cgi-bin/guestbook");
  REQUIRE(page.status == 200);
  CHECK(page.field("Content-Type")->find("text/html") == 0);
  CHECK(page.body.find("<form") != std::string::npos);

  auto post = request(s.port(), form_post("/cgi-bin/guestbook", "name=%3Cscript%3Ealert(1)%3C%2Fscript%3E&message=hi+%26+bye"));
  CHECK(post.status == 303);
  CHECK(post.field("Location") == std::optional<std::string>("/cgi-bin/guestbook"));

  auto after = get(s.port(), "/cgi-bin/guestbook");
  REQUIRE(after.status == 200);
  CHECK(after.body.find("<script>alert(1)</script>") == std::string::npos);
  CHECK(after.body.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(after.body.find("hi &amp; bye") != std::string::npos);

  auto empty = request(s.port(), form_post("/cgi-bin/guestbook", "name=&message="));
  CHECK(empty.status == 400);
  CHECK(count_rows(dir.path() + "/site.db", "guestbook") == 1);
}

TEST_CASE("kv stores, returns, lists and deletes JSON documents", "[e2e][handlers]") {
  TempDir dir;
  Spawnd s(handler_args(dir));
  CHECK(request(s.port(), with_body("PUT", "/cgi-bin/kv/apple", R"({"color":"red"})")).status == 201);
  CHECK(request(s.port(), with_body("PUT", "/cgi-bin/kv/apricot", R"([1,2,3])")).status == 201);
  CHECK(request(s.port(), with_body("PUT", "/cgi-bin/kv/apple", R"({"color":"green"})")).status == 204);

  auto got = get(s.port(), "/cgi-bin/kv/apple");
  CHECK(got.status == 200);
  CHECK(got.field("Content-Type")->find("application/json") == 0);
  CHECK(got.body == R"({"color":"green"})");

  auto list = get(s.port(), "/cgi-bin/kv?prefix=ap");
  CHECK(list.status == 200);
  CHECK(list.body.find("\"apple\"") != std::string::npos);
  CHECK(list.body.find("\"apricot\"") != std::string::npos);

  CHECK(request(s.port(), with_body("PUT", "/cgi-bin/kv/bad", "{not json")).status == 400);
  CHECK(request(s.port(), "DELETE /cgi-bin/kv/apple HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").status == 204);
  CHECK(get(s.port(), "/cgi-bin/kv/apple").status == 404);
  auto patch = request(s.port(), "PATCH /cgi-bin/kv/apple HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  CHECK(patch.status == 405);
  CHECK(patch.field("Allow").has_value());
}

TEST_CASE("env shows the request as the handler sees it, escaped", "[e2e][handlers]") {
  TempDir dir;
  Spawnd s(handler_args(dir));
  auto r = get(s.port(), "/cgi-bin/env/extra?q=%3Cb%3E");
  CHECK(r.status == 200);
  CHECK(r.body.find("PATH_INFO") != std::string::npos);
  CHECK(r.body.find("/extra") != std::string::npos);
  CHECK(r.body.find("<b>") == std::string::npos);
}

TEST_CASE("a POST flood loses and doubles nothing: rows equal the 303 answers", "[e2e][handlers]") {
  TempDir dir;
  Spawnd s(handler_args(dir));
  std::atomic<int> see_other{0}, other{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        auto r = request(s.port(), form_post("/cgi-bin/guestbook",
                                             "name=client" + std::to_string(t) + "&message=post" + std::to_string(i)));
        (r.status == 303 ? see_other : other)++;
      }
    });
  }
  for (auto& c : clients) c.join();
  CHECK(other.load() == 0);
  CHECK(see_other.load() == 200);
  CHECK(count_rows(dir.path() + "/site.db", "guestbook") == see_other.load());
}
