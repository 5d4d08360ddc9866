// Unit tests for common/cgi_env.h: build_cgi_env, the meta-variables of RFC 3875 §4.1 shared by every gateway.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/cgi_env.h"

using spawnd::build_cgi_env;
using spawnd::CgiRequestInfo;

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;
using Env = std::map<std::string, std::string>;

// A GET of "/cgi-bin/env?a=1" with no extra path and no body; each test changes what it is about.
CgiRequestInfo base_request(const Fields& fields) {
  CgiRequestInfo in;
  in.method = "GET";
  in.protocol = "HTTP/1.1";
  in.request_uri = "/cgi-bin/env?a=1";
  in.query = "a=1";
  in.script_name = "/cgi-bin/env";
  in.script_filename = "/srv/cgi-bin/env";
  in.document_root = "/srv/www";
  in.server_name = "example.test";
  in.server_port = 8080;
  in.server_software = "spawnd/0.1.0";
  in.remote_addr = "192.0.2.7";
  in.remote_port = 54321;
  in.fields = fields;
  return in;
}

// The pairs as a map, after checking that no name occurs twice (an environment with a duplicate name is ambiguous:
// getenv() and the shell disagree about which one wins).
Env to_env(const std::vector<std::pair<std::string, std::string>>& pairs) {
  Env env;
  for (const auto& [name, value] : pairs) {
    INFO("meta-variable " << name);
    CHECK(env.count(name) == 0);
    env[name] = value;
  }
  return env;
}

Env build(const CgiRequestInfo& in) { return to_env(build_cgi_env(in)); }

std::optional<std::string> lookup(const Env& env, const std::string& name) {
  auto it = env.find(name);
  if (it == env.end()) return std::nullopt;
  return it->second;
}

}  // namespace

TEST_CASE("every request-independent and request meta-variable is set from the request info", "[unit][cgi_env]") {
  const Fields fields;
  const Env env = build(base_request(fields));
  const std::pair<const char*, const char*> expected[] = {
      {"GATEWAY_INTERFACE", "CGI/1.1"},
      {"SERVER_PROTOCOL", "HTTP/1.1"},
      {"SERVER_SOFTWARE", "spawnd/0.1.0"},
      {"SERVER_NAME", "example.test"},
      {"SERVER_PORT", "8080"},
      {"REQUEST_METHOD", "GET"},
      {"REQUEST_URI", "/cgi-bin/env?a=1"},
      {"QUERY_STRING", "a=1"},
      {"SCRIPT_NAME", "/cgi-bin/env"},
      {"SCRIPT_FILENAME", "/srv/cgi-bin/env"},
      {"DOCUMENT_ROOT", "/srv/www"},
      {"REMOTE_ADDR", "192.0.2.7"},
      {"REMOTE_PORT", "54321"},
      {"REDIRECT_STATUS", "200"},
  };
  for (const auto& [name, value] : expected) {
    CAPTURE(name);
    REQUIRE(lookup(env, name).has_value());
    CHECK(*lookup(env, name) == value);
  }
}

TEST_CASE("meta-variables that depend on the request are absent when it has nothing for them", "[unit][cgi_env]") {
  const Fields fields;
  const Env env = build(base_request(fields));
  for (const char* name : {"PATH_INFO", "PATH_TRANSLATED", "CONTENT_LENGTH", "CONTENT_TYPE", "HTTPS",
                           "HTTP_AUTHORIZATION", "AUTH_TYPE", "REMOTE_USER"}) {
    CAPTURE(name);
    CHECK_FALSE(lookup(env, name).has_value());
  }
}

TEST_CASE("QUERY_STRING is set, empty, when the request has no query", "[unit][cgi_env]") {
  const Fields fields;
  CgiRequestInfo in = base_request(fields);
  in.query = "";
  in.request_uri = "/cgi-bin/env";
  const Env env = build(in);
  REQUIRE(lookup(env, "QUERY_STRING").has_value());
  CHECK(lookup(env, "QUERY_STRING")->empty());
}

TEST_CASE("PATH_INFO and PATH_TRANSLATED are set only when there is extra path", "[unit][cgi_env]") {
  struct Case {
    std::string_view path_info;
    std::optional<std::string_view> expected_info;
    std::optional<std::string_view> expected_translated;
  };
  const Case cases[] = {
      {"", std::nullopt, std::nullopt},
      {"/", "/", "/srv/www/"},
      {"/a", "/a", "/srv/www/a"},
      {"/a/b c/d", "/a/b c/d", "/srv/www/a/b c/d"},
  };
  const Fields fields;
  for (const Case& c : cases) {
    CAPTURE(c.path_info);
    CgiRequestInfo in = base_request(fields);
    in.path_info = c.path_info;
    const Env env = build(in);
    auto info = lookup(env, "PATH_INFO");
    auto translated = lookup(env, "PATH_TRANSLATED");
    REQUIRE(info.has_value() == c.expected_info.has_value());
    REQUIRE(translated.has_value() == c.expected_translated.has_value());
    if (c.expected_info) CHECK(*info == *c.expected_info);
    if (c.expected_translated) CHECK(*translated == *c.expected_translated);
  }
}

TEST_CASE("CONTENT_LENGTH is set only when the request has a body", "[unit][cgi_env]") {
  struct Case {
    std::optional<std::uint64_t> content_length;
    std::optional<std::string_view> expected;
  };
  const Case cases[] = {
      {std::nullopt, std::nullopt},
      {0, "0"},
      {5, "5"},
      {1048576, "1048576"},
      {18446744073709551615ULL, "18446744073709551615"},
  };
  const Fields fields;
  for (const Case& c : cases) {
    CAPTURE(c.content_length.value_or(12345678));
    CgiRequestInfo in = base_request(fields);
    in.method = "POST";
    in.content_length = c.content_length;
    const Env env = build(in);
    auto got = lookup(env, "CONTENT_LENGTH");
    REQUIRE(got.has_value() == c.expected.has_value());
    if (c.expected) CHECK(*got == *c.expected);
  }
}

TEST_CASE("HTTPS is on and REQUEST_SCHEME is https only for a request that came over TLS", "[unit][cgi_env]") {
  const Fields fields;
  CgiRequestInfo in = base_request(fields);
  CHECK_FALSE(lookup(build(in), "HTTPS").has_value());
  CHECK(lookup(build(in), "REQUEST_SCHEME") == std::optional<std::string>("http"));
  in.is_https = true;
  const Env env = build(in);
  REQUIRE(lookup(env, "HTTPS").has_value());
  CHECK(*lookup(env, "HTTPS") == "on");
  CHECK(lookup(env, "REQUEST_SCHEME") == std::optional<std::string>("https"));
}

TEST_CASE("header fields become HTTP_ meta-variables, uppercased with '-' turned into '_'", "[unit][cgi_env]") {
  struct Case {
    std::string field;
    std::string value;
    std::string_view meta;
  };
  const Case cases[] = {
      {"Host", "example.test:8080", "HTTP_HOST"},
      {"User-Agent", "curl/7.88", "HTTP_USER_AGENT"},
      {"accept-language", "en", "HTTP_ACCEPT_LANGUAGE"},
      {"X-Forwarded-For", "198.51.100.1", "HTTP_X_FORWARDED_FOR"},
      {"X-Custom-42", "v", "HTTP_X_CUSTOM_42"},
      {"DNT", "1", "HTTP_DNT"},
      {"Referer", "", "HTTP_REFERER"},  // an empty value is still a field
      {"Content-Language", "de", "HTTP_CONTENT_LANGUAGE"},  // only Content-Type and Content-Length are special
  };
  for (const Case& c : cases) {
    CAPTURE(c.field);
    const Fields fields{{c.field, c.value}};
    const Env env = build(base_request(fields));
    auto got = lookup(env, std::string(c.meta));
    REQUIRE(got.has_value());
    CHECK(*got == c.value);
  }
}

TEST_CASE("special header fields map to their own meta-variable or to none", "[unit][cgi_env]") {
  struct Case {
    std::string field;
    std::string value;
    bool pass_authorization;
    std::vector<std::pair<std::string, std::string>> present;  // meta-variable = value
    std::vector<std::string> absent;
  };
  const Case cases[] = {
      // httpoxy (CVE-2016-5385): a client must never set the script's HTTP_PROXY.
      {"Proxy", "http://evil.example:3128", false, {}, {"HTTP_PROXY"}},
      {"proxy", "http://evil.example:3128", true, {}, {"HTTP_PROXY"}},
      {"PROXY", "http://evil.example:3128", false, {}, {"HTTP_PROXY"}},
      // Content-Type is CONTENT_TYPE (RFC 3875 §4.1.3), not HTTP_CONTENT_TYPE.
      {"Content-Type", "application/x-www-form-urlencoded", false,
       {{"CONTENT_TYPE", "application/x-www-form-urlencoded"}}, {"HTTP_CONTENT_TYPE"}},
      {"content-type", "text/plain", false, {{"CONTENT_TYPE", "text/plain"}}, {"HTTP_CONTENT_TYPE"}},
      // Content-Length comes from the framing (CgiRequestInfo::content_length), never from the field.
      {"Content-Length", "5", false, {}, {"HTTP_CONTENT_LENGTH", "CONTENT_LENGTH"}},
      // Authorization only when the operator asks for it (RFC 3875 §4.1.18 leaves it to the server).
      {"Authorization", "Basic dXNlcjpwYXNz", false, {}, {"HTTP_AUTHORIZATION"}},
      {"authorization", "Basic dXNlcjpwYXNz", false, {}, {"HTTP_AUTHORIZATION"}},
      {"Authorization", "Basic dXNlcjpwYXNz", true, {{"HTTP_AUTHORIZATION", "Basic dXNlcjpwYXNz"}}, {}},
      // Proxy-Authorization is an ordinary field: it only looks alike.
      {"Proxy-Authorization", "x", false, {{"HTTP_PROXY_AUTHORIZATION", "x"}}, {"HTTP_PROXY"}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.field, c.pass_authorization);
    const Fields fields{{c.field, c.value}};
    CgiRequestInfo in = base_request(fields);
    in.pass_authorization = c.pass_authorization;
    const Env env = build(in);
    for (const auto& [name, value] : c.present) {
      CAPTURE(name);
      REQUIRE(lookup(env, name).has_value());
      CHECK(*lookup(env, name) == value);
    }
    for (const auto& name : c.absent) {
      CAPTURE(name);
      CHECK_FALSE(lookup(env, name).has_value());
    }
  }
}

TEST_CASE("a field named with '_' or another character outside letters, digits and '-' is dropped",
          "[unit][cgi_env]") {
  // "X_Forwarded_For" would alias "X-Forwarded-For" once '-' became '_' (nginx/Apache drop such names too).
  const char* names[] = {"X_Forwarded_For", "Content_Type", "Proxy_", "_", "X.Dot", "X Space", "X:Colon",
                         "X=Eq", "X\xc3\xa9", "X\tTab", ""};
  for (const char* name : names) {
    CAPTURE(name);
    const Fields fields{{name, "smuggled"}};
    const Env env = build(base_request(fields));
    for (const auto& [meta, value] : env) {
      CAPTURE(meta);
      CHECK(value != "smuggled");
    }
  }
}

TEST_CASE("a dropped field does not hide a legitimate field of the same meta-name", "[unit][cgi_env]") {
  const Fields fields{{"X_Forwarded_For", "evil"}, {"X-Forwarded-For", "198.51.100.1"}};
  const Env env = build(base_request(fields));
  REQUIRE(lookup(env, "HTTP_X_FORWARDED_FOR").has_value());
  CHECK(*lookup(env, "HTTP_X_FORWARDED_FOR") == "198.51.100.1");
}

TEST_CASE("repeated fields are joined with a comma, and Cookie fields with a semicolon", "[unit][cgi_env]") {
  struct Case {
    Fields fields;
    std::string meta;
    std::string_view expected;
  };
  const Case cases[] = {
      {{{"Accept", "text/html"}, {"Accept", "text/plain"}}, "HTTP_ACCEPT", "text/html, text/plain"},
      {{{"Accept", "a"}, {"accept", "b"}, {"ACCEPT", "c"}}, "HTTP_ACCEPT", "a, b, c"},
      {{{"X-A", "1"}, {"Host", "h"}, {"X-A", "2"}}, "HTTP_X_A", "1, 2"},
      {{{"Cookie", "a=1"}, {"Cookie", "b=2"}}, "HTTP_COOKIE", "a=1; b=2"},
      {{{"cookie", "a=1"}, {"Cookie", "b=2"}, {"COOKIE", "c=3"}}, "HTTP_COOKIE", "a=1; b=2; c=3"},
      {{{"Cookie", "a=1; b=2"}}, "HTTP_COOKIE", "a=1; b=2"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.meta, c.expected);
    const Env env = build(base_request(c.fields));  // build() also checks there is one entry per name
    REQUIRE(lookup(env, c.meta).has_value());
    CHECK(*lookup(env, c.meta) == c.expected);
  }
}

TEST_CASE("header meta-variables keep the order of first appearance, with repeats merged into the first",
          "[unit][cgi_env]") {
  // Exact output, not a map: the order of the entries and of the joined values is part of the contract.
  const Fields fields{{"Accept", "a"},          {"Cookie", "c=1"},        {"X-B", "1"},
                      {"content-type", "t/1"},  {"accept", "b"},          {"X_B", "dropped"},
                      {"Proxy", "dropped"},     {"COOKIE", "d=2"},        {"X-b", "2"},
                      {"Content-Type", "t/2"},  {"Authorization", "hidden"}, {"X-C", ""},
                      {"Accept", "c"}};
  const auto env = build_cgi_env(base_request(fields));
  std::vector<std::pair<std::string, std::string>> from_fields;
  for (const auto& kv : env)
    if (kv.first.starts_with("HTTP_") || kv.first == "CONTENT_TYPE") from_fields.push_back(kv);
  const std::vector<std::pair<std::string, std::string>> expected{
      {"HTTP_ACCEPT", "a, b, c"}, {"HTTP_COOKIE", "c=1; d=2"}, {"HTTP_X_B", "1, 2"},
      {"CONTENT_TYPE", "t/1, t/2"}, {"HTTP_X_C", ""}};
  CHECK(from_fields == expected);
  // ...and they come after every server-set meta-variable.
  REQUIRE(env.size() >= expected.size());
  CHECK(std::equal(expected.begin(), expected.end(), env.end() - static_cast<std::ptrdiff_t>(expected.size())));
}

TEST_CASE("many repeated and distinct fields each land in their own entry", "[unit][cgi_env]") {
  Fields fields;
  std::string expected_repeat;
  for (int i = 0; i < 2000; ++i) {
    fields.emplace_back("X-F" + std::to_string(i), std::to_string(i));
    fields.emplace_back("X-Repeat", std::to_string(i));
    expected_repeat += (i == 0 ? "" : ", ") + std::to_string(i);
  }
  const Env env = build(base_request(fields));  // build() checks there is one entry per name
  CHECK(*lookup(env, "HTTP_X_F0") == "0");
  CHECK(*lookup(env, "HTTP_X_F1999") == "1999");
  CHECK(*lookup(env, "HTTP_X_REPEAT") == expected_repeat);
}

TEST_CASE("a header field cannot override a server-set meta-variable", "[unit][cgi_env]") {
  // Only names with the HTTP_ prefix come from fields; CONTENT_TYPE is the one exception and is not server-set.
  const Fields fields{{"Gateway-Interface", "evil"}, {"Remote-Addr", "evil"}, {"Script-Name", "evil"}};
  const Env env = build(base_request(fields));
  CHECK(*lookup(env, "GATEWAY_INTERFACE") == "CGI/1.1");
  CHECK(*lookup(env, "REMOTE_ADDR") == "192.0.2.7");
  CHECK(*lookup(env, "SCRIPT_NAME") == "/cgi-bin/env");
  CHECK(*lookup(env, "HTTP_GATEWAY_INTERFACE") == "evil");
  CHECK(*lookup(env, "HTTP_REMOTE_ADDR") == "evil");
}

TEST_CASE("a POST with a body gets REQUEST_METHOD, CONTENT_LENGTH and CONTENT_TYPE together", "[unit][cgi_env]") {
  const Fields fields{{"Host", "example.test"},
                      {"Content-Type", "application/x-www-form-urlencoded"},
                      {"Content-Length", "7"}};
  CgiRequestInfo in = base_request(fields);
  in.method = "POST";
  in.content_length = 7;
  const Env env = build(in);
  CHECK(*lookup(env, "REQUEST_METHOD") == "POST");
  CHECK(*lookup(env, "CONTENT_LENGTH") == "7");
  CHECK(*lookup(env, "CONTENT_TYPE") == "application/x-www-form-urlencoded");
  CHECK_FALSE(lookup(env, "HTTP_CONTENT_LENGTH").has_value());
  CHECK_FALSE(lookup(env, "HTTP_CONTENT_TYPE").has_value());
}
