// bench/site_db.h — the example site's database as the benchmark needs it: seeded, counted, checked, kept open.
//
// Every run starts from a fresh copy of a seeded file (1,000 guestbook rows by default), so that no run reads or
// writes what an earlier one left. The schema is the site's own (handlers/site_schema.h), applied with db::migrate,
// so the handlers find it current and migrate nothing.
#pragma once

#include <atomic>
#include <chrono>
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

// The largest size the -wal file next to `db_path` reaches while a WalSampler lives: a thread stats it every
// `period` (10 ms by default). The -wal only grows between samples, never shrinks and grows back within one, unless
// a TRUNCATE checkpoint and 10 ms of writes both fall between two samples, so the figure is a close lower bound.
class WalSampler {
 public:
  explicit WalSampler(const std::string& db_path, std::chrono::milliseconds period = std::chrono::milliseconds(10));
  ~WalSampler();
  WalSampler(const WalSampler&) = delete;
  WalSampler& operator=(const WalSampler&) = delete;
  // Bytes; 0 if the -wal never existed while sampling.
  [[nodiscard]] std::int64_t largest_bytes() const noexcept { return largest_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> largest_{0};
  std::thread thread_;
};

}  // namespace spawnd::bench
