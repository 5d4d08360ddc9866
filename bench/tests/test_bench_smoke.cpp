// bench/tests/test_bench_smoke.cpp — spawnd-bench end to end, as short as it goes: cgi/hello, one connection, one
// 1-second repetition, no warm-up, plus the 1-second limit row. Checks that results.json is complete; never speed.
// Needs wrk (installed by scripts/install-deps.sh): without it spawnd-bench exits 1 and this test fails, on purpose.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

TEST_CASE("spawnd-bench on cgi/hello for one second writes complete results", "[smoke][bench]") {
  std::string dir = (fs::temp_directory_path() / "spawnd-bench-smoke-XXXXXX").string();
  REQUIRE(mkdtemp(dir.data()) != nullptr);
  const std::string log = dir + "/output.txt";
  const std::string cmd = std::string(SPAWND_BENCH_BINARY) +
                          " --modes cgi --workloads hello --concurrency 1 --duration 1 --warmup 0 --repetitions 1"
                          " --results-dir " + dir + " > " + log + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::stringstream output;
  output << std::ifstream(log).rdbuf();
  INFO(output.str());
  REQUIRE(rc == 0);

  fs::path results;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory()) results = e.path();
  REQUIRE(fs::exists(results / "results.json"));
  CHECK(fs::file_size(results / "results.md") > 0);
  CHECK(fs::file_size(results / "chart.svg") > 0);
  CHECK_FALSE(fs::exists(results / "db"));  // the run databases are removed

  const auto j = nlohmann::json::parse(std::ifstream(results / "results.json"));
  CHECK_FALSE(j.at("machine").at("cpu_model").get<std::string>().empty());
  CHECK(j.at("machine").at("cores").get<int>() > 0);
  CHECK_FALSE(j.at("machine").at("kernel").get<std::string>().empty());
  CHECK(j.at("machine").at("versions").contains("wrk"));
  CHECK(j.at("failures").empty());

  const auto& runs = j.at("runs");
  REQUIRE(runs.size() == 2);  // the limit row and cgi
  for (const auto& r : runs) {
    INFO(r.dump());
    CHECK(r.at("requests_per_second").get<double>() > 0);
    if (r.at("server") == "limit") {
      CHECK(r.at("spawns").get<long>() > 0);
      continue;
    }
    CHECK(r.at("server") == "spawnd");
    CHECK(r.at("mode") == "cgi");
    CHECK(r.at("workload") == "hello");
    CHECK(r.at("concurrency") == 1);
    CHECK(r.at("requests").get<long>() > 0);
    CHECK(r.at("latency_ms").at("p50").get<double>() > 0);
    CHECK(r.at("latency_ms").at("p99_9").get<double>() >= r.at("latency_ms").at("p50").get<double>());
    CHECK(r.at("server_cpu_s").get<double>() > 0);
    CHECK(r.at("non_2xx_3xx") == 0);
    CHECK(r.at("socket_errors").at("connect") == 0);
  }
  const auto& summary = j.at("summary");
  REQUIRE(summary.size() == 2);
  CHECK(summary[1].at("ratio_to_limit").get<double>() > 0);
  fs::remove_all(dir);
}
