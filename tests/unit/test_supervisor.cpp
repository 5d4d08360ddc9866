// The rules of persistent handler processes (server/gateway/supervisor.h): the restart back-off and the handler
// version that decides a reload.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "server/gateway/supervisor.h"

using spawnd::server::HandlerVersion;
using spawnd::server::RestartBackoff;
namespace fs = std::filesystem;

TEST_CASE("supervisor: a restart is at once the first time, then backs off from 100 ms to 10 s", "[unit][supervisor]") {
  RestartBackoff backoff;
  std::vector<std::int64_t> delays;
  for (int i = 0; i < 12; ++i) delays.push_back(backoff.next_delay_ms());
  CHECK(delays == std::vector<std::int64_t>{0, 100, 200, 400, 800, 1600, 3200, 6400, 10'000, 10'000, 10'000, 10'000});
  CHECK(backoff.failures() == 12);
  for (int i = 0; i < 1000; ++i) (void)backoff.next_delay_ms();  // no overflow however long it keeps failing
  CHECK(backoff.next_delay_ms() == 10'000);
  backoff.reset();  // it proved healthy
  CHECK(backoff.next_delay_ms() == 0);
  CHECK(backoff.next_delay_ms() == 100);
}

TEST_CASE("supervisor: a handler's version changes when it is replaced or rewritten, not when it is only read",
          "[unit][supervisor]") {
  const fs::path dir = fs::temp_directory_path() / ("spawnd-supervisor-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "app").string();
  std::ofstream(path) << "version 1";
  const auto v1 = HandlerVersion::of(path);
  REQUIRE(v1);
  CHECK(HandlerVersion::of(path) == v1);  // stable while nothing changes

  // Replaced by rename (a deploy): a new inode.
  std::ofstream((dir / ".app.new").string()) << "version 2";
  fs::rename(dir / ".app.new", path);
  const auto v2 = HandlerVersion::of(path);
  REQUIRE(v2);
  CHECK_FALSE(*v2 == *v1);

  // Rewritten in place with the same size: the modification time tells.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::ofstream(path, std::ios::trunc) << "version 3";
  const auto v3 = HandlerVersion::of(path);
  REQUIRE(v3);
  CHECK_FALSE(*v3 == *v2);

  fs::remove(path);
  CHECK_FALSE(HandlerVersion::of(path).has_value());
  fs::remove_all(dir);
}
