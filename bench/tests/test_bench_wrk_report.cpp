// bench/tests/test_bench_wrk_report.cpp — parse_wrk_output() on wrk 4.1 output recorded against spawnd (fixtures/).
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "bench/wrk_report.h"

using spawnd::bench::parse_wrk_output;
using spawnd::bench::WrkReport;

namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(SPAWND_BENCH_FIXTURES) + "/" + name);
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("wrk output of a GET run gives requests, rate and percentiles in ms", "[unit][bench]") {
  WrkReport r = parse_wrk_output(fixture("wrk_hello.txt"));
  CHECK(r.requests == 2583);
  CHECK(r.duration_s == Approx(1.005957));
  CHECK(r.requests_per_second() == Approx(2583 / 1.005957));
  CHECK(r.bytes == 379701);
  CHECK(r.p50_ms == Approx(2.939));
  CHECK(r.p90_ms == Approx(4.549));
  CHECK(r.p99_ms == Approx(7.301));
  CHECK(r.p99_9_ms == Approx(10.038));
  CHECK(r.latency_min_ms == Approx(0.535));
  CHECK(r.latency_mean_ms == Approx(3.1215));
  CHECK(r.latency_max_ms == Approx(11.743));
  CHECK(r.socket_errors() == 0);
  CHECK(r.non_2xx_3xx == 0);
  CHECK(r.posts_sent == 0);
  CHECK(r.posts_ok == 0);
}

TEST_CASE("wrk output of the write workload counts POSTs sent and answered 303", "[unit][bench]") {
  WrkReport r = parse_wrk_output(fixture("wrk_write.txt"));
  CHECK(r.requests == 1589);
  CHECK(r.posts_sent == 1597);  // 8 connections still waiting when wrk stopped
  CHECK(r.posts_ok == 1589);
}

TEST_CASE("wrk output of the mixed workload: every tenth request is a POST", "[unit][bench]") {
  WrkReport r = parse_wrk_output(fixture("wrk_mixed.txt"));
  CHECK(r.requests == 1451);
  CHECK(r.posts_sent == 144);
  CHECK(r.posts_ok == 144);
}

TEST_CASE("wrk output with error statuses reports them as non-2xx/3xx", "[unit][bench]") {
  WrkReport r = parse_wrk_output(fixture("wrk_404.txt"));
  CHECK(r.requests == 27463);
  CHECK(r.non_2xx_3xx == 27463);
  CHECK(r.socket_errors() == 0);
}

TEST_CASE("wrk output where every request timed out: socket errors, and no negative latency", "[unit][bench]") {
  // wrk recorded no latency sample and printed min = INT64_MIN; the parser reports 0.
  WrkReport r = parse_wrk_output(fixture("wrk_timeouts.txt"));
  CHECK(r.timeouts == 4);
  CHECK(r.socket_errors() == 4);
  CHECK(r.latency_min_ms == 0);
  CHECK(r.p99_ms == 0);
}

TEST_CASE("wrk output without the report line is an error that shows the output", "[unit][bench]") {
  const std::string refused = fixture("wrk_refused.txt");
  CHECK_THROWS_WITH(parse_wrk_output(refused), Catch::Contains("Connection refused"));
  CHECK_THROWS_AS(parse_wrk_output(""), std::runtime_error);
}

TEST_CASE("a report line missing a field is an error naming the problem", "[unit][bench]") {
  CHECK_THROWS_WITH(parse_wrk_output("SPAWND_BENCH_JSON {\"requests\":1}\n"), Catch::Contains("wrk report line"));
  CHECK_THROWS_WITH(parse_wrk_output("SPAWND_BENCH_JSON {not json\n"), Catch::Contains("wrk report line"));
}
