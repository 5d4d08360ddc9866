// End-to-end tests of the CGI gateway (RFC 3875): every test starts its own spawnd on an ephemeral loopback port
// with its own temporary document root and `--cgi-bin tests/cgi` (the programs there are documented one by one),
// talks raw HTTP/1.1 to it, and ends by checking that spawnd left no zombie child and exits 0 on SIGTERM.
//
// Processes are observed through /proc (proc.h): a CGI child is a process whose parent is spawnd, and it leads its own
// process group (spawnd spawns it with setpgid), so "the group is gone" means no live process has that pgid.
// Every wait is bounded; no test asserts how fast anything is.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "harness.h"
#include "proc.h"

using namespace spawnd::e2e;
using spawnd::Fd;

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr int kReplyTimeoutMs = 15'000;         // generous: 2 cores shared with other suites under ctest -j2
constexpr milliseconds kProcessTimeout{5'000};  // for children to appear or vanish

// DOCUMENT_ROOT and PATH_TRANSLATED are built from the real path of --root.
std::string real_path(const TempDir& dir) { return fs::canonical(dir.path()).string(); }

// The reason phrase of "HTTP/1.1 404 Not Found".
std::string reason_of(const HttpResponse& r) { return r.status_line.size() > 13 ? r.status_line.substr(13) : ""; }

// A connection to spawnd (harness connect_to) whose sends are also bounded: a send blocked for kReplyTimeoutMs fails.
Fd open_connection(std::uint16_t port) { return connect_to(port, kReplyTimeoutMs); }

// The next response on `fd` (status 0 if none came in time); `leftover` carries bytes across responses (keep-alive,
// pipelining). `is_head`: the response to a HEAD has no body.
HttpResponse next_response(const Fd& fd, std::string& leftover, bool is_head = false) {
  return read_response(fd, leftover, is_head, kReplyTimeoutMs);
}

// "GET target HTTP/1.1" with Host and nothing else: the connection stays open after the response.
std::string keep_alive_get(std::string_view target) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
}

// The connection is still usable: a GET of hello.sh on it is answered in full.
void check_hello_on(const Fd& fd, std::string& leftover) {
  REQUIRE(send_all(fd, keep_alive_get("/cgi-bin/hello.sh")));
  const HttpResponse r = next_response(fd, leftover);
  CHECK(r.status == 200);
  CHECK(r.body == "hello\n");
}

std::string post_request(const std::string& target, std::string_view body, std::string_view content_type,
                         bool keep_alive = false) {
  std::string r = "POST " + target + " HTTP/1.1\r\nHost: localhost\r\n";
  r += "Content-Type: " + std::string(content_type) + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (!keep_alive) r += "Connection: close\r\n";
  r += "\r\n";
  r += body;
  return r;
}

// ---- what tests/cgi/env.{pl,py,sh} print ----

struct ScriptView {
  std::map<std::string, std::string> env;
  std::vector<std::string> argv;
  std::vector<int> fds;
  std::string cwd;

  [[nodiscard]] std::optional<std::string> var(const std::string& name) const {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  }
};

std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      out += s[i + 1] == 'n' ? '\n' : s[i + 1];
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

ScriptView parse_dump(const std::string& body) {
  ScriptView v;
  std::size_t pos = 0;
  while (pos < body.size()) {
    std::size_t nl = body.find('\n', pos);
    std::string_view line = std::string_view(body).substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? body.size() : nl + 1;
    if (line.starts_with("env:")) {
      line.remove_prefix(4);
      auto eq = line.find('=');
      v.env[unescape(line.substr(0, eq))] = eq == std::string_view::npos ? "" : unescape(line.substr(eq + 1));
    } else if (line.starts_with("argv:")) {
      auto eq = line.find('=');
      v.argv.push_back(unescape(line.substr(eq + 1)));
    } else if (line.starts_with("fd:")) {
      v.fds.push_back(std::atoi(std::string(line.substr(3)).c_str()));
    } else if (line.starts_with("cwd:")) {
      v.cwd = std::string(line.substr(4));
    }
  }
  std::sort(v.fds.begin(), v.fds.end());
  return v;
}

// ---- processes (proc.h) ----

// Waits for spawnd's one running CGI child and returns its pid, which is also its process group id.
pid_t wait_for_one_child(const Spawnd& s) {
  pid_t child = 0;
  bool found = wait_until(
      [&] {
        for (const ProcStat& p : live_children_of(s.pid())) child = p.pid;
        return child != 0;
      },
      kProcessTimeout);
  if (!found) throw std::runtime_error("no CGI child of spawnd appeared");
  return child;
}

// Sends a GET of hang.sh on `fd` and waits until its process group is up: hang.sh, its background sleep and its
// foreground sleep. Returns the group id (hang.sh's pid).
pid_t start_hang(const Spawnd& s, const Fd& fd) {
  REQUIRE(send_all(fd, keep_alive_get("/cgi-bin/hang.sh")));
  const pid_t pgid = wait_for_one_child(s);
  const bool is_group_up = wait_until([&] { return live_group_members(pgid).size() >= 3; }, kProcessTimeout);
  REQUIRE(is_group_up);
  return pgid;
}

// Checks that no live member of group `pgid` is left (waiting up to kProcessTimeout); returns whether none is.
bool check_group_gone(pid_t pgid) {
  const bool is_group_gone = wait_until([&] { return live_group_members(pgid).empty(); }, kProcessTimeout);
  INFO("live members of group " << pgid << ": " << live_group_members(pgid).size());
  CHECK(is_group_gone);
  return is_group_gone;
}

// ---- spawnd ----

std::vector<std::string> cgi_args(const TempDir& root, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--root", root.path(), "--cgi-bin", kCgiDir, "--quiet"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// What big-output.py writes for `size` bytes: 64 KiB piece k is "%08d " % k repeated, cut to size.
std::string big_output(std::size_t size) {
  std::string expected;
  expected.reserve(size);
  for (std::size_t k = 0; expected.size() < size; ++k) {
    char label[16];
    std::snprintf(label, sizeof label, "%08zu ", k);
    std::string piece;
    while (piece.size() < 65536) piece += label;
    piece.resize(std::min<std::size_t>(65536, size - expected.size()));
    expected += piece;
  }
  return expected;
}

// Sends a keep-alive GET of big-output.py for `size` bytes on a connection with a small receive window, reads
// nothing, and waits until spawnd has started the script (its one child). Returns the connection.
Fd start_big_output_unread(const Spawnd& s, std::size_t size) {
  Fd c = connect_small_window(s.port(), 16 * 1024, kReplyTimeoutMs);
  REQUIRE(send_all(c, keep_alive_get("/cgi-bin/big-output.py?" + std::to_string(size))));
  REQUIRE(wait_until([&] { return !live_children_of(s.pid()).empty(); }, kProcessTimeout));
  return c;
}

}  // namespace

// ---- the CGI environment ----

TEST_CASE("a CGI script sees every RFC 3875 meta-variable of a request with a body", "[e2e][cgi]") {
  const std::string spawn = GENERATE(as<std::string>{}, "vfork", "posix_spawn", "fork");
  CAPTURE(spawn);
  TempDir root;
  Spawnd s(cgi_args(root, {"--spawn", spawn}));

  Fd c = open_connection(s.port());
  std::string leftover;
  const std::string target = "/cgi-bin/env.pl/extra/path%20x?a=1&b=two";
  REQUIRE(send_all(c, "POST " + target + " HTTP/1.1\r\n"
                      "Host: cgi.example.test:8123\r\n"
                      "User-Agent: spawnd-e2e\r\n"
                      "X-Custom-Header: v1\r\n"
                      "X-Repeated: one\r\n"
                      "X-Repeated: two\r\n"
                      "Cookie: a=1\r\n"
                      "Cookie: b=2\r\n"
                      "Content-Type: application/x-www-form-urlencoded\r\n"
                      "Content-Length: 7\r\n"
                      "Connection: close\r\n"
                      "\r\n"
                      "payload"));
  const HttpResponse r = next_response(c, leftover);
  REQUIRE(r.status == 200);
  const ScriptView v = parse_dump(r.body);
  INFO(r.body);

  const std::pair<std::string, std::string> expected[] = {
      {"GATEWAY_INTERFACE", "CGI/1.1"},
      {"SERVER_PROTOCOL", "HTTP/1.1"},
      {"SERVER_NAME", "cgi.example.test"},  // from Host, without its port
      {"SERVER_PORT", std::to_string(s.port())},  // the port the request came in on
      {"REQUEST_METHOD", "POST"},
      {"QUERY_STRING", "a=1&b=two"},
      {"SCRIPT_NAME", "/cgi-bin/env.pl"},
      {"PATH_INFO", "/extra/path x"},  // decoded (RFC 3875 §4.1.5)
      {"PATH_TRANSLATED", real_path(root) + "/extra/path x"},
      {"REMOTE_ADDR", "127.0.0.1"},
      {"REMOTE_PORT", std::to_string(local_port(c))},
      {"CONTENT_LENGTH", "7"},
      {"CONTENT_TYPE", "application/x-www-form-urlencoded"},
      {"REQUEST_URI", target},
      {"DOCUMENT_ROOT", real_path(root)},
      {"SCRIPT_FILENAME", kCgiDir + "/env.pl"},
      {"REDIRECT_STATUS", "200"},
      {"HTTP_HOST", "cgi.example.test:8123"},
      {"HTTP_USER_AGENT", "spawnd-e2e"},
      {"HTTP_X_CUSTOM_HEADER", "v1"},
      {"HTTP_X_REPEATED", "one, two"},
      {"HTTP_COOKIE", "a=1; b=2"},
  };
  for (const auto& [name, value] : expected) {
    CAPTURE(name);
    REQUIRE(v.var(name).has_value());
    CHECK(*v.var(name) == value);
  }
  REQUIRE(v.var("SERVER_SOFTWARE").has_value());
  // RFC 3875 §4.1.17: product/version; spawnd's is the one --version prints.
  const ExitResult version = run_spawnd({"--version"});
  std::smatch m;
  REQUIRE(std::regex_search(version.stdout_text, m, std::regex(R"(^spawnd (\d+\.\d+\.\d+)\n)")));
  CHECK(*v.var("SERVER_SOFTWARE") == "spawnd/" + m[1].str());
  CHECK_FALSE(v.var("HTTP_CONTENT_LENGTH").has_value());
  CHECK_FALSE(v.var("HTTP_CONTENT_TYPE").has_value());
  c.reset();
  check_clean_end(s);
}

TEST_CASE("a GET without a body has QUERY_STRING set but no CONTENT_*, PATH_INFO or PATH_TRANSLATED",
          "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  for (const std::string target : {"/cgi-bin/env.pl", "/cgi-bin/env.pl?"}) {
    CAPTURE(target);
    const HttpResponse r = get(s.port(), target);
    REQUIRE(r.status == 200);
    const ScriptView v = parse_dump(r.body);
    REQUIRE(v.var("QUERY_STRING").has_value());
    CHECK(v.var("QUERY_STRING")->empty());
    CHECK(*v.var("REQUEST_METHOD") == "GET");
    for (const char* name : {"CONTENT_LENGTH", "CONTENT_TYPE", "PATH_INFO", "PATH_TRANSLATED"}) {
      CAPTURE(name);
      CHECK_FALSE(v.var(name).has_value());
    }
  }
  check_clean_end(s);
}

TEST_CASE("a Proxy field never becomes HTTP_PROXY (httpoxy)", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  const HttpResponse r = request(s.port(),
                               "GET /cgi-bin/env.pl HTTP/1.1\r\nHost: localhost\r\nProxy: http://evil.example:3128\r\n"
                               "Connection: close\r\n\r\n");
  REQUIRE(r.status == 200);
  const ScriptView v = parse_dump(r.body);
  CHECK_FALSE(v.var("HTTP_PROXY").has_value());
  for (const auto& [name, value] : v.env) {
    CAPTURE(name);
    CHECK(value.find("evil.example") == std::string::npos);
  }
  check_clean_end(s);
}

TEST_CASE("Authorization reaches the script only with --pass-authorization", "[e2e][cgi]") {
  const bool pass = GENERATE(false, true);
  CAPTURE(pass);
  TempDir root;
  Spawnd s(cgi_args(root, pass ? std::vector<std::string>{"--pass-authorization"} : std::vector<std::string>{}));
  const HttpResponse r = request(s.port(),
                               "GET /cgi-bin/env.pl HTTP/1.1\r\nHost: localhost\r\n"
                               "Authorization: Basic dXNlcjpwYXNz\r\nConnection: close\r\n\r\n");
  REQUIRE(r.status == 200);
  const ScriptView v = parse_dump(r.body);
  if (pass) {
    REQUIRE(v.var("HTTP_AUTHORIZATION").has_value());
    CHECK(*v.var("HTTP_AUTHORIZATION") == "Basic dXNlcjpwYXNz");
  } else {
    CHECK_FALSE(v.var("HTTP_AUTHORIZATION").has_value());
  }
  check_clean_end(s);
}

TEST_CASE("the variable named by --pass-env reaches the script, and nothing else of spawnd's environment leaks", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root, {"--pass-env", "SPAWND_E2E_PASSED"}),
           {{"SPAWND_E2E_PASSED", "passed value"}, {"SPAWND_E2E_SECRET", "must not leak"}});
  const HttpResponse r = get(s.port(), "/cgi-bin/env.pl/x?y=1");
  REQUIRE(r.status == 200);
  const ScriptView v = parse_dump(r.body);
  INFO(r.body);
  REQUIRE(v.var("SPAWND_E2E_PASSED").has_value());
  CHECK(*v.var("SPAWND_E2E_PASSED") == "passed value");
  CHECK_FALSE(v.var("SPAWND_E2E_SECRET").has_value());
  // Everything the script got is a meta-variable, a header field, or something spawnd documents.
  const std::set<std::string> allowed{
      "GATEWAY_INTERFACE", "SERVER_PROTOCOL", "SERVER_SOFTWARE", "SERVER_NAME",     "SERVER_PORT",
      "REQUEST_METHOD",    "QUERY_STRING",    "SCRIPT_NAME",     "PATH_INFO",       "PATH_TRANSLATED",
      "REMOTE_ADDR",       "REMOTE_PORT",     "CONTENT_LENGTH",  "CONTENT_TYPE",    "REQUEST_URI",
      "REQUEST_SCHEME",
      "DOCUMENT_ROOT",     "SCRIPT_FILENAME", "REDIRECT_STATUS", "HTTPS",           "AUTH_TYPE",
      "REMOTE_USER",       "PATH",            "SPAWND_DB",       "SPAWND_PRAGMAS",  "SPAWND_E2E_PASSED"};
  for (const auto& [name, value] : v.env) {
    CAPTURE(name, value);
    CHECK((allowed.count(name) == 1 || name.starts_with("HTTP_")));
  }
  // And in particular not the usual suspects of a parent's environment.
  for (const char* name : {"HOME", "USER", "SHELL", "PWD", "LD_PRELOAD", "ASAN_OPTIONS"}) {
    if (!std::getenv(name)) continue;
    CAPTURE(name);
    CHECK_FALSE(v.var(name).has_value());
  }
  check_clean_end(s);
}

TEST_CASE("a CGI child has only fds 0, 1 and 2 open, in every language", "[e2e][cgi]") {
  const std::string spawn = GENERATE(as<std::string>{}, "vfork", "posix_spawn", "fork");
  CAPTURE(spawn);
  TempDir root;
  Spawnd s(cgi_args(root, {"--spawn", spawn}));
  // Another child in flight, so that spawnd holds more fds (its pipes, a second client socket) while it spawns.
  Fd busy = open_connection(s.port());
  REQUIRE(send_all(busy, keep_alive_get("/cgi-bin/hang.sh")));
  (void)wait_for_one_child(s);
  for (const char* script : {"env.pl", "env.py", "env.sh"}) {
    CAPTURE(script);
    const HttpResponse r = get(s.port(), std::string("/cgi-bin/") + script);
    REQUIRE(r.status == 200);
    const ScriptView v = parse_dump(r.body);
    INFO(r.body);
    CHECK(v.fds == std::vector<int>{0, 1, 2});
  }
  busy.reset();  // cancels the hanging child
  check_clean_end(s);
}

TEST_CASE("a CGI child runs in the directory of its script", "[e2e][cgi]") {
  const std::string spawn = GENERATE(as<std::string>{}, "vfork", "posix_spawn", "fork");
  CAPTURE(spawn);
  TempDir root;
  Spawnd s(cgi_args(root, {"--spawn", spawn}));
  const HttpResponse r = get(s.port(), "/cgi-bin/env.pl/elsewhere");
  REQUIRE(r.status == 200);
  CHECK(parse_dump(r.body).cwd == fs::canonical(kCgiDir).string());
  check_clean_end(s);
}

TEST_CASE("a search query becomes command-line arguments only with --cgi-argv", "[e2e][cgi]") {
  const bool with_argv = GENERATE(false, true);
  CAPTURE(with_argv);
  TempDir root;
  Spawnd s(cgi_args(root, with_argv ? std::vector<std::string>{"--cgi-argv"} : std::vector<std::string>{}));
  const std::string script = kCgiDir + "/env.pl";

  // A search string (no '='): RFC 3875 §4.4 words, '+'-separated and percent-decoded.
  ScriptView v = parse_dump(get(s.port(), "/cgi-bin/env.pl?foo+bar%20baz+-d").body);
  if (with_argv) {
    CHECK(v.argv == std::vector<std::string>{script, "foo", "bar baz", "-d"});
  } else {
    CHECK(v.argv == std::vector<std::string>{script});  // CVE-2012-1823: "?-s" must not reach php-cgi's argv
  }
  // A query with '=' is never a search string.
  v = parse_dump(get(s.port(), "/cgi-bin/env.pl?a=b+c").body);
  CHECK(v.argv == std::vector<std::string>{script});
  check_clean_end(s);
}

// ---- request bodies ----

TEST_CASE("a 1 MiB binary POST body reaches the script intact", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  std::string body(1 << 20, '\0');
  std::mt19937 rng(12345);
  for (char& ch : body) ch = static_cast<char>(rng() & 0xff);
  const HttpResponse r = request(s.port(), post_request("/cgi-bin/echo.py", body, "application/octet-stream"));
  REQUIRE(r.status == 200);
  CHECK(r.field("X-Content-Length") == std::optional<std::string>(std::to_string(body.size())));
  CHECK(r.field("X-Content-Type") == std::optional<std::string>("application/octet-stream"));
  REQUIRE(r.body.size() == body.size());
  CHECK(r.body == body);
  check_clean_end(s);
}

TEST_CASE("a chunked POST body reaches the script whole, with CONTENT_LENGTH", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  const HttpResponse r = request(s.port(),
                               "POST /cgi-bin/echo.py HTTP/1.1\r\nHost: localhost\r\n"
                               "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                               "6\r\nhello \r\n8\r\nchunked \r\n5\r\nworld\r\n0\r\n\r\n");
  REQUIRE(r.status == 200);
  CHECK(r.field("X-Content-Length") == std::optional<std::string>("19"));
  CHECK(r.body == "hello chunked world");
  check_clean_end(s);
}

// ---- mapping the request path to a script ----

TEST_CASE("the request path splits into SCRIPT_NAME and PATH_INFO at the script's name", "[e2e][cgi]") {
  struct Case {
    const char* target;
    std::optional<std::string> path_info;
  };
  const Case cases[] = {
      {"/cgi-bin/env.pl", std::nullopt},
      {"/cgi-bin/env.pl/", "/"},
      {"/cgi-bin/env.pl/a", "/a"},
      {"/cgi-bin/env.pl/a/b/c.txt", "/a/b/c.txt"},
      {"/cgi-bin/env.pl/a%20b/c%2Bd", "/a b/c+d"},
      {"/cgi-bin/env.pl/env.pl", "/env.pl"},
  };
  TempDir root;
  Spawnd s(cgi_args(root));
  for (const Case& c : cases) {
    CAPTURE(c.target);
    const HttpResponse r = get(s.port(), std::string(c.target) + "?q");
    REQUIRE(r.status == 200);
    const ScriptView v = parse_dump(r.body);
    CHECK(v.var("SCRIPT_NAME") == std::optional<std::string>("/cgi-bin/env.pl"));
    CHECK(v.var("SCRIPT_FILENAME") == std::optional<std::string>(kCgiDir + "/env.pl"));
    CHECK(v.var("PATH_INFO") == c.path_info);
    CHECK(v.var("REQUEST_URI") == std::optional<std::string>(std::string(c.target) + "?q"));
    if (c.path_info) CHECK(v.var("PATH_TRANSLATED") == std::optional<std::string>(real_path(root) + *c.path_info));
  }
  check_clean_end(s);
}

TEST_CASE("paths that leave the cgi-bin directory or name no executable are 404, a non-executable file 403",
          "[e2e][cgi]") {
  struct Case {
    const char* target;
    int status;
  };
  const Case cases[] = {
      {"/cgi-bin/../redirected.txt", 404},  // a static file exists there: the CGI mount must not serve it
      {"/cgi-bin/%2e%2e/redirected.txt", 404},
      {"/cgi-bin/%2E%2E/cgi-bin/../redirected.txt", 404},
      {"/cgi-bin/..%2fredirected.txt", 404},
      {"/cgi-bin/env.pl%2f..%2f..%2fredirected.txt", 404},
      {"/cgi-bin/../../../../etc/passwd", 404},
      {"/cgi-bin/../../../../bin/sh", 404},
      {"/cgi-bin/.hidden", 404},
      {"/cgi-bin/", 404},
      {"/cgi-bin", 404},
      {"/cgi-bin/no-such-script", 404},
      {"/cgi-bin/no-such-script/extra", 404},
      {"/cgi-bin/not-executable.sh", 403},
      {"/cgi-bin/not-executable.sh/extra", 403},
  };
  TempDir root;
  root.write("redirected.txt", "static file outside cgi-bin\n");
  Spawnd s(cgi_args(root));
  for (const Case& c : cases) {
    CAPTURE(c.target);
    const HttpResponse r = get(s.port(), c.target);
    CHECK(r.status == c.status);
    CHECK(r.body.find("static file outside cgi-bin") == std::string::npos);
  }
  CHECK(children_of(s.pid()).empty());  // none of these ran anything
  check_clean_end(s);
}

// ---- response types (RFC 3875 §6.2) ----

TEST_CASE("a Status field of the script is the response's status", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  HttpResponse r = get(s.port(), "/cgi-bin/status.sh");
  CHECK(r.status == 404);
  CHECK(reason_of(r) == "Not Found");
  CHECK(r.field("X-Script") == std::optional<std::string>("status.sh"));
  CHECK_FALSE(r.field("Status").has_value());
  CHECK(r.body == "status 404 from the script\n");
  r = get(s.port(), "/cgi-bin/status.sh?410");
  CHECK(r.status == 410);
  CHECK(reason_of(r) == "Custom Reason");
  CHECK(r.body == "status 410 from the script\n");
  check_clean_end(s);
}

TEST_CASE("a script answering a 1xx or a status outside 200-599 gets 502, logged, and the connection carries on",
          "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  Fd c = open_connection(s.port());
  std::string leftover;
  for (const char* code : {"101", "100", "103", "600"}) {
    CAPTURE(code);
    // status.sh answers "Status: <code> Custom Reason" with a Content-Type and a body.
    REQUIRE(send_all(c, keep_alive_get(std::string("/cgi-bin/status.sh?") + code)));
    const HttpResponse r = next_response(c, leftover);
    CHECK(r.status == 502);
    CHECK(r.body.find("from the script") == std::string::npos);
    // The next response on the same connection is framed correctly: no interim response was relayed.
    check_hello_on(c, leftover);
    const bool is_logged = wait_until(
        [&] {
          const std::string log = s.stderr_text();
          return log.find(std::string("status.sh: bad response header: Status ") + code) != std::string::npos;
        },
        kProcessTimeout);
    INFO(s.stderr_text());
    CHECK(is_logged);
  }
  c.reset();
  check_clean_end(s);
}

TEST_CASE("a client redirect becomes 302 with the script's Location", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  const HttpResponse r = get(s.port(), "/cgi-bin/redirect.sh");
  CHECK(r.status == 302);
  CHECK(r.field("Location") == std::optional<std::string>("http://example.test/elsewhere?from=redirect.sh"));
  check_clean_end(s);
}

TEST_CASE("a local redirect is served by spawnd itself as a GET of the new path", "[e2e][cgi]") {
  TempDir root;
  root.write("redirected.txt", "redirected static\n");
  Spawnd s(cgi_args(root));

  SECTION("to a static file, even from a POST") {
    HttpResponse r = get(s.port(), "/cgi-bin/local-redirect.sh");
    CHECK(r.status == 200);
    CHECK(r.body == "redirected static\n");
    CHECK_FALSE(r.field("Location").has_value());
    r = request(s.port(), post_request("/cgi-bin/local-redirect.sh", "a=1", "application/x-www-form-urlencoded"));
    CHECK(r.status == 200);
    CHECK(r.body == "redirected static\n");
  }
  SECTION("to another script, with its own PATH_INFO and query, and without the first request's body") {
    const HttpResponse r = request(s.port(), post_request("/cgi-bin/local-redirect.sh?cgi-bin/env.pl/from-redirect?k=v",
                                                         "a=1", "application/x-www-form-urlencoded"));
    REQUIRE(r.status == 200);
    const ScriptView v = parse_dump(r.body);
    INFO(r.body);
    CHECK(v.var("SCRIPT_NAME") == std::optional<std::string>("/cgi-bin/env.pl"));
    CHECK(v.var("PATH_INFO") == std::optional<std::string>("/from-redirect"));
    CHECK(v.var("QUERY_STRING") == std::optional<std::string>("k=v"));
    CHECK(v.var("REQUEST_METHOD") == std::optional<std::string>("GET"));
    CHECK_FALSE(v.var("CONTENT_LENGTH").has_value());
    CHECK_FALSE(v.var("CONTENT_TYPE").has_value());
  }
  SECTION("to a missing file: 404") {
    const HttpResponse r = get(s.port(), "/cgi-bin/local-redirect.sh?no-such-file.txt");
    CHECK(r.status == 404);
  }
  check_clean_end(s);
}

TEST_CASE("a local redirect to something other than a local path-query gets 502, logged", "[e2e][cgi]") {
  TempDir root;
  root.write("redirected.txt", "redirected static\n");
  Spawnd s(cgi_args(root));
  Fd c = open_connection(s.port());
  std::string leftover;
  for (const char* kind : {"fragment", "space", "authority"}) {
    CAPTURE(kind);
    REQUIRE(send_all(c, keep_alive_get(std::string("/cgi-bin/bad-redirect.sh?") + kind)));
    const HttpResponse r = next_response(c, leftover);
    CHECK(r.status == 502);
    CHECK(r.body.find("redirected static") == std::string::npos);
    CHECK_FALSE(r.field("Location").has_value());
    check_hello_on(c, leftover);
  }
  const bool is_logged = wait_until(
      [&] {
        return s.stderr_text().find("bad-redirect.sh: bad response header: local-redirect Location") !=
               std::string::npos;
      },
      kProcessTimeout);
  INFO(s.stderr_text());
  CHECK(is_logged);
  c.reset();
  check_clean_end(s);
}

TEST_CASE("an NPH script's output reaches the client unchanged", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  Fd c = open_connection(s.port());
  std::string leftover;
  REQUIRE(send_all(c, keep_alive_get("/cgi-bin/nph-raw.sh")));
  const std::string raw = read_until_close(c, leftover, kReplyTimeoutMs);
  CHECK(raw ==
        "HTTP/1.1 299 Raw Status\r\n"
        "Content-Type: text/plain\r\n"
        "X-Nph: yes\r\n"
        "Connection: close\r\n"
        "\r\n"
        "raw body from nph-raw.sh\n");
  check_clean_end(s);
}

TEST_CASE("an NPH script whose status-line is a 1xx or no status-line gets 502, logged", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  for (const char* code : {"101", "100", "600", "2x0"}) {
    CAPTURE(code);
    const HttpResponse r = get(s.port(), std::string("/cgi-bin/nph-status.sh?") + code);
    CHECK(r.status == 502);
    CHECK(r.body.find("tunnelled") == std::string::npos);
    CHECK_FALSE(r.field("Upgrade").has_value());
  }
  // A final status still passes through unchanged.
  const HttpResponse r = get(s.port(), "/cgi-bin/nph-status.sh?299");
  CHECK(r.status == 299);
  CHECK(r.body == "tunnelled bytes\n");
  const bool is_logged = wait_until(
      [&] {
        const std::string log = s.stderr_text();
        return log.find("nph-status.sh: NPH script's first line: Status 101, not a final status") !=
                   std::string::npos &&
               log.find("nph-status.sh: NPH script's first line: not an HTTP status-line") != std::string::npos;
      },
      kProcessTimeout);
  INFO(s.stderr_text());
  CHECK(is_logged);
  check_clean_end(s);
}

TEST_CASE("a HEAD request to a script gets the head without a body, and the connection stays usable",
          "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  Fd c = open_connection(s.port());
  std::string leftover;
  for (const char* script : {"hello.sh", "slow.sh", "env.pl"}) {
    CAPTURE(script);
    REQUIRE(send_all(c, std::string("HEAD /cgi-bin/") + script + " HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    const HttpResponse head = next_response(c, leftover, true);
    CHECK(head.status == 200);
    CHECK(head.field("Content-Type").has_value());
    // If body bytes followed the head, they would show up in front of the next response.
    REQUIRE(send_all(c, keep_alive_get("/cgi-bin/hello.sh")));
    const HttpResponse next = next_response(c, leftover);
    CHECK(next.status == 200);
    CHECK(next.body == "hello\n");
  }
  c.reset();
  check_clean_end(s);
}

// ---- misbehaving scripts ----

TEST_CASE("a script whose output is not a CGI response gets 502", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  const HttpResponse r = get(s.port(), "/cgi-bin/garbage.sh");
  CHECK(r.status == 502);
  CHECK(r.body.find("Hello, world") == std::string::npos);
  check_clean_end(s);
}

TEST_CASE("a script that exits before writing anything gets 502", "[e2e][cgi]") {
  const std::string spawn = GENERATE(as<std::string>{}, "vfork", "posix_spawn", "fork");
  CAPTURE(spawn);
  TempDir root;
  Spawnd s(cgi_args(root, {"--spawn", spawn}));
  const HttpResponse r = get(s.port(), "/cgi-bin/early-exit.sh");
  CHECK(r.status == 502);
  check_clean_end(s);
}

TEST_CASE("a script killed by SIGSEGV gets 502, is logged, and the next request succeeds", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  Fd c = open_connection(s.port());
  std::string leftover;
  REQUIRE(send_all(c, keep_alive_get("/cgi-bin/crash.sh")));
  HttpResponse r = next_response(c, leftover);
  CHECK(r.status == 502);
  // The same connection carries on.
  check_hello_on(c, leftover);
  // And a fresh one.
  r = get(s.port(), "/cgi-bin/hello.sh");
  CHECK(r.status == 200);
  const bool is_logged = wait_until(
      [&] {
        const std::string log = s.stderr_text();
        return log.find("crash.sh") != std::string::npos && log.find("Segmentation fault") != std::string::npos;
      },
      kProcessTimeout);
  INFO(s.stderr_text());
  CHECK(is_logged);
  c.reset();
  check_clean_end(s);
}

TEST_CASE("a script that hangs gets 504 after --cgi-timeout, and its whole process group is killed",
          "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root, {"--cgi-timeout", "1", "--kill-grace", "1"}));
  Fd c = open_connection(s.port());
  std::string leftover;
  const pid_t pgid = start_hang(s, c);

  const HttpResponse r = next_response(c, leftover);
  CHECK(r.status == 504);
  check_group_gone(pgid);
  c.reset();
  check_clean_end(s);
}

TEST_CASE("a client that disconnects while its script hangs takes the script's process group down",
          "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));  // the default --cgi-timeout (30 s) is far away: only the disconnect can stop it
  Fd c = open_connection(s.port());
  const pid_t pgid = start_hang(s, c);

  c.reset();
  check_group_gone(pgid);
  check_clean_end(s);
}

TEST_CASE("stderr lines of a script reach spawnd's error log tagged with the script's name", "[e2e][cgi]") {
  // stderr.sh writes 600 lines (96 KiB) to stderr before its response. Ten requests, two at a time: every line of
  // every request must be logged, also when the response ends while stderr still holds unread lines.
  constexpr int kRequests = 10;
  constexpr int kLines = 600;
  TempDir root;
  Spawnd s(cgi_args(root));
  for (int i = 0; i < kRequests; i += 2) {
    Fd a = open_connection(s.port()), b = open_connection(s.port());
    std::string a_left, b_left;
    REQUIRE(send_all(a, "GET /cgi-bin/stderr.sh HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
    REQUIRE(send_all(b, "GET /cgi-bin/stderr.sh HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
    for (auto [fd, leftover] : {std::pair{&a, &a_left}, std::pair{&b, &b_left}}) {
      const HttpResponse r = next_response(*fd, *leftover);
      REQUIRE(r.status == 200);
      CHECK(r.body == "stderr done\n");
    }
  }
  // Lines per request, keyed by the request tag "cgi[ID]" that precedes "stderr.sh: ".
  auto lines_per_request = [&] {
    std::map<std::string, int> counts;
    const std::string log = s.stderr_text();
    const std::string needle = " stderr.sh: stderr-line ";
    for (std::size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) {
      const std::size_t tag = log.rfind("cgi[", at);
      if (tag != std::string::npos) ++counts[log.substr(tag, at - tag)];
    }
    return counts;
  };
  auto total = [&] {
    int n = 0;
    for (const auto& [tag, count] : lines_per_request()) n += count;
    return n;
  };
  const bool has_all = wait_until([&] { return total() >= kRequests * kLines; }, kProcessTimeout);
  const auto counts = lines_per_request();
  std::string summary;
  for (const auto& [tag, count] : counts) summary += tag + ": " + std::to_string(count) + " lines\n";
  INFO("lines logged per request (of " << kLines << "):\n" << summary);
  CHECK(counts.size() == static_cast<std::size_t>(kRequests));
  CHECK(has_all);
  // The tag format: "cgi[ID] stderr.sh: stderr-line 0001 x...".
  const std::string log = s.stderr_text();
  CHECK(log.find("stderr.sh: stderr-line 0001 x") != std::string::npos);
  CHECK(log.find("stderr.sh: stderr-line 0600 x") != std::string::npos);
  check_clean_end(s);
}

// ---- streaming and connections ----

TEST_CASE("a streamed CGI response goes out chunked, and the connection is kept alive after it", "[e2e][cgi]") {
  TempDir root;
  root.write("static.txt", "static\n");
  Spawnd s(cgi_args(root));
  Fd c = open_connection(s.port());
  std::string leftover;
  REQUIRE(send_all(c, keep_alive_get("/cgi-bin/slow.sh")));
  HttpResponse r = next_response(c, leftover);
  CHECK(r.status == 200);
  CHECK(r.was_chunked);
  CHECK(r.body == "slow line 1\nslow line 2\nslow line 3\nslow line 4\nslow line 5\n");
  CHECK(r.field("Connection") != std::optional<std::string>("close"));

  check_hello_on(c, leftover);
  REQUIRE(send_all(c, "GET /static.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  r = next_response(c, leftover);
  CHECK(r.status == 200);
  CHECK(r.body == "static\n");
  c.reset();
  check_clean_end(s);
}

TEST_CASE("200 requests from 20 parallel clients to a CGI script all succeed with --max-children 8",
          "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root, {"--max-children", "8"}));
  constexpr int kThreads = 20;
  constexpr int kPerThread = 10;
  std::atomic<int> ok{0};
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        try {
          const HttpResponse r = request(s.port(), "GET /cgi-bin/hello.sh HTTP/1.1\r\nHost: localhost\r\n"
                                                 "Connection: close\r\n\r\n");
          if (r.status == 200 && r.body == "hello\n") {
            ++ok;
          } else if (failures[static_cast<std::size_t>(t)].empty()) {
            failures[static_cast<std::size_t>(t)] = "status " + std::to_string(r.status) + ": " + r.body;
          }
        } catch (const std::exception& e) {
          if (failures[static_cast<std::size_t>(t)].empty()) failures[static_cast<std::size_t>(t)] = e.what();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const std::string& f : failures) {
    if (!f.empty()) UNSCOPED_INFO("a failure: " << f);
  }
  CHECK(ok.load() == kThreads * kPerThread);
  check_clean_end(s);
}

TEST_CASE("over --max-children with no queue, a request gets 503 with Retry-After", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root, {"--max-children", "1", "--queue", "0"}));
  Fd busy = open_connection(s.port());
  REQUIRE(send_all(busy, keep_alive_get("/cgi-bin/hang.sh")));
  const pid_t pgid = wait_for_one_child(s);

  HttpResponse r = get(s.port(), "/cgi-bin/hello.sh");
  CHECK(r.status == 503);
  CHECK(r.field("Retry-After").has_value());

  // The slot comes back once the hanging child is gone.
  busy.reset();
  const bool is_free = wait_until([&] { return live_group_members(pgid).empty() && children_of(s.pid()).empty(); },
                                  kProcessTimeout);
  REQUIRE(is_free);
  r = get(s.port(), "/cgi-bin/hello.sh");
  CHECK(r.status == 200);
  check_clean_end(s);
}

TEST_CASE("static files are served while CGI children run", "[e2e][cgi]") {
  TempDir root;
  root.write("static.txt", "static while busy\n");
  Spawnd s(cgi_args(root, {"--max-children", "2"}));
  Fd busy1 = open_connection(s.port()), busy2 = open_connection(s.port());
  REQUIRE(send_all(busy1, keep_alive_get("/cgi-bin/hang.sh")));
  REQUIRE(send_all(busy2, keep_alive_get("/cgi-bin/hang.sh")));
  const bool are_running = wait_until(
      [&] {
        return live_children_of(s.pid()).size() == 2;
      },
      kProcessTimeout);
  REQUIRE(are_running);
  for (int i = 0; i < 5; ++i) {
    const HttpResponse r = get(s.port(), "/static.txt");
    CHECK(r.status == 200);
    CHECK(r.body == "static while busy\n");
  }
  busy1.reset();
  busy2.reset();
  check_clean_end(s);
}

// ---- other languages ----

TEST_CASE("php-cgi runs a PHP script with GET and POST parameters", "[e2e][cgi]") {
  if (::access("/usr/bin/php-cgi", X_OK) != 0) {
    WARN("/usr/bin/php-cgi is not installed: skipping the PHP test");
    return;
  }
  TempDir root;
  Spawnd s(cgi_args(root));
  HttpResponse r = get(s.port(), "/cgi-bin/form.php?g=hello%20get");
  CHECK(r.status == 200);
  CHECK(r.body == "get=hello get\npost=(none)\nmethod=GET\n");
  r = request(s.port(), post_request("/cgi-bin/form.php?g=a", "p=hello+post&other=1", "application/x-www-form-urlencoded"));
  CHECK(r.status == 200);
  CHECK(r.body == "get=a\npost=hello post\nmethod=POST\n");
  check_clean_end(s);
}

// ---- limits, framing and robustness ----

TEST_CASE("a script whose header block is over the 64 KiB limit gets 502", "[e2e][cgi]") {
  // 1010 filler fields make a block just over 64 KiB, 2000 one of about 128 KiB.
  const int fillers = GENERATE(1010, 2000);
  CAPTURE(fillers);
  TempDir root;
  Spawnd s(cgi_args(root));
  const HttpResponse r = get(s.port(), "/cgi-bin/big-header.pl?" + std::to_string(fillers));
  CHECK(r.status == 502);
  CHECK_FALSE(r.field("X-Filler-0001").has_value());
  check_clean_end(s);
}

TEST_CASE("a bare CR inside a script's field value cannot split the response", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  Fd c = open_connection(s.port());
  std::string leftover;
  REQUIRE(send_all(c, "GET /cgi-bin/header-cr.sh HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
  const std::string raw = read_until_close(c, leftover, kReplyTimeoutMs);
  const std::string head = raw.substr(0, raw.find("\r\n\r\n"));
  INFO(head);
  // Either the response is refused (502) or the CR became a space; a CR not followed by LF must never go out.
  for (std::size_t i = 0; i < head.size(); ++i) {
    if (head[i] != '\r') continue;
    CAPTURE(i);
    CHECK((i + 1 < head.size() && head[i + 1] == '\n'));
  }
  check_clean_end(s);
}

TEST_CASE("a script that ignores a 1 MiB request body still answers, and the connection stays usable",
          "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  Fd c = open_connection(s.port());
  std::string leftover;
  const std::string body(1 << 20, 'z');
  REQUIRE(send_all(c, post_request("/cgi-bin/hello.sh", body, "application/octet-stream", true)));
  HttpResponse r = next_response(c, leftover);
  CHECK(r.status == 200);
  CHECK(r.body == "hello\n");
  check_hello_on(c, leftover);
  c.reset();
  check_clean_end(s);
}

TEST_CASE("an 8 MiB streamed response arrives complete and in order", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  constexpr std::size_t kSize = 8u << 20;
  const HttpResponse r = get(s.port(), "/cgi-bin/big-output.py?" + std::to_string(kSize));
  REQUIRE(r.status == 200);
  CHECK(r.was_chunked);
  REQUIRE(r.body.size() == kSize);
  CHECK((r.body == big_output(kSize)));
  check_clean_end(s);
}

// ---- response spooling: a slow client never holds a script ----

TEST_CASE("a script whose client reads nothing yet runs to its end: its response waits in a temporary file, past "
          "--cgi-timeout, and arrives whole",
          "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root, {"--cgi-timeout", "2"}));
  constexpr std::size_t kSize = 16u << 20;
  Fd c = start_big_output_unread(s, kSize);
  // The script writes all 16 MiB and exits although the client has read nothing (far more than the pipe, the
  // in-memory buffer and the sockets hold).
  CHECK(wait_until([&] { return live_children_of(s.pid()).empty(); }, kProcessTimeout));
  auto temp_bytes = [&] { return metric_sample(get(s.port(), "/server-status").body, "spawnd_response_temp_bytes"); };
  CHECK(temp_bytes() > 8u << 20);  // the status page shows the file
  // Past --cgi-timeout: the script is done, so nothing is cut off.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  std::string leftover;
  const HttpResponse r = next_response(c, leftover);
  REQUIRE(r.status == 200);
  CHECK(r.is_complete);
  REQUIRE(r.body.size() == kSize);
  CHECK((r.body == big_output(kSize)));
  CHECK(temp_bytes() == 0);  // the file is gone once sent
  // The connection goes on.
  check_hello_on(c, leftover);
  c.reset();
  check_clean_end(s);
}

TEST_CASE("without room for a temporary file (--max-response-temp-bytes 0, or past it) a script waits for its slow "
          "client, and its response still arrives whole",
          "[e2e][cgi]") {
  const std::string limit = GENERATE(as<std::string>{}, "0", "1048576");
  CAPTURE(limit);
  TempDir root;
  Spawnd s(cgi_args(root, {"--max-response-temp-bytes", limit}));
  constexpr std::size_t kSize = 16u << 20;
  Fd c = start_big_output_unread(s, kSize);
  // A wait, not a timing assertion: the script cannot have finished, whatever the machine's speed.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  CHECK_FALSE(live_children_of(s.pid()).empty());
  std::string leftover;
  const HttpResponse r = next_response(c, leftover);
  REQUIRE(r.status == 200);
  REQUIRE(r.body.size() == kSize);
  CHECK((r.body == big_output(kSize)));
  c.reset();
  check_clean_end(s);
}

TEST_CASE("when no temporary file can be made for a response, the script waits for its client, the response arrives "
          "whole, and the error log says why",
          "[e2e][cgi]") {
  TempDir root;
  TempDir temp;
  const std::string temp_dir = temp.path() + "/spool";
  fs::create_directory(temp_dir);
  Spawnd s(cgi_args(root, {"--body-temp-dir", temp_dir}));
  fs::remove(temp_dir);  // spawnd checked it at start-up; now O_TMPFILE there fails with ENOENT
  constexpr std::size_t kSize = 16u << 20;
  Fd c = start_big_output_unread(s, kSize);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  CHECK_FALSE(live_children_of(s.pid()).empty());
  std::string leftover;
  const HttpResponse r = next_response(c, leftover);
  REQUIRE(r.status == 200);
  REQUIRE(r.body.size() == kSize);
  CHECK((r.body == big_output(kSize)));
  CHECK(s.stderr_text().find("cannot spool the response to a temporary file in " + temp_dir) != std::string::npos);
  c.reset();
  check_clean_end(s);
}

TEST_CASE("a body shorter than the script's Content-Length is cut off, never completed", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  Fd c = open_connection(s.port());
  std::string leftover;
  REQUIRE(send_all(c, keep_alive_get("/cgi-bin/short-body.sh")));
  const std::string raw = read_until_close(c, leftover, kReplyTimeoutMs);
  INFO(raw);
  CHECK(wait_closed(c, 1000));
  // A 502 (nothing had been sent), nothing at all, or a 200 whose 100 announced bytes never all arrive: never a
  // response that looks complete.
  if (raw.starts_with("HTTP/1.1 200")) {
    const std::size_t body_start = raw.find("\r\n\r\n");
    REQUIRE(body_start != std::string::npos);
    CHECK(raw.size() - (body_start + 4) < 100);
  } else {
    CHECK((raw.empty() || raw.starts_with("HTTP/1.1 502")));
  }
  check_clean_end(s);
}

TEST_CASE("a body longer than the script's Content-Length is cut to it, and the connection stays usable",
          "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  Fd c = open_connection(s.port());
  std::string leftover;
  REQUIRE(send_all(c, keep_alive_get("/cgi-bin/long-body.sh")));
  HttpResponse r = next_response(c, leftover);
  CHECK(r.status == 200);
  CHECK(r.field("Content-Length") == std::optional<std::string>("5"));
  CHECK(r.body == "hello");
  check_hello_on(c, leftover);
  c.reset();
  check_clean_end(s);
}

TEST_CASE("a local redirect loop ends with 500", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  const HttpResponse r = get(s.port(), "/cgi-bin/loop.sh");
  CHECK(r.status == 500);
  check_clean_end(s);
}

TEST_CASE("a POST with Expect: 100-continue gets 100 Continue, then the script's answer", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  Fd c = open_connection(s.port());
  std::string leftover;
  REQUIRE(send_all(c, "POST /cgi-bin/echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
                      "Content-Length: 11\r\nExpect: 100-continue\r\n\r\n"));
  // Wait for the interim response before sending the body, as a client that honours Expect does.
  REQUIRE(read_until(c, leftover, "\r\n\r\n", kReplyTimeoutMs));
  CHECK(leftover.starts_with("HTTP/1.1 100 "));
  REQUIRE(send_all(c, "hello world"));
  const HttpResponse r = next_response(c, leftover);  // skips the 100
  CHECK(r.status == 200);
  CHECK(r.body == "hello world");
  c.reset();
  check_clean_end(s);
}

TEST_CASE("pipelined requests to scripts are answered in order on one connection", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  Fd c = open_connection(s.port());
  std::string leftover;
  REQUIRE(send_all(c, "GET /cgi-bin/slow.sh HTTP/1.1\r\nHost: localhost\r\n\r\n"
                      "GET /cgi-bin/status.sh HTTP/1.1\r\nHost: localhost\r\n\r\n"
                      "POST /cgi-bin/echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc"
                      "GET /cgi-bin/hello.sh HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
  HttpResponse r = next_response(c, leftover);
  CHECK(r.status == 200);
  CHECK(r.body.starts_with("slow line 1"));
  r = next_response(c, leftover);
  CHECK(r.status == 404);
  r = next_response(c, leftover);
  CHECK(r.status == 200);
  CHECK(r.body == "abc");
  r = next_response(c, leftover);
  CHECK(r.status == 200);
  CHECK(r.body == "hello\n");
  c.reset();
  check_clean_end(s);
}

TEST_CASE("an HTTP/1.0 request gets a streamed script response delimited by the close", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root));
  const HttpResponse r = request(s.port(), "GET /cgi-bin/slow.sh HTTP/1.0\r\n\r\n");
  CHECK(r.status == 200);
  CHECK_FALSE(r.was_chunked);
  CHECK(r.body == "slow line 1\nslow line 2\nslow line 3\nslow line 4\nslow line 5\n");
  const ScriptView v = parse_dump(request(s.port(), "GET /cgi-bin/env.pl HTTP/1.0\r\n\r\n").body);
  CHECK(v.var("SERVER_PROTOCOL") == std::optional<std::string>("HTTP/1.0"));
  check_clean_end(s);
}

TEST_CASE("a request queued for a child slot longer than --cgi-timeout gets 503, the running one 504",
          "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root, {"--max-children", "1", "--queue", "4", "--cgi-timeout", "1", "--kill-grace", "1"}));
  Fd running = open_connection(s.port());
  std::string running_left;
  REQUIRE(send_all(running, keep_alive_get("/cgi-bin/hang.sh")));
  (void)wait_for_one_child(s);
  Fd queued = open_connection(s.port());
  std::string queued_left;
  REQUIRE(send_all(queued, keep_alive_get("/cgi-bin/hang.sh")));
  const HttpResponse first = next_response(running, running_left);
  CHECK(first.status == 504);
  const HttpResponse second = next_response(queued, queued_left);
  // The queued one either timed out waiting (503) or got the slot and then timed out itself (504); it must
  // never hang.
  CHECK((second.status == 503 || second.status == 504));
  running.reset();
  queued.reset();
  check_clean_end(s);
}

TEST_CASE("SIGTERM while a script hangs: spawnd exits 0 and the script's group is gone", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root, {"--shutdown-grace", "1"}));
  Fd c = open_connection(s.port());
  const pid_t pgid = start_hang(s, c);
  const int status = s.stop();
  INFO(s.stderr_text());
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  check_group_gone(pgid);
}

TEST_CASE("spawnd's open fds return to their baseline after CGI requests of every kind", "[e2e][cgi]") {
  TempDir root;
  root.write("redirected.txt", "redirected static\n");
  Spawnd s(cgi_args(root, {"--cgi-timeout", "1", "--kill-grace", "1"}));
  auto count_fds = [&] { return fd_count(s.pid()); };
  (void)get(s.port(), "/cgi-bin/hello.sh");  // warm-up: whatever is opened once and kept
  const std::size_t baseline = count_fds();
  for (const char* target : {"/cgi-bin/hello.sh", "/cgi-bin/env.pl/x", "/cgi-bin/garbage.sh", "/cgi-bin/crash.sh",
                             "/cgi-bin/early-exit.sh", "/cgi-bin/local-redirect.sh", "/cgi-bin/nph-raw.sh",
                             "/cgi-bin/stderr.sh", "/cgi-bin/hang.sh", "/cgi-bin/no-such", "/cgi-bin/loop.sh"}) {
    CAPTURE(target);
    Fd c = open_connection(s.port());
    std::string leftover;
    REQUIRE(send_all(c, std::string("GET ") + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
    (void)read_until_close(c, leftover, kReplyTimeoutMs);
  }
  {
    Fd gone = open_connection(s.port());  // a client that leaves mid-request
    REQUIRE(send_all(gone, keep_alive_get("/cgi-bin/hang.sh")));
    (void)wait_for_one_child(s);
  }
  const bool is_back = wait_until([&] { return children_of(s.pid()).empty() && count_fds() <= baseline; },
                                  kProcessTimeout);
  INFO("baseline " << baseline << " fds, now " << count_fds());
  CHECK(is_back);
  check_clean_end(s);
}

TEST_CASE("a script that exits but leaves a background process holding its output loses its whole group at the timeout",
          "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root, {"--cgi-timeout", "1", "--kill-grace", "1"}));
  Fd c = open_connection(s.port());
  REQUIRE(send_all(c, keep_alive_get("/cgi-bin/orphan.sh")));
  // The leader exits at once: find the group through its background sleep, whose pgid is the leader's pid.
  pid_t pgid = 0;
  const bool has_orphan = wait_until(
      [&] {
        for (const ProcStat& p : all_processes()) {
          const std::string cmdline = proc_file(p.pid, "cmdline");
          const std::string environ_text = proc_file(p.pid, "environ");
          // The orphan of *this* spawnd: its environment carries our SERVER_PORT.
          if (cmdline.starts_with(std::string("sleep") + '\0' + "300") && p.state != 'Z' &&
              environ_text.find("SERVER_PORT=" + std::to_string(s.port()) + '\0') != std::string::npos) {
            pgid = p.pgid;
            return true;
          }
        }
        return false;
      },
      kProcessTimeout);
  REQUIRE(has_orphan);
  // The response started, then cannot finish: at the timeout the connection is cut.
  CHECK(wait_closed(c, kReplyTimeoutMs));
  if (!check_group_gone(pgid)) ::kill(-pgid, SIGKILL);  // don't leave a 300 s sleep behind
  c.reset();
  check_clean_end(s);
}

TEST_CASE("SERVER_NAME is the Host field without its port, or the local address without Host", "[e2e][cgi]") {
  struct Case {
    std::optional<std::string> host;  // nullopt: an HTTP/1.0 request without Host
    std::string server_name;
  };
  const Case cases[] = {
      {"example.test", "example.test"},
      {"example.test:81", "example.test"},
      {"EXAMPLE.test:81", "EXAMPLE.test"},
      {"[::1]:8080", "[::1]"},
      {"[::1]", "[::1]"},
      {"127.0.0.1:9", "127.0.0.1"},
      {std::nullopt, "127.0.0.1"},
  };
  TempDir root;
  Spawnd s(cgi_args(root));
  for (const Case& c : cases) {
    CAPTURE(c.host.value_or("(none)"));
    const std::string raw = c.host ? "GET /cgi-bin/env.pl HTTP/1.1\r\nHost: " + *c.host + "\r\nConnection: close\r\n\r\n"
                                   : std::string("GET /cgi-bin/env.pl HTTP/1.0\r\n\r\n");
    const HttpResponse r = request(s.port(), raw);
    REQUIRE(r.status == 200);
    const ScriptView v = parse_dump(r.body);
    CHECK(v.var("SERVER_NAME") == std::optional<std::string>(c.server_name));
    CHECK(v.var("SERVER_PORT") == std::optional<std::string>(std::to_string(s.port())));
  }
  check_clean_end(s);
}

TEST_CASE("another --cgi-prefix mounts the scripts elsewhere, and SCRIPT_NAME follows it", "[e2e][cgi]") {
  TempDir root;
  Spawnd s(cgi_args(root, {"--cgi-prefix", "/dyn"}));
  HttpResponse r = get(s.port(), "/dyn/env.pl/p?q=1");
  REQUIRE(r.status == 200);
  const ScriptView v = parse_dump(r.body);
  CHECK(v.var("SCRIPT_NAME") == std::optional<std::string>("/dyn/env.pl"));
  CHECK(v.var("PATH_INFO") == std::optional<std::string>("/p"));
  r = get(s.port(), "/cgi-bin/env.pl");
  CHECK(r.status == 404);  // no longer a script: a (missing) static file
  check_clean_end(s);
}
