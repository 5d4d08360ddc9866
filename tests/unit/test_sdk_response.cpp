// Response, HTML escaping, JSON errors and the CGI serialisation and exception mapping of spawnd/runtime.h.
#include <catch2/catch.hpp>

#include <spawnd/json.h>
#include <spawnd/runtime.h>

#include <stdexcept>
#include <string>

namespace sdk = spawnd::sdk;

TEST_CASE("html_escape escapes the five HTML specials and nothing else", "[unit][sdk]") {
  struct Row {
    const char* in;
    const char* want;
  };
  const Row rows[] = {
      {"", ""},
      {"plain text", "plain text"},
      {"<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
      {"a & b", "a &amp; b"},
      {"\"quoted\" 'single'", "&quot;quoted&quot; &#39;single&#39;"},
      {"&amp;", "&amp;amp;"},
      {"caf\xC3\xA9 \xE2\x82\xAC", "caf\xC3\xA9 \xE2\x82\xAC"},
  };
  for (const Row& row : rows) {
    INFO(row.in);
    CHECK(sdk::html_escape(row.in) == row.want);
  }
  std::string out = "x";
  sdk::append_html_escaped(out, "<");
  CHECK(out == "x&lt;");
}

TEST_CASE("Response helpers set status, Content-Type and body", "[unit][sdk]") {
  auto t = sdk::Response::text("hi\n");
  CHECK(t.status() == 200);
  CHECK(t.header("content-type") == "text/plain; charset=utf-8");
  CHECK(t.body() == "hi\n");

  auto h = sdk::Response::html("<p>x</p>", 201);
  CHECK(h.status() == 201);
  CHECK(h.header("Content-Type") == "text/html; charset=utf-8");

  auto r = sdk::Response::redirect("/cgi-bin/guestbook?a=1&b=2");
  CHECK(r.status() == 303);
  CHECK(r.header("Location") == "/cgi-bin/guestbook?a=1&b=2");
  CHECK(r.body().find("href=\"/cgi-bin/guestbook?a=1&amp;b=2\"") != std::string::npos);

  auto e = sdk::Response::error(404, "no <such> page");
  CHECK(e.status() == 404);
  CHECK(e.body().find("404 Not Found") != std::string::npos);
  CHECK(e.body().find("no &lt;such&gt; page") != std::string::npos);
}

TEST_CASE("Response header fields: set replaces, add appends, bad fields throw", "[unit][sdk]") {
  sdk::Response r;
  r.set_header("X-A", "1").add_header("Set-Cookie", "a=1").add_header("Set-Cookie", "b=2");
  r.set_header("x-a", "2");
  CHECK(r.header("X-A") == "2");
  CHECK(r.headers().size() == 3);
  CHECK_THROWS_AS(r.set_header("X-Evil", "a\r\nSet-Cookie: pwned=1"), std::invalid_argument);
  CHECK_THROWS_AS(r.set_header("Bad Name", "v"), std::invalid_argument);
  CHECK_THROWS_AS(r.set_header("Content-Length", "3"), std::invalid_argument);
  CHECK_THROWS_AS(r.set_header("Status", "200"), std::invalid_argument);
  CHECK_THROWS_AS(r.set_status(42), std::invalid_argument);
}

TEST_CASE("JSON error responses", "[unit][sdk]") {
  auto e = sdk::Response::json_error(400, "invalid \"JSON\"\n");
  CHECK(e.status() == 400);
  CHECK(e.header("Content-Type") == "application/json");
  auto parsed = nlohmann::json::parse(e.body());
  CHECK(parsed["error"] == "invalid \"JSON\"\n");
  CHECK(parsed["status"] == 400);

  auto d = sdk::Response::json_error(503, "");
  CHECK(nlohmann::json::parse(d.body())["error"] == "Service Unavailable");

  CHECK(sdk::json_quote(std::string("a\x01\\", 3)) == "\"a\\u0001\\\\\"");
}

TEST_CASE("json_response and parse_json_body", "[unit][sdk]") {
  auto r = sdk::json_response(nlohmann::json{{"k", "v"}, {"n", 1}}, 201);
  CHECK(r.status() == 201);
  CHECK(r.header("Content-Type") == "application/json");
  CHECK(nlohmann::json::parse(r.body()) == nlohmann::json{{"k", "v"}, {"n", 1}});

  sdk::Request good({{"REQUEST_METHOD", "PUT"}}, "[1, 2, {\"a\": null}]");
  CHECK(sdk::parse_json_body(good).size() == 3);
  for (const char* bad : {"", "{", "{'a': 1}", "[1,]", "nul"}) {
    INFO(bad);
    sdk::Request req({{"REQUEST_METHOD", "PUT"}}, bad);
    try {
      (void)sdk::parse_json_body(req);
      FAIL("no exception");
    } catch (const sdk::HttpError& e) {
      CHECK(e.status() == 400);
    }
  }
}

TEST_CASE("cgi_response_head writes Status, fields, Content-Type and Content-Length", "[unit][sdk]") {
  auto t = sdk::Response::text("Hello, world!\n");
  t.add_header("Set-Cookie", "a=1");
  CHECK(sdk::cgi_response_head(t) ==
        "Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nSet-Cookie: a=1\r\nContent-Length: 14\r\n\r\n");

  sdk::Response bare(200);
  bare.set_body("xy");
  CHECK(sdk::cgi_response_head(bare) ==
        "Status: 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 2\r\n\r\n");

  sdk::Response none(204);
  CHECK(sdk::cgi_response_head(none) == "Status: 204 No Content\r\n\r\n");
  CHECK_FALSE(sdk::response_has_body(none, "GET"));

  CHECK(sdk::response_has_body(t, "GET"));
  CHECK_FALSE(sdk::response_has_body(t, "HEAD"));
  CHECK(sdk::cgi_response_head(sdk::Response::redirect("/x")).starts_with("Status: 303 See Other\r\n"));
}

TEST_CASE("parse_content_length accepts 1*DIGIT or nothing", "[unit][sdk]") {
  size_t n = 99;
  CHECK(sdk::parse_content_length("", n));
  CHECK(n == 0);
  CHECK(sdk::parse_content_length("1234", n));
  CHECK(n == 1234);
  for (const char* bad : {"-1", "1e3", " 12", "12 ", "0x10", "99999999999999999999"}) {
    INFO(bad);
    CHECK_FALSE(sdk::parse_content_length(bad, n));
  }
}

namespace {

sdk::Response throws_http(sdk::Request&, sdk::Context&) { throw sdk::HttpError(404, "no such <key>"); }
sdk::Response throws_runtime(sdk::Request&, sdk::Context&) { throw std::runtime_error("secret detail"); }
sdk::Response throws_int(sdk::Request&, sdk::Context&) { throw 42; }
sdk::Response throws_ok(sdk::Request&, sdk::Context&) { throw sdk::HttpError(200, "not an error status"); }
sdk::Response bad_form(sdk::Request& req, sdk::Context&) { return sdk::Response::text(std::string(req.form_value("a").value_or(""))); }

}  // namespace

TEST_CASE("run_handler maps exceptions to error responses in the handler's format", "[unit][sdk]") {
  sdk::Request req(sdk::MetaVars{{"REQUEST_METHOD", "GET"}, {"SCRIPT_NAME", "/cgi-bin/t"}});

  sdk::HandlerInfo html{.fn = throws_http, .name = "t"};
  sdk::Context ctx(html, "t", {});
  auto r = sdk::run_handler(html, req, ctx);
  CHECK(r.status() == 404);
  CHECK(r.header("Content-Type") == "text/html; charset=utf-8");
  CHECK(r.body().find("no such &lt;key&gt;") != std::string::npos);

  sdk::HandlerInfo json{.fn = throws_http, .name = "t", .error_format = sdk::ErrorFormat::Json};
  sdk::Context jctx(json, "t", {});
  auto j = sdk::run_handler(json, req, jctx);
  CHECK(j.status() == 404);
  CHECK(nlohmann::json::parse(j.body())["error"] == "no such <key>");

  // 500s do not leak what() to the client (it goes to the log line on stderr).
  sdk::HandlerInfo rt{.fn = throws_runtime, .name = "t"};
  sdk::Context rctx(rt, "t", {});
  auto e = sdk::run_handler(rt, req, rctx);
  CHECK(e.status() == 500);
  CHECK(e.body().find("secret") == std::string::npos);

  sdk::HandlerInfo odd{.fn = throws_int, .name = "t", .error_format = sdk::ErrorFormat::Json};
  sdk::Context octx(odd, "t", {});
  CHECK(sdk::run_handler(odd, req, octx).status() == 500);

  // HttpError with a status that is not an error is a handler bug: 500, not a crash.
  sdk::HandlerInfo ok{.fn = throws_ok, .name = "t"};
  sdk::Context okctx(ok, "t", {});
  CHECK(sdk::run_handler(ok, req, okctx).status() == 500);

  sdk::Request bad({{"REQUEST_METHOD", "POST"}, {"CONTENT_TYPE", "application/x-www-form-urlencoded"}}, "a=%x");
  sdk::HandlerInfo form{.fn = bad_form, .name = "t"};
  sdk::Context fctx(form, "t", {});
  CHECK(sdk::run_handler(form, bad, fctx).status() == 400);
}

TEST_CASE("Context::db() without SPAWND_DB is a 500, not a crash", "[unit][sdk]") {
  auto uses_db = [](sdk::Request&, sdk::Context& ctx) -> sdk::Response {
    (void)ctx.db();
    return sdk::Response::text("unreachable");
  };
  sdk::HandlerInfo info{.fn = uses_db, .name = "t"};
  sdk::Context ctx(info, "t", {});
  sdk::Request req(sdk::MetaVars{{"REQUEST_METHOD", "GET"}});
  CHECK(sdk::run_handler(info, req, ctx).status() == 500);
}
