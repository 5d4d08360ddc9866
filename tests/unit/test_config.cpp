// Unit tests for server/config.h: the --mode names and resolve_cpu_defaults(), the one place "0: per CPU" becomes a
// number.
#include <catch2/catch.hpp>

#include <string>

#include "server/config.h"

using spawnd::server::Config;
using spawnd::server::Mode;

TEST_CASE("every --mode name maps to its mode and back", "[unit][config]") {
  for (const auto& [name, mode] : spawnd::server::kModeNames) CHECK(spawnd::server::mode_name(mode) == name);
  CHECK(std::string(spawnd::server::mode_name(Mode::FastCgi)) == "fastcgi");
  CHECK(Config{}.mode == Mode::Cgi);
}

TEST_CASE("resolve_cpu_defaults turns every per-CPU default into a number", "[unit][config]") {
  Config c;
  spawnd::server::resolve_cpu_defaults(c, 3);
  CHECK(c.max_children == 12);  // 4 x CPUs
  CHECK(c.fork_servers == 3);
  CHECK(c.workers == 3);
  CHECK(c.spawn_threads == 3);
}

TEST_CASE("resolve_cpu_defaults keeps what the command line gave", "[unit][config]") {
  Config c;
  c.max_children = 5;
  c.fork_servers = 2;
  c.workers = 7;
  c.spawn_threads = 0;  // 0 is a value here: children start on the loop thread
  spawnd::server::resolve_cpu_defaults(c, 16);
  CHECK(c.max_children == 5);
  CHECK(c.fork_servers == 2);
  CHECK(c.workers == 7);
  CHECK(c.spawn_threads == 0);
}

TEST_CASE("resolve_cpu_defaults counts at least one CPU", "[unit][config]") {
  Config c;
  spawnd::server::resolve_cpu_defaults(c, 0);
  CHECK(c.max_children == 4);
  CHECK(c.workers == 1);
  CHECK(spawnd::server::online_cpus() >= 1);
}
