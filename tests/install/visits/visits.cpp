// visits — a handler of a project of one's own (tests/install/visits/), built against an installed spawnd: counts its
// requests in the database spawnd gives it (SPAWND_DB) and says who served it, for the packaging test.
//   GET /cgi-bin/visits → "visits=3 uid=65534 pid=1234\n"
#include <spawnd/handler.h>

#include <unistd.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "db/database.h"

namespace sdk = spawnd::sdk;
namespace db = spawnd::db;

namespace {

constexpr std::array<std::string_view, 1> kSchema = {
    "CREATE TABLE visits(id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL);\n"
    "INSERT INTO visits VALUES(1, 0);",
};

sdk::Response handle(sdk::Request&, sdk::Context& ctx) {
  db::Connection& conn = ctx.db(+[](db::Connection& c) { db::migrate(c, kSchema); });
  std::int64_t count = 0;
  db::with_write_transaction(conn, [&](db::Connection& c) {
    auto update = c.cached("UPDATE visits SET count = count + 1 WHERE id = 1 RETURNING count");
    if (update->step()) count = update->column_int64(0);
    while (update->step()) {
    }
  });
  return sdk::Response::text("visits=" + std::to_string(count) + " uid=" + std::to_string(::getuid()) +
                             " pid=" + std::to_string(::getpid()) + "\n");
}

}  // namespace

SPAWND_HANDLER(handle);
