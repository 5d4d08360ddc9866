// context_db.cpp — Context::db(): the only SDK code that names the db library.
//
// It sits in its own translation unit on purpose. Handler executables link spawnd_sdk and spawnd_db as static
// archives, and a linker takes an archive member only when something refers to it; so a handler that never calls
// ctx.db() (hello, env) pulls in neither this file nor SQLite, and its process start-up pays nothing for them.
// For the same reason Context reaches the connection's destructor and the busy classification through function
// pointers that this file installs on first use (see context.h).
#include <spawnd/context.h>

#include <spawnd/handler.h>

#include <cstdlib>

#include "common/error.h"
#include "db/database.h"
#include "pragmas/presets.h"

namespace spawnd::sdk {

namespace {

void destroy_connection(db::Connection* conn) noexcept { delete conn; }

// A DbError with is_busy() means another connection held a lock past busy_timeout (and, for writes, past
// with_write_transaction's retries): the same request may succeed in a moment, so 503 + Retry-After (RFC 9110
// §15.6.4). Other DbErrors are left to the generic 500.
bool classify_db_error(const std::exception_ptr& e, ErrorClass& out) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const db::DbError& err) {
    if (!err.is_busy()) return false;
    out.status = 503;
    out.retry_after_s = 1;
    out.log = true;
    out.message = "the database is busy; try again in a moment";
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

db::Connection& Context::db() {
  if (db_) return *db_;
  if (db_config_.path.empty())
    throw spawnd::Error("SPAWND_DB is not set, and handler " + name_ + " needs a database");
  // Installed before opening: opening may already meet a lock (the on-create PRAGMAs of a new file).
  classify_db_error_ = &classify_db_error;
  pragmas::Preset preset = pragmas::find_preset(db_config_.pragmas);
  db::OpenOptions options;
  if (!db_config_.wal_max_bytes.empty()) {
    char* end = nullptr;
    const long long bytes = std::strtoll(db_config_.wal_max_bytes.c_str(), &end, 10);
    if (*end == '\0' && bytes > 0) options.wal_max_bytes = bytes;
  }
  db_ = {new db::Connection(db::Connection::open(db_config_.path, preset, options)), &destroy_connection};
  is_db_set_up_ = false;
  return *db_;
}

db::Connection& Context::db(void (*set_up)(db::Connection&)) {
  db::Connection& conn = db();
  if (is_db_set_up_) return conn;
  try {
    set_up(conn);
  } catch (...) {
    close_db();
    throw;
  }
  is_db_set_up_ = true;
  return conn;
}

}  // namespace spawnd::sdk
