// Request built from a meta-variable map (handlers/sdk/include/spawnd/request.h): PATH_INFO, QUERY_STRING,
// HTTP_* header fields, CONTENT_TYPE and the lazily parsed query, cookies and form.
#include <catch2/catch.hpp>

#include <spawnd/http_error.h>
#include <spawnd/request.h>

#include <string>

using spawnd::sdk::HttpError;
using spawnd::sdk::Limits;
using spawnd::sdk::MetaVars;
using spawnd::sdk::Request;

namespace {

MetaVars base_meta() {
  return {{"GATEWAY_INTERFACE", "CGI/1.1"},
          {"REQUEST_METHOD", "POST"},
          {"SCRIPT_NAME", "/cgi-bin/kv"},
          {"PATH_INFO", "/some/key"},
          {"QUERY_STRING", "prefix=a%2Fb&x=1&x=2"},
          {"CONTENT_TYPE", "application/x-www-form-urlencoded; charset=utf-8"},
          {"CONTENT_LENGTH", "20"},
          {"REMOTE_ADDR", "127.0.0.1"},
          {"HTTP_HOST", "example.test"},
          {"HTTP_ACCEPT_LANGUAGE", "en, fr;q=0.5"},
          {"HTTP_X_FORWARDED_FOR", "10.0.0.1"},
          {"HTTP_COOKIE", "sid=abc; theme=dark"},
          {"PATH", "/usr/bin"}};
}

int status_of(const auto& fn) {
  try {
    fn();
  } catch (const HttpError& e) {
    return e.status();
  }
  return 0;
}

}  // namespace

TEST_CASE("Request exposes the meta-variables it was built from", "[unit][sdk]") {
  Request req(base_meta(), "name=Ada&message=hi");
  CHECK(req.method() == "POST");
  CHECK(req.script_name() == "/cgi-bin/kv");
  CHECK(req.path_info() == "/some/key");
  CHECK(req.path() == "/cgi-bin/kv/some/key");
  CHECK(req.query_string() == "prefix=a%2Fb&x=1&x=2");
  CHECK(req.remote_addr() == "127.0.0.1");
  CHECK(req.meta("GATEWAY_INTERFACE") == "CGI/1.1");
  CHECK(req.meta("NOT_SET") == "");
  CHECK_FALSE(req.find_meta("NOT_SET").has_value());
  CHECK(req.find_meta("PATH") == "/usr/bin");
}

TEST_CASE("Request with no PATH_INFO or QUERY_STRING", "[unit][sdk]") {
  Request req(MetaVars{{"REQUEST_METHOD", "GET"}, {"SCRIPT_NAME", "/cgi-bin/hello"}});
  CHECK(req.path() == "/cgi-bin/hello");
  CHECK(req.path_info().empty());
  CHECK(req.query().empty());
  CHECK(req.cookies().empty());
  CHECK(req.form().fields.empty());
  CHECK(req.body().empty());
  CHECK(req.headers().empty());
}

TEST_CASE("Request parses the query string, decoding escapes, keeping duplicates", "[unit][sdk]") {
  Request req(base_meta());
  CHECK(req.query("prefix") == "a/b");
  CHECK(req.query().get_all("x").size() == 2);
  CHECK_FALSE(req.query("nope").has_value());
}

TEST_CASE("Request with a malformed query string answers 400", "[unit][sdk]") {
  Request req(MetaVars{{"REQUEST_METHOD", "GET"}, {"QUERY_STRING", "a=%zz"}});
  CHECK(status_of([&] { (void)req.query(); }) == 400);
}

TEST_CASE("Request maps header field names onto HTTP_* meta-variables", "[unit][sdk]") {
  Request req(base_meta());
  CHECK(req.header("Host") == "example.test");
  CHECK(req.header("accept-language") == "en, fr;q=0.5");
  CHECK(req.header("X-Forwarded-For") == "10.0.0.1");
  CHECK(req.header("Content-Type") == "application/x-www-form-urlencoded; charset=utf-8");
  CHECK(req.header("content-length") == "20");
  CHECK_FALSE(req.header("Authorization").has_value());

  auto headers = req.headers();
  auto has = [&](const char* name, const char* value) {
    for (const auto& [n, v] : headers)
      if (n == name && v == value) return true;
    return false;
  };
  CHECK(has("Host", "example.test"));
  CHECK(has("Accept-Language", "en, fr;q=0.5"));
  CHECK(has("X-Forwarded-For", "10.0.0.1"));
  CHECK(has("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"));
  CHECK(has("Content-Length", "20"));
  CHECK(headers.size() == 6);  // no PATH, REMOTE_ADDR, ... : only HTTP_* and CONTENT_*
}

TEST_CASE("Request parses cookies", "[unit][sdk]") {
  Request req(base_meta());
  CHECK(req.cookie("sid") == "abc");
  CHECK(req.cookie("theme") == "dark");
  CHECK_FALSE(req.cookie("SID").has_value());
}

TEST_CASE("Request parses an urlencoded form by CONTENT_TYPE", "[unit][sdk]") {
  Request req(base_meta(), "name=Ada+L&message=%3Cb%3E");
  CHECK(req.form_value("name") == "Ada L");
  CHECK(req.form_value("message") == "<b>");
  CHECK(req.form().files.empty());
}

TEST_CASE("Request parses a multipart form by CONTENT_TYPE", "[unit][sdk]") {
  MetaVars meta = {{"REQUEST_METHOD", "POST"}, {"CONTENT_TYPE", "multipart/form-data; boundary=zz"}};
  Request req(meta, "--zz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--zz--\r\n");
  CHECK(req.form_value("a") == "1");
}

TEST_CASE("Request ignores bodies of other content types as forms", "[unit][sdk]") {
  Request req({{"REQUEST_METHOD", "PUT"}, {"CONTENT_TYPE", "application/json"}}, "{\"a\":1}");
  CHECK(req.form().fields.empty());
  CHECK(req.body() == "{\"a\":1}");
}

TEST_CASE("Request answers 400 for bad forms", "[unit][sdk]") {
  SECTION("bad escape") {
    Request req({{"CONTENT_TYPE", "application/x-www-form-urlencoded"}}, "a=%");
    CHECK(status_of([&] { (void)req.form(); }) == 400);
  }
  SECTION("multipart without boundary") {
    Request req({{"CONTENT_TYPE", "multipart/form-data"}}, "--x\r\n");
    CHECK(status_of([&] { (void)req.form(); }) == 400);
  }
  SECTION("truncated multipart") {
    Request req({{"CONTENT_TYPE", "multipart/form-data; boundary=x"}},
                "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end");
    CHECK(status_of([&] { (void)req.form_value("a"); }) == 400);
  }
  SECTION("over the field limit") {
    Limits limits;
    limits.max_field_bytes = 4;
    Request req({{"CONTENT_TYPE", "application/x-www-form-urlencoded"}}, "name=toolong", limits);
    CHECK(status_of([&] { (void)req.form(); }) == 400);
  }
}
