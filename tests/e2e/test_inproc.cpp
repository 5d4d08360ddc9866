// `spawnd --mode inproc` end to end: the same request set answers byte for byte alike in every mode (a table of
// modes, so a new mode is one more row); parallel POSTs lose no row; shared objects that are not valid handlers stop
// spawnd with exit status 2; a handler slower than --handler-timeout gets 504 and its late response is dropped; a
// full queue answers 503 with Retry-After; a client that leaves mid-call harms nothing; a handler that throws gets 500
// and a log line. Every test runs its own spawnd on port 0 with its own temp directory; every wait is bounded.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

using namespace spawnd::e2e;
using spawnd::Fd;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const std::string kFixtures = SPAWND_TEST_CGI_BIN_DIR;

// The modes the shared request set is compared across: the first is the reference. A mode is a name and the flags
// that select it; add a row to compare one more.
struct ModeRow {
  std::string name;
  std::vector<std::string> flags;
};

const std::vector<ModeRow>& modes() {
  static const std::vector<ModeRow> rows = {
      {"cgi", {"--mode", "cgi"}},
      {"fork", {"--mode", "fork", "--fork-servers", "1"}},
      {"fastcgi", {"--mode", "fastcgi", "--workers", "2"}},
      {"inproc", {"--mode", "inproc", "--workers", "2"}},
  };
  return rows;
}

const std::vector<std::string> kInProc = {"--mode", "inproc"};

// spawnd's arguments: the test's TempDir is the document root (no static file is asked for).
std::vector<std::string> args(const TempDir& dir, const std::vector<std::string>& mode, const std::string& cgi_bin,
                              std::vector<std::string> more = {}) {
  std::vector<std::string> a{"--root", dir.path(), "--cgi-bin", cgi_bin, "--quiet"};
  a.insert(a.end(), mode.begin(), mode.end());
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

std::string with_body(std::string_view method, std::string_view target, std::string_view type, std::string_view body) {
  return std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
         "Content-Type: " + std::string(type) + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

std::string bare(std::string_view method, std::string_view target) {
  return std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
}

struct Step {
  std::string what;
  std::string raw;
  int expected_status;
};

// The request set, in order (the kv and guestbook steps depend on the ones before them).
std::vector<Step> request_set() {
  const std::string form = "application/x-www-form-urlencoded";
  const std::string json = "application/json";
  return {
      {"hello", bare("GET", "/cgi-bin/hello"), 200},
      {"hello, HEAD", bare("HEAD", "/cgi-bin/hello"), 200},
      {"hello, extra path and query", bare("GET", "/cgi-bin/hello/a/b?x=1"), 200},
      {"guestbook, empty", bare("GET", "/cgi-bin/guestbook"), 200},
      {"guestbook, sign", with_body("POST", "/cgi-bin/guestbook", form, "name=Ada&message=Hello+there"), 303},
      {"guestbook, sign hostile",
       with_body("POST", "/cgi-bin/guestbook", form, "name=%3Cb%3EBob%3C%2Fb%3E&message=fish+%26+chips"), 303},
      {"guestbook, empty fields", with_body("POST", "/cgi-bin/guestbook", form, "name=&message="), 400},
      {"guestbook, bad form escape", with_body("POST", "/cgi-bin/guestbook", form, "name=%ZZ&message=x"), 400},
      {"guestbook, body over the handler's limit",
       with_body("POST", "/cgi-bin/guestbook", form, "name=A&message=" + std::string(70 * 1024, 'm')), 413},
      {"guestbook, two entries", bare("GET", "/cgi-bin/guestbook"), 200},
      {"guestbook, HEAD", bare("HEAD", "/cgi-bin/guestbook"), 200},
      {"guestbook, DELETE", bare("DELETE", "/cgi-bin/guestbook"), 405},
      {"kv, PUT new", with_body("PUT", "/cgi-bin/kv/apple", json, R"({"color":"red"})"), 201},
      {"kv, PUT another", with_body("PUT", "/cgi-bin/kv/apricot", json, "[1,2,3]"), 201},
      {"kv, PUT replace", with_body("PUT", "/cgi-bin/kv/apple", json, R"({"color":"green"})"), 204},
      {"kv, GET", bare("GET", "/cgi-bin/kv/apple"), 200},
      {"kv, list", bare("GET", "/cgi-bin/kv?prefix=ap"), 200},
      {"kv, PUT bad JSON", with_body("PUT", "/cgi-bin/kv/bad", json, "{not json"), 400},
      {"kv, DELETE", bare("DELETE", "/cgi-bin/kv/apple"), 204},
      {"kv, GET deleted", bare("GET", "/cgi-bin/kv/apple"), 404},
      {"kv, PATCH", bare("PATCH", "/cgi-bin/kv/apple"), 405},
      {"missing handler", bare("GET", "/cgi-bin/no-such-handler"), 404},
      {"the prefix alone", bare("GET", "/cgi-bin/"), 404},
      {"a shared object by its file name", bare("GET", "/cgi-bin/hello.so"), 403},
      {"env", bare("GET", "/cgi-bin/env/extra/path?q=%3Cb%3E&n=1"), 200},
      {"env, form POST", with_body("POST", "/cgi-bin/env", form, "a=1&b=%C3%A9"), 200},
  };
}

// What must be equal between modes: the status line, the fields other than Date, and the body with the parts that
// depend on when or where it ran replaced (guestbook's minute-resolution times; the env page's port numbers and
// document root, a per-run temp directory).
std::string comparable(const HttpResponse& r) {
  std::string out = r.status_line + "\n";
  for (const auto& [k, v] : r.fields)
    if (k != "Date") out += k + ": " + v + "\n";
  std::string body = std::regex_replace(r.body, std::regex("<time>[^<]*</time>"), "<time>T</time>");
  body = std::regex_replace(body, std::regex("<tr><th>(REMOTE_PORT|SERVER_PORT)</th><td>[^<]*</td></tr>"),
                            "<tr><th>$1</th><td>X</td></tr>");
  body = std::regex_replace(body, std::regex("127\\.0\\.0\\.1:[0-9]+"), "127.0.0.1:PORT");
  body = std::regex_replace(body, std::regex("spawnd-e2e-[A-Za-z0-9]{6}"), "spawnd-e2e-DIR");
  return out + "\n" + body;
}

// One spawnd in `mode`, the request set in order. The database lives in `db_dir`, the same path for every mode,
// so that the env page (which shows SPAWND_DB) can be compared too.
std::vector<HttpResponse> run_request_set(const ModeRow& mode, const std::string& db_dir) {
  fs::remove_all(db_dir);
  fs::create_directories(db_dir);
  TempDir root;
  Spawnd s(args(root, mode.flags, SPAWND_CGI_BIN_DIR, {"--db", db_dir + "/site.db"}));
  std::vector<HttpResponse> out;
  for (const auto& step : request_set()) {
    out.push_back(request(s.port(), step.raw));
    INFO(mode.name << " mode, " << step.what << ": got\n" << out.back().status_line << "\n" << out.back().body);
    CHECK(out.back().status == step.expected_status);
    CHECK(out.back().is_complete);
  }
  int status = s.stop();
  INFO("spawnd's stderr:\n" << s.stderr_text());
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  return out;
}

// A --cgi-bin holding one file, `name`, copied from `from` (or written with `content` when `from` is empty).
std::string one_file_cgi_bin(const TempDir& dir, const std::string& name, const std::string& from,
                             std::string_view content = {}) {
  fs::create_directories(dir.path() + "/cgi-bin");
  std::string path = dir.path() + "/cgi-bin/" + name;
  if (from.empty()) {
    (void)dir.write("cgi-bin/" + name, content);
  } else {
    fs::copy_file(from, path);
  }
  // Not executable, as spawnd_add_handler leaves a handler's .so: then cgi mode refuses it (403) instead of running it.
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  return dir.path() + "/cgi-bin";
}

}  // namespace

TEST_CASE("the shared request set gets identical responses in every mode (cgi, fork, fastcgi, inproc)", "[e2e][inproc]") {
  TempDir work;
  const std::string db_dir = work.path() + "/db";
  auto steps = request_set();
  std::vector<std::vector<HttpResponse>> results;
  for (const auto& mode : modes()) results.push_back(run_request_set(mode, db_dir));
  for (std::size_t m = 1; m < modes().size(); ++m) {
    REQUIRE(results[m].size() == steps.size());
    for (std::size_t i = 0; i < steps.size(); ++i) {
      INFO(modes()[m].name << " against " << modes()[0].name << ", step " << i << ": " << steps[i].what);
      CHECK(comparable(results[m][i]) == comparable(results[0][i]));
    }
  }
  // Spot checks that the set exercised what it claims to.
  const auto& ref = results[0];
  auto at = [&](std::string_view what) -> const HttpResponse& {
    auto it = std::find_if(steps.begin(), steps.end(), [&](const Step& s) { return s.what == what; });
    REQUIRE(it != steps.end());
    return ref[static_cast<std::size_t>(it - steps.begin())];
  };
  CHECK(at("guestbook, sign").field("Location") == std::optional<std::string>("/cgi-bin/guestbook"));
  CHECK(at("guestbook, two entries").body.find("&lt;b&gt;Bob&lt;/b&gt;") != std::string::npos);
  CHECK(at("hello, HEAD").field("Content-Length") == std::optional<std::string>("14"));
  CHECK(at("hello, HEAD").body.empty());
  CHECK(at("kv, GET").body == R"({"color":"green"})");
  CHECK(at("kv, PATCH").field("Allow").has_value());
  CHECK(at("guestbook, two entries").body.find("fish &amp; chips") != std::string::npos);
  CHECK(at("env").body.find("/extra/path") != std::string::npos);
  CHECK(at("env").body.find("SPAWND_DB") != std::string::npos);
}

TEST_CASE("many parallel POSTs in inproc mode lose and double no row", "[e2e][inproc]") {
  TempDir dir;
  const std::string db = dir.path() + "/site.db";
  Spawnd s(args(dir, kInProc, SPAWND_CGI_BIN_DIR, {"--db", db, "--workers", "4"}));
  constexpr int kClients = 8, kPosts = 25;
  std::atomic<int> see_other{0};
  std::vector<std::string> others;
  std::mutex others_mutex;
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < kPosts; ++i) {
        auto r = request(s.port(), with_body("POST", "/cgi-bin/guestbook", "application/x-www-form-urlencoded",
                                             "name=client" + std::to_string(t) + "&message=post" + std::to_string(i)));
        if (r.status == 303) {
          ++see_other;
        } else {
          std::lock_guard lock(others_mutex);
          others.push_back(r.status_line + "\n" + r.body);
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  INFO("other answers: " << Catch::Detail::stringify(others) << "\nspawnd's stderr:\n" << s.stderr_text());
  CHECK(others.empty());
  CHECK(see_other.load() == kClients * kPosts);
  int status = s.stop();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(count_rows(db, "guestbook") == kClients * kPosts);
}

TEST_CASE("a handler answering a 1xx or a status past 599 gets 502 with a log line naming it, in every mode",
          "[e2e][inproc]") {
  const ModeRow& mode = GENERATE(from_range(modes()));
  CAPTURE(mode.name);
  TempDir dir;
  Spawnd s(args(dir, mode.flags, kFixtures));
  for (const char* code : {"101", "100", "103", "600"}) {
    CAPTURE(code);
    const HttpResponse r = get(s.port(), std::string("/cgi-bin/status?code=") + code);
    CHECK(r.status == 502);
    CHECK(r.body.find("status ") != 0);
    CHECK(wait_until(
        [&] {
          return s.stderr_text().find(std::string("status: bad response header: Status ") + code) != std::string::npos;
        },
        5s));
  }
  // The same handler's final statuses pass.
  const HttpResponse ok = get(s.port(), "/cgi-bin/status?code=599");
  CHECK(ok.status == 599);
  CHECK(ok.body == "status 599\n");
  INFO("spawnd's stderr:\n" << s.stderr_text());
  const int status = s.stop();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a shared object in --cgi-bin that is not a valid handler stops spawnd --mode inproc with exit status 2",
          "[e2e][inproc]") {
  TempDir dir;
  std::string cgi_bin;
  std::string expected;
  SECTION("a file that does not load") {
    cgi_bin = one_file_cgi_bin(dir, "broken.so", "", "this is not an ELF file\n");
    expected = "broken.so: cannot load the handler shared object";
  }
  SECTION("a shared object without the entry point") {
    cgi_bin = one_file_cgi_bin(dir, "no_entry.so", SPAWND_TEST_BAD_SO_DIR "/no_entry.so");
    expected = "no_entry.so: not a spawnd in-process handler (no spawnd_inproc_handler_v1 symbol";
  }
  SECTION("a handler of another ABI version") {
    cgi_bin = one_file_cgi_bin(dir, "wrong_abi.so", SPAWND_TEST_BAD_SO_DIR "/wrong_abi.so");
    expected = "wrong_abi.so: in-process ABI version 999, but this spawnd speaks version 1";
  }
  auto r = run_spawnd({"--root", dir.path(), "--cgi-bin", cgi_bin, "--mode", "inproc", "--listen", "127.0.0.1:0"});
  INFO("stderr:\n" << r.stderr_text);
  REQUIRE(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 2);
  CHECK(r.stderr_text.find(expected) != std::string::npos);
  // The same directory is fine in cgi mode: a shared object is not a program (403), and nothing loads it.
  Spawnd cgi(args(dir, {"--mode", "cgi"}, cgi_bin));
  CHECK(get(cgi.port(), "/cgi-bin/" + fs::path(expected.substr(0, expected.find(':'))).string()).status == 403);
}

TEST_CASE("an in-process handler slower than --handler-timeout gets 504 and its late response is dropped",
          "[e2e][inproc]") {
  TempDir dir;
  Spawnd s(args(dir, kInProc, kFixtures, {"--workers", "1", "--handler-timeout", "0.3"}));
  auto late = get(s.port(), "/cgi-bin/slow?ms=1500");
  CHECK(late.status == 504);
  // The worker is still in the handler; once it returns, its response is dropped with a log line.
  CHECK(wait_until([&] { return s.stderr_text().find("returned after its request got 504") != std::string::npos; },
                   10s));
  auto next = get(s.port(), "/cgi-bin/slow?ms=0");
  CHECK(next.status == 200);
  CHECK(next.body == "slept 0 ms\n");
  INFO("spawnd's stderr:\n" << s.stderr_text());
  CHECK(s.stderr_text().find("slow: no response within 300 ms: 504") != std::string::npos);
  int status = s.stop();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("in inproc mode a request beyond the busy workers and --queue gets 503 with Retry-After", "[e2e][inproc]") {
  TempDir dir;
  Spawnd s(args(dir, kInProc, kFixtures, {"--workers", "1", "--queue", "0"}));
  Fd first = connect_to(s.port());
  REQUIRE(send_all(first, bare("GET", "/cgi-bin/slow?ms=1000")));
  // The first request holds the only worker (or, until a worker takes it, the only place): no room for a second.
  HttpResponse busy;
  REQUIRE(wait_until(
      [&] {
        busy = get(s.port(), "/cgi-bin/slow?ms=0");
        return busy.status == 503;
      },
      5s));
  CHECK(busy.field("Retry-After") == std::optional<std::string>("1"));
  auto r = read_response(first);
  CHECK(r.status == 200);
  CHECK(r.body == "slept 1000 ms\n");
  CHECK(get(s.port(), "/cgi-bin/slow?ms=0").status == 200);
}

TEST_CASE("in inproc mode a request handed to the workers' queue that expires there gets 503, not 504, and is "
          "never called",
          "[e2e][inproc]") {
  TempDir dir;
  // One worker and one queue place: the second request is handed over to the workers' queue behind a slow call.
  Spawnd s(args(dir, kInProc, kFixtures, {"--workers", "1", "--queue", "1", "--handler-timeout", "0.4"}));
  Fd first = connect_to(s.port());
  REQUIRE(send_all(first, bare("GET", "/cgi-bin/slow?ms=1200")));
  std::this_thread::sleep_for(100ms);  // the first call has started
  auto waited = get(s.port(), "/cgi-bin/slow?ms=0");
  CHECK(waited.status == 503);
  CHECK(waited.field("Retry-After") == std::optional<std::string>("1"));
  CHECK(read_response(first).status == 504);
  INFO("spawnd's stderr:\n" << s.stderr_text());
  CHECK(wait_until([&] { return s.stderr_text().find("waited 400 ms for a free worker: 503") != std::string::npos; },
                   5s));
  // The expired request never reached the handler: only the slow call's late response is reported.
  CHECK(wait_until([&] { return s.stderr_text().find("returned after its request got 504") != std::string::npos; },
                   5s));
  CHECK(get(s.port(), "/cgi-bin/slow?ms=0").status == 200);
  const std::string err = s.stderr_text();
  std::size_t late = 0;
  for (auto at = err.find("returned after its request got 504"); at != std::string::npos;
       at = err.find("returned after its request got 504", at + 1))
    ++late;
  CHECK(late == 1);
}

TEST_CASE("a client that disconnects during an in-process call leaves the server serving", "[e2e][inproc]") {
  TempDir dir;
  Spawnd s(args(dir, kInProc, kFixtures, {"--workers", "2"}));
  for (int i = 0; i < 4; ++i) {
    Fd gone = connect_to(s.port());
    REQUIRE(send_all(gone, bare("GET", "/cgi-bin/slow?ms=300")));
  }  // closed at once, mid-call (two running, two queued)
  // A request while those calls run and after they have finished: both answered normally.
  CHECK(get(s.port(), "/cgi-bin/slow?ms=0").status == 200);
  std::this_thread::sleep_for(800ms);
  auto r = get(s.port(), "/cgi-bin/slow?ms=10");
  CHECK(r.status == 200);
  CHECK(r.body == "slept 10 ms\n");
  int status = s.stop();
  INFO("spawnd's stderr:\n" << s.stderr_text());
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("an in-process handler that throws gets 500 and one log line, and the server keeps serving",
          "[e2e][inproc]") {
  TempDir dir;
  // No --db: the guestbook's ctx.db() throws ("SPAWND_DB is not set").
  Spawnd s(args(dir, kInProc, SPAWND_CGI_BIN_DIR));
  auto r = get(s.port(), "/cgi-bin/guestbook");
  CHECK(r.status == 500);
  CHECK(r.body.find("SPAWND_DB") == std::string::npos);  // no internals shown
  CHECK(wait_until([&] { return s.stderr_text().find("handler guestbook: GET /cgi-bin/guestbook: 500:") !=
                                std::string::npos; },
                   5s));
  CHECK(get(s.port(), "/cgi-bin/hello").status == 200);
}
