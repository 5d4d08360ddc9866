// The status page end to end (--status-path, --status-allow; status_page.h, metrics.h): a real spawnd, real
// traffic over loopback, and the Prometheus text it then serves. The values must move with the traffic: N requests
// add N in the right labels, a 404 counts as 4xx, a 503 from a full queue as a rejection, the histogram's count as
// the requests, the connections gauge as the connections held open. Who may read it: loopback by default, else the
// --status-allow networks (a second loopback address, 127.0.0.2, plays the outsider).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <csignal>
#include <cstring>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "harness.h"
#include "proc.h"

using namespace spawnd::e2e;
using spawnd::Fd;

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;


// The status page's text (REQUIREs a 200 in the exposition format).
std::string scrape(std::uint16_t port, std::string_view path = "/server-status") {
  const HttpResponse r = get(port, path);
  REQUIRE(r.status == 200);
  REQUIRE(r.field("Content-Type") == std::optional<std::string>("text/plain; version=0.0.4; charset=utf-8"));
  return r.body;
}

double requests(const std::string& page, std::string_view mode, std::string_view code) {
  return metric_sample(page, "spawnd_requests_total{site=\"default\",mode=\"" + std::string(mode) + "\",code=\"" +
                          std::string(code) + "\"}");
}

double gauge(const std::string& page, std::string_view name, std::string_view mode) {
  return metric_sample(page, std::string(name) + "{site=\"default\",mode=\"" + std::string(mode) + "\"}");
}

// Polls the status page until `value` of it equals `want` (up to 10 s); returns the last value.
double wait_for(std::uint16_t port, const std::function<double(const std::string&)>& value, double want) {
  double last = -1;
  wait_until(
      [&] {
        last = value(scrape(port));
        return last == want;
      },
      milliseconds(10'000));
  return last;
}

// A connection to 127.0.0.1:`port` from the local address `source` (another loopback address: 127.0.0.2).
Fd connect_from(const char* source, std::uint16_t port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  REQUIRE(::inet_pton(AF_INET, source, &from.sin_addr) == 1);
  REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&from), sizeof from) == 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0);
  return fd;
}

HttpResponse get_from(const char* source, std::uint16_t port, std::string_view target) {
  Fd fd = connect_from(source, port);
  REQUIRE(send_all(fd, "GET " + std::string(target) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  return read_response(fd);
}

}  // namespace

TEST_CASE("Status page: request counters, the histogram and the connection gauge move with the traffic",
          "[e2e][status]") {
  TempDir root;
  root.write("index.html", "<p>home</p>\n");
  Spawnd s({"--root", root.path(), "--quiet", "--cgi-bin", kCgiDir});
  const std::string before = scrape(s.port());
  for (int i = 0; i < 5; ++i) REQUIRE(get(s.port(), "/index.html").status == 200);
  for (int i = 0; i < 3; ++i) REQUIRE(get(s.port(), "/missing.html").status == 404);
  for (int i = 0; i < 2; ++i) REQUIRE(get(s.port(), "/cgi-bin/hello.sh").status == 200);
  REQUIRE(get(s.port(), "/cgi-bin/status.sh").status == 404);  // the script's own 404: 4xx of cgi
  const std::string after = scrape(s.port());

  CHECK(requests(after, "static", "2xx") - requests(before, "static", "2xx") == 5);
  CHECK(requests(after, "static", "4xx") - requests(before, "static", "4xx") == 3);
  CHECK(requests(after, "cgi", "2xx") - requests(before, "cgi", "2xx") == 2);
  CHECK(requests(after, "cgi", "4xx") - requests(before, "cgi", "4xx") == 1);
  CHECK(requests(after, "cgi", "5xx") == 0);
  CHECK(requests(after, "status", "2xx") >= 1);  // the first scrape
  CHECK(after.find("# TYPE spawnd_requests_total counter\n") != std::string::npos);
  CHECK(after.find("# HELP spawnd_requests_total ") != std::string::npos);

  // The histogram: _count is the requests of the mode, +Inf the same, buckets never decrease.
  const std::string h = "spawnd_request_duration_seconds";
  CHECK(after.find("# TYPE " + h + " histogram\n") != std::string::npos);
  CHECK(metric_sample(after, h + "_count{site=\"default\",mode=\"static\"}") == 8);
  CHECK(metric_sample(after, h + "_bucket{site=\"default\",mode=\"static\",le=\"+Inf\"}") == 8);
  CHECK(metric_sample(after, h + "_count{site=\"default\",mode=\"cgi\"}") == 3);
  CHECK(metric_sample(after, h + "_sum{site=\"default\",mode=\"cgi\"}") > 0);
  double previous = 0;
  for (const char* le : {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}) {
    const double v = metric_sample(after, h + "_bucket{site=\"default\",mode=\"static\",le=\"" + le + "\"}");
    CHECK(v >= previous);
    previous = v;
  }
  CHECK(metric_sample(after, "spawnd_connections_total") >= 12);

  // Three idle connections held open, plus the scrape's own.
  {
    std::vector<Fd> held;
    for (int i = 0; i < 3; ++i) held.push_back(connect_to(s.port()));
    CHECK(wait_for(s.port(), [](const std::string& p) { return metric_sample(p, "spawnd_connections_open"); }, 4) == 4);
  }
  CHECK(wait_for(s.port(), [](const std::string& p) { return metric_sample(p, "spawnd_connections_open"); }, 1) == 1);
  check_clean_end(s);
}

TEST_CASE("Status page: handlers running, requests queued, and a 503 from a full queue", "[e2e][status]") {
  TempDir root;
  Spawnd s({"--root", root.path(), "--quiet", "--cgi-bin", kCgiDir, "--max-children", "1", "--queue", "1"});
  Fd first = connect_to(s.port());
  REQUIRE(send_all(first, "GET /cgi-bin/sleep.sh?2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  CHECK(wait_for(s.port(), [](const std::string& p) { return gauge(p, "spawnd_handlers_running", "cgi"); }, 1) == 1);
  Fd second = connect_to(s.port());
  REQUIRE(send_all(second, "GET /cgi-bin/hello.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  CHECK(wait_for(s.port(), [](const std::string& p) { return gauge(p, "spawnd_requests_queued", "cgi"); }, 1) == 1);

  const HttpResponse refused = get(s.port(), "/cgi-bin/hello.sh");
  CHECK(refused.status == 503);
  CHECK(refused.field("Retry-After").has_value());
  const std::string page = scrape(s.port());
  CHECK(metric_sample(page, "spawnd_rejected_total{site=\"default\",reason=\"queue\"}") == 1);
  CHECK(metric_sample(page, "spawnd_rejected_total{reason=\"connections\"}") == 0);
  CHECK(requests(page, "cgi", "5xx") == 1);

  CHECK(read_response(first).status == 200);
  CHECK(read_response(second).status == 200);
  CHECK(wait_for(s.port(), [](const std::string& p) { return requests(p, "cgi", "2xx"); }, 2) == 2);
  CHECK(wait_for(s.port(), [](const std::string& p) { return gauge(p, "spawnd_handlers_running", "cgi"); }, 0) == 0);
  CHECK(gauge(scrape(s.port()), "spawnd_requests_queued", "cgi") == 0);
  check_clean_end(s);
}

TEST_CASE("Status page: 503s for a full queue or full request buffers count under the request's site, those over "
          "--max-connections under no site",
          "[e2e][status]") {
  TempDir dir;
  dir.write("www/index.html", "home\n");
  dir.write("b/index.html", "b\n");
  // Two sites with handlers; one handler slot and no queue each, small request buffers.
  const std::string config = dir.write(
      "spawnd.toml", "root = \"" + dir.path() + "/www\"\ncgi-bin = \"" + kCgiDir +
                         "\"\nquiet = true\nmax-children = 1\nqueue = 0\nbody-buffer-bytes = 4096\n"
                         "max-buffered-body-bytes = 100000\nmax-connections = 8\n"
                         "[[site]]\nhosts = [\"b.example\"]\nroot = \"" + dir.path() + "/b\"\ncgi-bin = \"" + kCgiDir +
                         "\"\n");
  Spawnd s({"--config", config});
  // b.example's one slot is taken: its next request is refused by the full queue.
  Fd sleeper = connect_to(s.port());
  REQUIRE(send_all(sleeper, "GET /cgi-bin/sleep.sh?1 HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n"));
  CHECK(wait_until(
      [&] {
        return request(s.port(), "GET /cgi-bin/hello.sh HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n")
                   .status == 503;
      },
      milliseconds(5'000)));
  CHECK(read_response(sleeper).status == 200);
  // A body that cannot fit in the request buffers, twice for b.example and once for the default site.
  const std::string post = "POST /cgi-bin/echo.py HTTP/1.1\r\nContent-Length: 200000\r\nConnection: close\r\nHost: ";
  CHECK(request(s.port(), post + "b.example\r\n\r\n").status == 503);
  CHECK(request(s.port(), post + "B.example:80\r\n\r\n").status == 503);
  CHECK(request(s.port(), post + "other.example\r\n\r\n").status == 503);
  // Connections over --max-connections are refused before a request is read: no site is known.
  {
    std::vector<Fd> held;
    for (int i = 0; i < 8; ++i) held.push_back(connect_to(s.port()));
    CHECK(wait_until([&] { return get(s.port(), "/").status == 503; }, milliseconds(5'000)));
  }
  const std::string page = [&] {
    std::string p;
    wait_until(
        [&] {
          const HttpResponse r = get(s.port(), "/server-status");
          p = r.body;
          return r.status == 200;
        },
        milliseconds(5'000));
    return p;
  }();
  CHECK(metric_sample(page, "spawnd_rejected_total{site=\"b.example\",reason=\"queue\"}") >= 1);
  CHECK(metric_sample(page, "spawnd_rejected_total{site=\"default\",reason=\"queue\"}") == 0);
  CHECK(page.find("spawnd_rejected_total{site=\"b.example\",reason=\"queue_timeout\"} 0\n") != std::string::npos);
  CHECK(metric_sample(page, "spawnd_rejected_total{site=\"b.example\",reason=\"body_buffers\"}") == 2);
  CHECK(metric_sample(page, "spawnd_rejected_total{site=\"default\",reason=\"body_buffers\"}") == 1);
  CHECK(metric_sample(page, "spawnd_rejected_total{reason=\"connections\"}") >= 1);
  // Every series but the connections' names its site.
  std::size_t unlabelled = 0;
  for (std::size_t at = page.find("\nspawnd_rejected_total{"); at != std::string::npos;
       at = page.find("\nspawnd_rejected_total{", at + 1))
    unlabelled += page.compare(at + 1, std::strlen("spawnd_rejected_total{site="), "spawnd_rejected_total{site=") != 0;
  CHECK(unlabelled == 1);
  check_clean_end(s);
}

TEST_CASE("Status page: connections over --max-connections and spawn failures are counted", "[e2e][status]") {
  TempDir root;
  TempDir cgi;
  cgi.write("no-interpreter.sh", "#!/nonexistent/interpreter\n", true);
  Spawnd s({"--root", root.path(), "--quiet", "--cgi-bin", cgi.path(), "--max-connections", "2"});
  // The spawn fails (ENOENT) on a spawn thread; the child's stdout may close before that is reported, and the answer
  // is then 502 rather than 500. Either way one spawn failure.
  const HttpResponse failed = get(s.port(), "/cgi-bin/no-interpreter.sh");
  CHECK((failed.status == 500 || failed.status == 502));
  CHECK(wait_for(s.port(), [](const std::string& p) { return gauge(p, "spawnd_spawn_failures_total", "cgi"); }, 1) == 1);
  {
    Fd one = connect_to(s.port());
    Fd two = connect_to(s.port());
    // Both held: the third connection is over the limit.
    CHECK(wait_until([&] { return get(s.port(), "/").status == 503; }, milliseconds(5'000)));
  }
  const std::string page = [&] {
    std::string p;
    wait_until(
        [&] {
          const HttpResponse r = get(s.port(), "/server-status");
          p = r.body;
          return r.status == 200;
        },
        milliseconds(5'000));
    return p;
  }();
  CHECK(gauge(page, "spawnd_spawn_failures_total", "cgi") == 1);
  CHECK(requests(page, "cgi", "5xx") == 1);
  CHECK(metric_sample(page, "spawnd_rejected_total{reason=\"connections\"}") >= 1);
  check_clean_end(s);
}

TEST_CASE("Status page: a FastCGI worker that cannot be started counts as a spawn failure", "[e2e][status]") {
  TempDir root;
  TempDir tmp;  // spawnd's TMPDIR: its FastCGI sockets' directory is made there
  Spawnd s({"--root", root.path(), "--cgi-bin", SPAWND_CGI_BIN_DIR, "--mode", "fastcgi", "--workers", "1"},
           {{"TMPDIR", tmp.path()}});
  REQUIRE(get(s.port(), "/cgi-bin/hello").status == 200);
  CHECK(gauge(scrape(s.port()), "spawnd_spawn_failures_total", "fastcgi") == 0);
  // Without the sockets' directory a worker cannot listen, so it cannot be started again once it has died.
  std::size_t dirs = 0;
  for (const auto& entry : fs::directory_iterator(tmp.path())) dirs += fs::remove_all(entry.path()) > 0 ? 1 : 0;
  REQUIRE(dirs == 1);
  const std::vector<ProcStat> workers = live_children_of(s.pid());
  REQUIRE_FALSE(workers.empty());
  for (const ProcStat& worker : workers) ::kill(worker.pid, SIGKILL);
  CHECK(wait_for(s.port(), [](const std::string& p) { return gauge(p, "spawnd_spawn_failures_total", "fastcgi") > 0; },
                 1) == 1);
  // The error log reaches us through a pipe our reader thread drains: the line may come a moment after the count.
  CHECK(wait_until([&] { return s.stderr_text().find("cannot start a worker") != std::string::npos; },
                   milliseconds(5'000)));
  check_clean_end(s);
}

TEST_CASE("Status page: a request sent to a busy FastCGI worker behind its running one counts as queued",
          "[e2e][status]") {
  TempDir root;
  Spawnd s({"--root", root.path(), "--cgi-bin", SPAWND_TEST_CGI_BIN_DIR, "--mode", "fastcgi", "--workers", "1"});
  REQUIRE(get(s.port(), "/cgi-bin/slow?ms=0").status == 200);
  Fd first = connect_to(s.port());
  REQUIRE(send_all(first, "GET /cgi-bin/slow?ms=1500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  CHECK(wait_for(s.port(), [](const std::string& p) { return gauge(p, "spawnd_handlers_running", "fastcgi"); }, 1) ==
        1);
  Fd second = connect_to(s.port());
  REQUIRE(send_all(second, "GET /cgi-bin/slow?ms=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  CHECK(wait_for(s.port(), [](const std::string& p) { return gauge(p, "spawnd_requests_queued", "fastcgi"); }, 1) ==
        1);
  CHECK(read_response(first).status == 200);
  CHECK(read_response(second).status == 200);
  CHECK(wait_for(s.port(), [](const std::string& p) { return gauge(p, "spawnd_requests_queued", "fastcgi"); }, 0) ==
        0);
  check_clean_end(s);
}

TEST_CASE("Status page: the database keeper's figures", "[e2e][status]") {
  TempDir root;
  TempDir data;
  const std::string db = data.path() + "/site.db";
  Spawnd s({"--root", root.path(), "--quiet", "--db", db, "--wal-max-bytes", "1048576"});
  const HttpResponse put = request(s.port(),
                                   "PUT /cgi-bin/kv/answer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                   "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n42");
  REQUIRE(put.status == 201);
  CHECK(wait_for(s.port(), [](const std::string& p) {
          return metric_sample(p, "spawnd_db_frames_backfilled_total{site=\"default\"}") > 0 ? 1 : 0;
        }, 1) == 1);
  const std::string page = scrape(s.port());
  CHECK(metric_sample(page, "spawnd_db_wal_limit_bytes{site=\"default\"}") == 1048576);
  CHECK(metric_sample(page, "spawnd_db_checkpoint_rounds_total{site=\"default\"}") > 0);
  CHECK(metric_sample(page, "spawnd_db_checkpoints_total{site=\"default\"}") > 0);
  CHECK(metric_sample(page, "spawnd_db_wal_bytes_max{site=\"default\"}") > 0);
  CHECK(page.find("spawnd_db_checkpoint_escalations_total{site=\"default\",kind=\"truncate\"} ") != std::string::npos);
  check_clean_end(s);
}

TEST_CASE("Status page: counters go on across SIGHUP reloads, each the sum of before and after", "[e2e][status]") {
  TempDir root;
  TempDir cgi;
  TempDir data;
  cgi.write("no-interpreter.sh", "#!/nonexistent/interpreter\n", true);
  cgi.install("sleep.sh", kCgiDir + "/sleep.sh");
  // One handler slot and no queue: a request while sleep.sh runs is refused (queue). The reload changes
  // --checkpoint-interval, so the new configuration gets a database keeper of its own (db_keeper.h, DbKeepers).
  auto config_text = [&](const char* checkpoint_interval) {
    return "root = \"" + root.path() + "\"\ncgi-bin = \"" + cgi.path() + "\"\nmax-children = 1\nqueue = 0\n" +
           "db = \"" + data.path() + "/site.db\"\ncheckpoint-interval = " + checkpoint_interval + "\n";
  };
  const std::string config = data.write("spawnd.toml", config_text("0.005"));
  Spawnd s({"--config", config});
  // What one configuration's traffic adds: a spawn failure, a refusal by the full queue, a request that slept.
  auto traffic = [&] {
    const HttpResponse failed = get(s.port(), "/cgi-bin/no-interpreter.sh");
    CHECK((failed.status == 500 || failed.status == 502));
    Fd sleeper = connect_to(s.port());
    REQUIRE(send_all(sleeper, "GET /cgi-bin/sleep.sh?1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    CHECK(wait_for(s.port(), [](const std::string& p) { return gauge(p, "spawnd_handlers_running", "cgi"); }, 1) == 1);
    CHECK(get(s.port(), "/cgi-bin/sleep.sh?0").status == 503);
    CHECK(read_response(sleeper).status == 200);
  };
  const std::string failures = "spawnd_spawn_failures_total{site=\"default\",mode=\"cgi\"}";
  const std::string refused = "spawnd_rejected_total{site=\"default\",reason=\"queue\"}";
  const std::string rounds = "spawnd_db_checkpoint_rounds_total{site=\"default\"}";
  const std::string backfilled = "spawnd_db_frames_backfilled_total{site=\"default\"}";
  traffic();
  // A commit (from here: the CGI scripts write nothing) for the keeper to checkpoint.
  CHECK(query_text(data.path() + "/site.db", "CREATE TABLE t(x)").empty());
  CHECK(wait_for(s.port(), [&](const std::string& p) { return metric_sample(p, backfilled) > 0 ? 1 : 0; }, 1) == 1);
  CHECK(wait_for(s.port(), [&](const std::string& p) { return metric_sample(p, failures); }, 1) == 1);
  std::string page = scrape(s.port());
  CHECK(metric_sample(page, refused) == 1);
  const double rounds_before = metric_sample(page, rounds);
  const double backfilled_before = metric_sample(page, backfilled);
  CHECK(rounds_before > 0);

  // The new keeper polls once an hour: what the page shows for the database is the retired keeper's. A request in
  // flight keeps configuration 1 alive for a while after the reload: its counters show while it finishes...
  Fd in_flight = connect_to(s.port());
  REQUIRE(send_all(in_flight, "GET /cgi-bin/sleep.sh?1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  CHECK(wait_for(s.port(), [](const std::string& p) { return gauge(p, "spawnd_handlers_running", "cgi"); }, 1) == 1);
  data.write("spawnd.toml", config_text("3600"));
  REQUIRE(hang_up_and_wait(s, 1));
  page = scrape(s.port());
  CHECK(s.stderr_text().find("configuration 1 retired") == std::string::npos);
  CHECK(gauge(page, "spawnd_handlers_running", "cgi") == 1);  // configuration 1's sleep.sh
  CHECK(metric_sample(page, failures) == 1);
  CHECK(metric_sample(page, refused) == 1);
  CHECK(metric_sample(page, backfilled) == backfilled_before);
  // ... and stay once it has retired.
  CHECK(read_response(in_flight).status == 200);
  REQUIRE(wait_until([&] { return s.stderr_text().find("configuration 1 retired") != std::string::npos; },
                     milliseconds(5'000)));
  page = scrape(s.port());
  CHECK(metric_sample(page, failures) == 1);
  CHECK(metric_sample(page, refused) == 1);
  CHECK(metric_sample(page, rounds) >= rounds_before);
  CHECK(metric_sample(page, backfilled) == backfilled_before);
  traffic();
  CHECK(wait_for(s.port(), [&](const std::string& p) { return metric_sample(p, failures); }, 2) == 2);
  page = scrape(s.port());
  CHECK(metric_sample(page, refused) == 2);
  CHECK(requests(page, "cgi", "2xx") == 3);
  CHECK(requests(page, "cgi", "5xx") == 4);  // two failures, two refusals
  check_clean_end(s);
}

TEST_CASE("Status page: answered to loopback only by default, --status-allow chooses who else", "[e2e][status]") {
  TempDir root;
  {
    Spawnd s({"--root", root.path(), "--quiet"});
    // 127.0.0.2 is loopback too: the default allows all of 127.0.0.0/8.
    CHECK(get_from("127.0.0.2", s.port(), "/server-status").status == 200);
    check_clean_end(s);
  }
  Spawnd s({"--root", root.path(), "--quiet", "--status-allow", "127.0.0.2/32", "--status-allow", "10.0.0.0/8"});
  const HttpResponse refused = get(s.port(), "/server-status");  // from 127.0.0.1, not listed
  CHECK(refused.status == 403);
  CHECK(refused.body.find("spawnd_") == std::string::npos);
  const HttpResponse allowed = get_from("127.0.0.2", s.port(), "/server-status");
  CHECK(allowed.status == 200);
  CHECK(allowed.body.find("spawnd_requests_total") != std::string::npos);
  // The refusal is counted as the status page's 4xx.
  CHECK(requests(allowed.body, "status", "4xx") == 1);
  // Other methods: 405 with Allow.
  const HttpResponse post = request(s.port(), "POST /server-status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                              "Content-Length: 0\r\n\r\n");
  CHECK(post.status == 403);  // the address is checked first
  Fd fd = connect_from("127.0.0.2", s.port());
  REQUIRE(send_all(fd, "POST /server-status HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
  const HttpResponse not_allowed = read_response(fd);
  CHECK(not_allowed.status == 405);
  CHECK(not_allowed.field("Allow") == std::optional<std::string>("GET, HEAD"));
  check_clean_end(s);
}

TEST_CASE("Status page: --status-path moves it, an empty one turns it off, a bad --status-allow is refused",
          "[e2e][status]") {
  TempDir root;
  {
    Spawnd s({"--root", root.path(), "--quiet", "--status-path", "/metrics"});
    CHECK(scrape(s.port(), "/metrics").find("spawnd_connections_open ") != std::string::npos);
    CHECK(get(s.port(), "/server-status").status == 404);
    check_clean_end(s);
  }
  {
    Spawnd s({"--root", root.path(), "--quiet", "--status-path", ""});
    CHECK(get(s.port(), "/server-status").status == 404);
    check_clean_end(s);
  }
  for (const char* bad : {"127.0.0.1/33", "not-an-address", "::1/129", "10.0.0.0/"}) {
    INFO(bad);
    const ExitResult r = run_spawnd({"--root", root.path(), "--listen", "127.0.0.1:0", "--status-allow", bad});
    CHECK(WEXITSTATUS(r.status) == 2);
    CHECK(r.stderr_text.find("--status-allow") != std::string::npos);
  }
}
