// The example handlers run as real CGI children: each test spawns the built executable from SPAWND_CGI_BIN_DIR
// with a clean environment of meta-variables (RFC 3875 §4.1), pipes the body to its stdin, reads its stdout and
// stderr, and checks the CGI response (§6). Tagged [cgi-child], not [unit]: these spawn processes and write a
// temporary SQLite database. End-to-end tests through the spawnd server are in tests/e2e.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "db/database.h"

#ifndef SPAWND_CGI_BIN_DIR
#error "SPAWND_CGI_BIN_DIR must name the directory of the built handler executables"
#endif

namespace {

struct CgiResult {
  int exit_code = -1;
  std::string stdout_bytes;
  std::string stderr_bytes;
  // Parsed from stdout:
  int status = 0;
  std::multimap<std::string, std::string> headers;  // names lower-cased
  std::string body;
  bool has_blank_line = false;

  [[nodiscard]] std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

void parse_cgi_output(CgiResult& r) {
  const std::string& out = r.stdout_bytes;
  size_t end = out.find("\r\n\r\n");
  if (end == std::string::npos) return;
  r.has_blank_line = true;
  r.body = out.substr(end + 4);
  size_t pos = 0;
  while (pos < end) {
    size_t eol = out.find("\r\n", pos);
    std::string line = out.substr(pos, eol - pos);
    pos = eol + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = lower(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (name == "status") r.status = std::atoi(value.c_str());
    r.headers.emplace(name, value);
  }
}

// Runs cgi-bin/<name> with exactly `env` as its environment and `body` on stdin.
CgiResult run_cgi(const std::string& name, const std::map<std::string, std::string>& env,
                  const std::string& body = {}) {
  const std::string path = std::string(SPAWND_CGI_BIN_DIR) + "/" + name;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string argv0 = path;
  char* argv[] = {argv0.data(), nullptr};

  int in[2], out[2], err[2];
  REQUIRE(pipe2(in, O_CLOEXEC) == 0);
  REQUIRE(pipe2(out, O_CLOEXEC) == 0);
  REQUIRE(pipe2(err, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  INFO("spawning " << path);
  REQUIRE(rc == 0);

  // Feed stdin and drain stdout/stderr together, so that no pipe fills up and stalls the child.
  CgiResult r;
  size_t written = 0;
  int in_fd = in[1];
  if (body.empty()) {
    close(in_fd);
    in_fd = -1;
  } else {
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  int open_outputs = 2;
  pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {in_fd, POLLOUT, 0}};
  while (open_outputs > 0) {
    int n = poll(fds, in_fd >= 0 ? 3 : 2, 10'000);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) FAIL("cgi-bin/" << name << " made no progress for 10 s (or poll failed)");
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[65536];
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        (i == 0 ? r.stdout_bytes : r.stderr_bytes).append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_outputs;
      }
    }
    if (in_fd >= 0 && fds[2].revents != 0) {
      ssize_t w = write(in_fd, body.data() + written, body.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) written = body.size();  // EPIPE: the child did not read it
      if (written == body.size()) {
        close(in_fd);
        in_fd = -1;
        fds[2].fd = -1;
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
  int wstatus = 0;
  REQUIRE(waitpid(pid, &wstatus, 0) == pid);
  r.exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  parse_cgi_output(r);
  return r;
}

// A fresh directory with the database and a PRAGMA preset whose busy_timeout is short, removed afterwards.
class TempSite {
 public:
  TempSite() {
    char tmpl[] = "/tmp/spawnd-sdk-test-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    std::ofstream(pragmas_path()) << "-- test preset: WAL, and give up on a lock quickly\n"
                                     "-- @on-create\n"
                                     "PRAGMA journal_mode = WAL;\n"
                                     "-- @per-connection\n"
                                     "PRAGMA synchronous = NORMAL;\n"
                                     "PRAGMA busy_timeout = 40;\n";
  }
  ~TempSite() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempSite(const TempSite&) = delete;
  TempSite& operator=(const TempSite&) = delete;

  [[nodiscard]] std::string db_path() const { return dir_ + "/site.db"; }
  [[nodiscard]] std::string pragmas_path() const { return dir_ + "/fast-busy.sql"; }

  // The meta-variables a server would pass for `method` on /cgi-bin/<name><path_info>?<query>.
  [[nodiscard]] std::map<std::string, std::string> env(const std::string& name, const std::string& method,
                                                       const std::string& path_info = {},
                                                       const std::string& query = {}) const {
    return {{"GATEWAY_INTERFACE", "CGI/1.1"},
            {"SERVER_PROTOCOL", "HTTP/1.1"},
            {"SERVER_SOFTWARE", "spawnd-test"},
            {"SERVER_NAME", "localhost"},
            {"SERVER_PORT", "8080"},
            {"REMOTE_ADDR", "127.0.0.1"},
            {"REQUEST_METHOD", method},
            {"SCRIPT_NAME", "/cgi-bin/" + name},
            {"PATH_INFO", path_info},
            {"QUERY_STRING", query},
            {"SPAWND_DB", db_path()},
            {"SPAWND_PRAGMAS", pragmas_path()}};
  }

  // env() plus a body: CONTENT_LENGTH and CONTENT_TYPE.
  [[nodiscard]] std::map<std::string, std::string> env_with_body(const std::string& name, const std::string& method,
                                                                 const std::string& content_type,
                                                                 const std::string& body,
                                                                 const std::string& path_info = {}) const {
    auto e = env(name, method, path_info);
    e["CONTENT_TYPE"] = content_type;
    e["CONTENT_LENGTH"] = std::to_string(body.size());
    return e;
  }

 private:
  std::string dir_;
};

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
