// The example handlers run as real CGI children: each test spawns the built executable from SPAWND_CGI_BIN_DIR
// with a clean environment of meta-variables (RFC 3875 §4.1), pipes the body to its stdin, reads its stdout and
// stderr, and checks the CGI response (§6). Tagged [cgi-child], not [unit]: these spawn processes and write a
// temporary SQLite database. End-to-end tests through the spawnd server are in tests/e2e.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <string>

#include "db/database.h"
#include "handler_process.h"

namespace {

using spawnd::test::CgiResult;
using spawnd::test::run_cgi;
using spawnd::test::TempSite;

const char kForm[] = "application/x-www-form-urlencoded";

CgiResult post_form(const TempSite& site, const std::string& body) {
  return run_cgi("guestbook", site.env_with_body("guestbook", "POST", kForm, body), body);
}

CgiResult kv(const TempSite& site, const std::string& method, const std::string& path_info,
             const std::string& body = {}, const std::string& query = {}) {
  auto e = body.empty() ? site.env("kv", method, path_info, query)
                        : site.env_with_body("kv", method, "application/json", body, path_info);
  if (!query.empty()) e["QUERY_STRING"] = query;
  return run_cgi("kv", e, body);
}

// The test process holds the database's write lock (BEGIN IMMEDIATE) for as long as it lives.
struct WriteLockHolder {
  explicit WriteLockHolder(const TempSite& site)
      : conn(spawnd::db::Connection::open(site.db_path(), spawnd::pragmas::find_preset(site.pragmas_path()))),
        txn(conn, spawnd::db::TxnKind::Immediate) {}
  spawnd::db::Connection conn;
  spawnd::db::Transaction txn;
};

}  // namespace

TEST_CASE("hello answers 200 text/plain with Content-Length", "[cgi-child]") {
  TempSite site;
  CgiResult r = run_cgi("hello", site.env("hello", "GET"));
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_bytes.starts_with("Status: 200 OK\r\n"));
  CHECK(r.status == 200);
  CHECK(r.header("content-type").starts_with("text/plain"));
  CHECK(r.body == "Hello, world!\n");
  CHECK(r.header("content-length") == std::to_string(r.body.size()));
  CHECK(r.stderr_bytes.empty());
  // hello never touches the database.
  CHECK_FALSE(std::filesystem::exists(site.db_path()));
}

TEST_CASE("hello answers HEAD with the length and no body", "[cgi-child]") {
  TempSite site;
  CgiResult r = run_cgi("hello", site.env("hello", "HEAD"));
  CHECK(r.status == 200);
  CHECK(r.header("content-length") == "14");
  CHECK(r.has_blank_line);
  CHECK(r.body.empty());
}

TEST_CASE("a body longer than CONTENT_LENGTH claims, or a short one, is refused", "[cgi-child]") {
  TempSite site;
  SECTION("stdin ends before CONTENT_LENGTH bytes: 400") {
    auto e = site.env_with_body("hello", "POST", kForm, "0123456789");
    e["CONTENT_LENGTH"] = "100";
    CHECK(run_cgi("hello", e, "0123456789").status == 400);
  }
  SECTION("CONTENT_LENGTH above the handler's limit: 413, before reading") {
    auto e = site.env_with_body("kv", "PUT", "application/json", "", "/k");
    e["CONTENT_LENGTH"] = std::to_string((1 << 20) + 1);
    CgiResult r = run_cgi("kv", e);
    CHECK(r.status == 413);
    CHECK(r.header("content-type") == "application/json");
  }
  SECTION("malformed CONTENT_LENGTH: 400") {
    auto e = site.env("hello", "POST");
    e["CONTENT_LENGTH"] = "12abc";
    CHECK(run_cgi("hello", e).status == 400);
  }
}

TEST_CASE("env shows the request with every value escaped", "[cgi-child]") {
  TempSite site;
  auto e = site.env("env", "GET", "/extra", "q=%3Cscript%3E&x=1");
  e["HTTP_COOKIE"] = "sid=<b>";
  e["HTTP_USER_AGENT"] = "test\"agent";
  CgiResult r = run_cgi("env", e);
  CHECK(r.status == 200);
  CHECK(r.header("content-type").starts_with("text/html"));
  CHECK(r.body.find("&lt;script&gt;") != std::string::npos);
  CHECK(r.body.find("<script>") == std::string::npos);
  CHECK(r.body.find("sid") != std::string::npos);
  CHECK(r.body.find("&lt;b&gt;") != std::string::npos);
  CHECK(r.body.find("User-Agent") != std::string::npos);
  CHECK(r.body.find("test&quot;agent") != std::string::npos);
  CHECK(r.body.find("<tr><th>PATH_INFO</th><td>/extra</td></tr>") != std::string::npos);
}

TEST_CASE("guestbook GET renders the page and creates the schema", "[cgi-child]") {
  TempSite site;
  CgiResult r = run_cgi("guestbook", site.env("guestbook", "GET"));
  INFO(r.stderr_bytes);
  CHECK(r.exit_code == 0);
  CHECK(r.status == 200);
  CHECK(r.header("content-type") == "text/html; charset=utf-8");
  CHECK(r.body.find("<form") != std::string::npos);
  CHECK(r.body.find("href=\"/style.css\"") != std::string::npos);
  CHECK(r.body.find("action=\"/cgi-bin/guestbook\"") != std::string::npos);
  CHECK(r.header("content-length") == std::to_string(r.body.size()));

  auto conn = spawnd::db::Connection::open(site.db_path(), spawnd::pragmas::find_preset(site.pragmas_path()));
  CHECK(spawnd::db::user_version(conn) == 2);  // the whole site schema (handlers/site_schema.h)
  // "Newest 100" is an index scan with no sort step.
  auto plan = conn.prepare(
      "EXPLAIN QUERY PLAN SELECT name, message, created FROM guestbook ORDER BY created DESC, id DESC LIMIT 100");
  std::string details;
  while (plan.step()) details += std::string(plan.column_text(3)) + "\n";
  INFO(details);
  CHECK(details.find("guestbook_created") != std::string::npos);
  CHECK(details.find("TEMP B-TREE") == std::string::npos);
}

TEST_CASE("guestbook POST answers 303 and the entry comes back escaped", "[cgi-child]") {
  TempSite site;
  CgiResult post = post_form(site, "name=%3Cscript%3Ealert(1)%3C%2Fscript%3E&message=Hi+%26+bye%0Aline+2");
  INFO(post.stderr_bytes);
  CHECK(post.stdout_bytes.starts_with("Status: 303 See Other\r\n"));
  CHECK(post.header("location") == "/cgi-bin/guestbook");

  post_form(site, "name=Second&message=newer");
  CgiResult page = run_cgi("guestbook", site.env("guestbook", "GET"));
  CHECK(page.status == 200);
  CHECK(page.body.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(page.body.find("<script>") == std::string::npos);
  CHECK(page.body.find("Hi &amp; bye\nline 2") != std::string::npos);
  // Newest first.
  CHECK(page.body.find("Second") < page.body.find("alert(1)"));
}

TEST_CASE("guestbook refuses empty, too long or malformed input with 400", "[cgi-child]") {
  TempSite site;
  struct Row {
    const char* why;
    std::string body;
  };
  const Row rows[] = {
      {"empty name", "name=&message=hello"},
      {"blank name", "name=+++&message=hello"},
      {"missing message", "name=Ada"},
      {"name of 81 characters", "name=" + std::string(81, 'n') + "&message=m"},
      {"message of 2001 characters", "name=Ada&message=" + std::string(2001, 'm')},
      {"invalid UTF-8", "name=%FF%FE&message=m"},
      {"bad percent-escape (SDK)", "name=%zz&message=m"},
  };
  for (const Row& row : rows) {
    INFO(row.why);
    CgiResult r = post_form(site, row.body);
    CHECK(r.status == 400);
    CHECK(r.header("content-type").starts_with("text/html"));
  }
  // 80 characters (multi-byte ones count once) are fine.
  std::string name;
  for (int i = 0; i < 80; ++i) name += "%C3%A9";  // é
  CHECK(post_form(site, "name=" + name + "&message=ok").status == 303);
  // The 400 page refills what was typed, escaped.
  CgiResult r = post_form(site, "name=%3Cb%3E&message=");
  CHECK(r.status == 400);
  CHECK(r.body.find("value=\"&lt;b&gt;\"") != std::string::npos);
}

TEST_CASE("guestbook and kv share one database file and one migration history", "[cgi-child]") {
  TempSite site;
  // kv first this time: it must still leave a database in which the guestbook works, and vice versa.
  CHECK(kv(site, "PUT", "/k", "1").status == 201);
  CHECK(post_form(site, "name=Ada&message=hi").status == 303);
  CHECK(run_cgi("guestbook", site.env("guestbook", "GET")).body.find("Ada") != std::string::npos);
  CHECK(kv(site, "GET", "/k").body == "1");
}

TEST_CASE("guestbook answers other methods with 405 and Allow", "[cgi-child]") {
  TempSite site;
  CgiResult r = run_cgi("guestbook", site.env("guestbook", "DELETE"));
  CHECK(r.status == 405);
  CHECK(r.header("allow") == "GET, HEAD, POST");
}

TEST_CASE("kv stores, returns, lists and deletes JSON values", "[cgi-child]") {
  TempSite site;
  const std::string value = R"({"b": [1, 2, 3], "a": "x"})";

  CgiResult put = kv(site, "PUT", "/user/1", value);
  INFO(put.stderr_bytes);
  CHECK(put.status == 201);
  CHECK(put.header("location") == "/cgi-bin/kv/user/1");

  CgiResult get = kv(site, "GET", "/user/1");
  CHECK(get.status == 200);
  CHECK(get.header("content-type") == "application/json");
  CHECK(get.body == value);  // stored as sent, member order kept

  CHECK(kv(site, "PUT", "/user/1", "42").status == 204);  // replaced
  CHECK(kv(site, "GET", "/user/1").body == "42");
  CHECK(kv(site, "PUT", "/user/2", "true").status == 201);
  CHECK(kv(site, "PUT", "/other", "null").status == 201);

  CgiResult list = kv(site, "GET", "", {}, "prefix=user%2F");
  CHECK(list.status == 200);
  CHECK(nlohmann::json::parse(list.body) == nlohmann::json{"user/1", "user/2"});
  CHECK(nlohmann::json::parse(kv(site, "GET", "/", {}, "").body) == nlohmann::json{"other", "user/1", "user/2"});
  CHECK(nlohmann::json::parse(kv(site, "GET", "", {}, "prefix=user&limit=1").body) == nlohmann::json{"user/1"});
  CHECK(nlohmann::json::parse(kv(site, "GET", "", {}, "prefix=zzz").body) == nlohmann::json::array());

  CgiResult del = kv(site, "DELETE", "/user/1");
  CHECK(del.status == 204);
  CHECK(del.body.empty());
  CHECK(del.header("content-length").empty());
  CgiResult gone = kv(site, "GET", "/user/1");
  CHECK(gone.status == 404);
  CHECK(nlohmann::json::parse(gone.body)["status"] == 404);
  CHECK(kv(site, "DELETE", "/user/1").status == 404);
}

TEST_CASE("kv refuses invalid JSON, bad keys and other methods with JSON errors", "[cgi-child]") {
  TempSite site;
  for (const char* bad : {"{", "{'a': 1}", "[1,]", "undefined"}) {
    INFO(bad);
    CgiResult r = kv(site, "PUT", "/k", bad);
    CHECK(r.status == 400);
    CHECK(r.header("content-type") == "application/json");
    auto err = nlohmann::json::parse(r.body);
    CHECK(err["status"] == 400);
    CHECK(err["error"].get<std::string>().find("JSON") != std::string::npos);
  }
  CHECK(kv(site, "PUT", "/k").status == 400);  // empty body is not JSON
  CHECK(kv(site, "GET", "", {}, "limit=0").status == 400);
  CHECK(kv(site, "GET", "/" + std::string(513, 'k')).status == 400);

  CgiResult post = kv(site, "POST", "/k", "1");
  CHECK(post.status == 405);
  CHECK(post.header("allow") == "GET, HEAD, PUT, DELETE");
  CgiResult put_collection = kv(site, "PUT", "", "1");
  CHECK(put_collection.status == 405);
  CHECK(put_collection.header("allow") == "GET, HEAD");
}

TEST_CASE("a busy database answers 503 with Retry-After", "[cgi-child]") {
  TempSite site;
  REQUIRE(run_cgi("guestbook", site.env("guestbook", "GET")).status == 200);  // creates the schema
  REQUIRE(kv(site, "PUT", "/k", "1").status == 201);
  {
    WriteLockHolder lock(site);

    CgiResult gb = post_form(site, "name=Ada&message=hi");
    CHECK(gb.status == 503);
    CHECK(gb.header("retry-after") == "1");
    CHECK(gb.header("content-type").starts_with("text/html"));
    CHECK(gb.stderr_bytes.starts_with("handler guestbook: POST /cgi-bin/guestbook: 503"));

    CgiResult k = kv(site, "PUT", "/k", "2");
    CHECK(k.status == 503);
    CHECK(k.header("retry-after") == "1");
    CHECK(nlohmann::json::parse(k.body)["status"] == 503);

    // Readers are not blocked by a writer in WAL mode.
    CHECK(run_cgi("guestbook", site.env("guestbook", "GET")).status == 200);
    CHECK(kv(site, "GET", "/k").body == "1");
  }
  CHECK(post_form(site, "name=Ada&message=hi").status == 303);
  CHECK(kv(site, "PUT", "/k", "2").status == 204);
}

TEST_CASE("a handler without SPAWND_DB answers 500 and logs one line", "[cgi-child]") {
  TempSite site;
  auto e = site.env("guestbook", "GET");
  e.erase("SPAWND_DB");
  CgiResult r = run_cgi("guestbook", e);
  CHECK(r.exit_code == 0);
  CHECK(r.status == 500);
  CHECK(r.stderr_bytes.starts_with("handler guestbook: GET /cgi-bin/guestbook: 500: "));
  CHECK(r.stderr_bytes.find("SPAWND_DB") != std::string::npos);
  CHECK(std::count(r.stderr_bytes.begin(), r.stderr_bytes.end(), '\n') == 1);
  // The client sees no internals.
  CHECK(r.body.find("SPAWND_DB") == std::string::npos);
}
