// handlers/site_schema.h — the schema of the example site's database, shared by every handler that uses it.
//
// spawnd passes every handler the same SPAWND_DB, and PRAGMA user_version (what db::migrate counts) belongs to the
// file, not to a handler. So the handlers that share a database must share one migration history: this list. A
// handler calls db::migrate(conn, site::kSchema) before its first statement; step i takes the file from
// user_version i to i+1, once, whichever handler gets there first. Append steps; never edit or reorder one that
// has shipped (a database already past it would never see the change).
#pragma once

#include <spawnd/context.h>

#include <array>
#include <cstdint>
#include <ctime>
#include <string_view>

#include "db/database.h"

namespace site {

inline constexpr std::array<std::string_view, 2> kSchema = {
    // 1: guestbook. created is Unix time in milliseconds, so entries of the same second still sort by arrival;
    // the index makes "newest 100" a backward index scan with no sort step (rowid, the index's implicit last
    // column, breaks ties).
    "CREATE TABLE guestbook(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL,\n"
    "  message TEXT NOT NULL,\n"
    "  created INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX guestbook_created ON guestbook(created);",

    // 2: kv. key is the TEXT PRIMARY KEY (its own unique index): point lookups and prefix ranges both use it.
    // value is the JSON text as PUT; updated is Unix time in milliseconds.
    "CREATE TABLE kv(\n"
    "  key TEXT PRIMARY KEY NOT NULL,\n"
    "  value TEXT NOT NULL,\n"
    "  updated INTEGER NOT NULL\n"
    ");",
};

// The site's database with the schema applied: ctx.db() (opened lazily) migrated to the last step, once per
// connection (so a FastCGI or in-process worker reads user_version once, not at every request). Throws
// spawnd::db::DbError as ctx.db() and db::migrate do (the SDK maps a busy database to 503).
inline spawnd::db::Connection& open_site_db(spawnd::sdk::Context& ctx) {
  return ctx.db(+[](spawnd::db::Connection& conn) { spawnd::db::migrate(conn, kSchema); });
}

// Wall-clock time in milliseconds since the Unix epoch (the unit of guestbook.created and kv.updated).
inline std::int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace site
