// tests/unit/test_sdk_context_db.cpp — Context::db(set_up): per-connection set-up (the site's migration) runs once
// per connection, not per request, and again after a failure; SPAWND_WAL_MAX_BYTES reaches the connection.
#include <catch2/catch.hpp>

#include <spawnd/runtime.h>
#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "db/database.h"

namespace sdk = spawnd::sdk;

namespace {

int g_set_ups = 0;
bool g_fail_next = false;

void counting_set_up(spawnd::db::Connection& conn) {
  ++g_set_ups;
  if (g_fail_next) {
    g_fail_next = false;
    throw std::runtime_error("set-up failed");
  }
  conn.exec("CREATE TABLE IF NOT EXISTS t(x)");
}

sdk::Response unused(sdk::Request&, sdk::Context&) { return sdk::Response::text("x"); }

}  // namespace

TEST_CASE("Context::db(set_up) sets a connection up once, and again after a failed set-up", "[unit][sdk][db]") {
  char tmpl[] = "/tmp/spawnd-ctx-test-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  sdk::HandlerInfo info{.fn = unused, .name = "t"};
  {
    sdk::Context ctx(info, "t", {dir + "/t.db", "default", "1048576"});
    g_set_ups = 0;
    for (int request = 0; request < 5; ++request) (void)ctx.db(counting_set_up);
    CHECK(g_set_ups == 1);  // one connection, one set-up, five requests
    CHECK(ctx.db().wal_max_bytes() == 1048576);

    ctx.close_db();
    g_fail_next = true;
    CHECK_THROWS_AS(ctx.db(counting_set_up), std::runtime_error);
    CHECK_FALSE(ctx.has_open_db());  // closed, so the next request starts afresh
    (void)ctx.db(counting_set_up);
    (void)ctx.db(counting_set_up);
    CHECK(g_set_ups == 3);
  }
  std::filesystem::remove_all(dir);
}
