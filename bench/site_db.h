// bench/site_db.h — the example site's database as the benchmark needs it: seeded, counted, checked, kept open.
//
// Every run starts from a fresh copy of a seeded file (1,000 guestbook rows by default), so that no run reads or
// writes what an earlier one left. The schema is the site's own (handlers/site_schema.h), applied with db::migrate,
// so the handlers find it current and migrate nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "db/database.h"

namespace spawnd::bench {

// Creates `path` (replacing a file there) with the site schema and `rows` guestbook entries, opened with PRAGMA
// preset `pragmas` (so the file is already in that preset's journal mode). Throws spawnd::db::DbError.
void seed_site_db(const std::string& path, const std::string& pragmas, int rows);

// Copies a seeded file to `to` (the -wal/-shm of a closed seed do not exist, so the file alone is the database).
void copy_db(const std::string& from, const std::string& to);

struct DbCheck {
  std::int64_t rows = 0;         // SELECT count(*) FROM guestbook
  std::string integrity;         // "ok", or what PRAGMA integrity_check found
};
// Counts the guestbook rows and runs PRAGMA integrity_check. Throws spawnd::db::DbError.
[[nodiscard]] DbCheck check_site_db(const std::string& path, const std::string& pragmas);

// What spawnd's database keeper does, for servers that have none (the peers) and for the limit row: one connection
// held open for the keeper's life, so that no handler's close is the last one (which would checkpoint and delete
// the WAL at every request), and a PASSIVE checkpoint every second on a thread of its own (the handlers run with
// wal_autocheckpoint=0 and leave checkpoints to the server).
class DbKeeper {
 public:
  DbKeeper(const std::string& path, const std::string& pragmas);
  ~DbKeeper();
  DbKeeper(const DbKeeper&) = delete;
  DbKeeper& operator=(const DbKeeper&) = delete;

 private:
  db::Connection conn_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace spawnd::bench
