// bench/tests/test_bench_report.cpp — summaries over repetitions, ratios to the limit row, the write check, and the
// table and chart built from them (bench/report.h, bench/runner.h).
#include <catch2/catch.hpp>

#include <regex>
#include <string>
#include <vector>

#include "bench/report.h"

using namespace spawnd::bench;

namespace {

RunResult http_run(const Target& t, int rep, std::int64_t requests, double p99_ms, double cpu_s = 0) {
  RunResult r;
  r.target = t;
  r.repetition = rep;
  WrkReport w;
  w.requests = requests;
  w.duration_s = 1;
  w.p50_ms = 1;
  w.p90_ms = 2;
  w.p99_ms = p99_ms;
  w.p99_9_ms = 2 * p99_ms;
  w.non_2xx_3xx = 1;
  w.timeouts = 2;
  r.wrk = w;
  r.server_cpu_s = cpu_s;
  return r;
}

RunResult limit_run(const std::string& workload, double rate) {
  RunResult r;
  r.target = {"limit", "posix_spawn", workload, 0, "default"};
  SpawnRate s;
  s.spawns_per_second = rate;
  r.spawn = s;
  return r;
}

}  // namespace

TEST_CASE("a summary takes medians over repetitions and sums the errors", "[unit][bench]") {
  const Target cgi{"spawnd", "cgi", "read", 16, "default"};
  std::vector<RunResult> runs = {http_run(cgi, 1, 900, 5, 0.9), http_run(cgi, 2, 1000, 50, 1.0),
                                 http_run(cgi, 3, 1100, 6, 1.1)};
  auto sums = summarize(runs, {cgi});
  REQUIRE(sums.size() == 1);
  const Summary& s = sums[0];
  CHECK(s.rps.median == 1000);
  CHECK(s.rps.min == 900);
  CHECK(s.rps.max == 1100);
  CHECK(s.p99_ms == 6);  // the median, not the 50 ms outlier
  CHECK(s.p99_9_ms == 12);
  CHECK(s.cpu_us_per_request == Approx(1000));
  CHECK(s.non_2xx_3xx == 3);
  CHECK(s.socket_errors == 6);
  CHECK_FALSE(s.ratio_to_limit.has_value());
}

TEST_CASE("every target is compared with the limit row of its own workload", "[unit][bench]") {
  const Target read_limit{"limit", "posix_spawn", "read", 0, "default"};
  const Target write_limit{"limit", "posix_spawn", "write", 0, "default"};
  const Target cgi_read{"spawnd", "cgi", "read", 16, "default"};
  const Target cgi_write{"spawnd", "cgi", "write", 16, "default"};
  const Target lighttpd_read{"lighttpd", "mod_cgi", "read", 16, "default"};
  const Target static_file{"spawnd", "static", "static", 16, "default"};
  std::vector<RunResult> runs = {limit_run("read", 2000), limit_run("write", 1000), http_run(cgi_read, 1, 1800, 1),
                                 http_run(cgi_write, 1, 500, 1), http_run(lighttpd_read, 1, 1000, 1),
                                 http_run(static_file, 1, 30000, 1)};
  auto sums = summarize(runs, {read_limit, write_limit, cgi_read, cgi_write, lighttpd_read, static_file});
  REQUIRE(sums.size() == 6);
  // Grouped by workload, the limit first in its group.
  CHECK(sums[0].target == read_limit);
  CHECK(sums[1].target == cgi_read);
  CHECK(sums[1].ratio_to_limit.value() == Approx(0.9));
  CHECK(sums[2].target == lighttpd_read);
  CHECK(sums[2].ratio_to_limit.value() == Approx(0.5));
  CHECK(sums[3].target == static_file);
  CHECK_FALSE(sums[3].ratio_to_limit.has_value());
  CHECK(sums[4].target == write_limit);
  CHECK(sums[5].ratio_to_limit.value() == Approx(0.5));
}

TEST_CASE("targets without runs are left out of the summaries", "[unit][bench]") {
  const Target fastcgi{"spawnd", "fastcgi", "read", 16, "default"};
  CHECK(summarize({}, {fastcgi}).empty());
}

TEST_CASE("the write check: rows added equal the 303s, plus at most the POSTs in flight", "[unit][bench]") {
  WriteCheck c;
  c.rows_before = 1000;
  c.posts_ok = 500;
  c.posts_sent = 508;
  c.integrity = "ok";
  c.rows_after = 1500;
  CHECK(c.is_ok());  // exactly the 303s
  c.rows_after = 1503;
  CHECK(c.is_ok());  // three of the eight unanswered POSTs had committed when wrk closed their connections
  c.rows_after = 1499;
  CHECK_FALSE(c.is_ok());  // a row lost
  c.rows_after = 1509;
  CHECK_FALSE(c.is_ok());  // more rows than POSTs: something was written twice
  c.rows_after = 1500;
  c.integrity = "*** in database main ***\nPage 5 is never used";
  CHECK_FALSE(c.is_ok());
}

TEST_CASE("the table shows median with min–max, the ratio and the write check", "[unit][bench]") {
  const Target read_limit{"limit", "posix_spawn", "read", 0, "default"};
  const Target fork_write{"spawnd", "fork", "write", 16, "baseline"};
  RunResult w = http_run(fork_write, 1, 1234, 1);
  w.write_check = WriteCheck{1000, 2234, 1234, 1234, "ok"};
  auto sums = summarize({limit_run("read", 2000), w}, {read_limit, fork_write});
  const std::string table = format_table(sums);
  CHECK_THAT(table, Catch::Contains("limit (posix_spawn+wait)"));
  CHECK_THAT(table, Catch::Contains("fork [pragmas baseline]"));
  CHECK_THAT(table, Catch::Contains("1234–1234"));
  CHECK_THAT(table, Catch::Contains(" ok"));
  const std::string md = format_markdown_table(sums);
  CHECK_THAT(md, Catch::StartsWith("| workload | c | server / mode | req/s |"));
  const std::string svg = render_chart_svg(sums, "title", "machine");
  CHECK_THAT(svg, Catch::StartsWith("<svg"));
  CHECK_THAT(svg, Catch::Contains("fork [pragmas baseline]"));
  CHECK_THAT(svg, Catch::EndsWith("</svg>\n"));
}

TEST_CASE("the chart draws each group's bars on a log scale, so a slow row stays visible beside a fast one",
          "[unit][bench]") {
  const Target cgi{"spawnd", "cgi", "read", 16, "default"};
  const Target fastcgi{"spawnd", "fastcgi", "read", 16, "default"};
  auto sums = summarize({http_run(cgi, 1, 100, 1), http_run(fastcgi, 1, 10'000, 1)}, {cgi, fastcgi});
  const std::string svg = render_chart_svg(sums, "title", "machine");
  // The bars are the rects after the background; in row order: cgi, then fastcgi.
  std::vector<int> widths;
  const std::regex bar(R"re(<rect x="\d+" y="\d+" width="(\d+)" height="16")re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), bar); it != std::sregex_iterator(); ++it)
    widths.push_back(std::stoi((*it)[1]));
  REQUIRE(widths.size() == 2);
  // Linear, 100 req/s beside 10000 would be 1 % of the bar; on the log axis from 10 to 10^4 it is a third.
  CHECK(widths[0] * 4 > widths[1]);
  CHECK(widths[0] < widths[1]);
  CHECK_THAT(svg, Catch::Contains(">10000</text>"));  // the decade grid's labels
  CHECK_THAT(svg, Catch::Contains(">100.0</text>"));
}
