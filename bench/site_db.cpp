// bench/site_db.cpp — seeding, checking and keeping the site database (bench/site_db.h).
#include "bench/site_db.h"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <string_view>

#include "handlers/site_schema.h"
#include "pragmas/presets.h"

namespace spawnd::bench {

void seed_site_db(const std::string& path, const std::string& pragmas, int rows) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::filesystem::remove(path + suffix);
  auto conn = db::Connection::open(path, pragmas::find_preset(pragmas));
  db::migrate(conn, site::kSchema);
  const std::int64_t now = site::now_ms();
  db::with_write_transaction(conn, [&](db::Connection& c) {
    auto insert = c.prepare("INSERT INTO guestbook(name, message, created) VALUES(?1, ?2, ?3)");
    for (int i = 0; i < rows; ++i) {
      // Oldest first, one a minute, so that "newest 100" walks the index as it would on a real site.
      insert.bind_all("seed " + std::to_string(i), "Seeded entry number " + std::to_string(i) + ", for the benchmark.",
                      now - static_cast<std::int64_t>(rows - i) * 60'000);
      insert.run();
      insert.reset();
    }
  });
  // A full checkpoint leaves everything in the main file, so that copies of it need no -wal.
  db::wal_checkpoint(conn, db::CheckpointMode::Truncate);
}

void copy_db(const std::string& from, const std::string& to) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::filesystem::remove(to + suffix);
  std::filesystem::copy_file(from, to);
}

DbCheck check_site_db(const std::string& path, const std::string& pragmas) {
  db::OpenOptions options;
  options.create = false;
  auto conn = db::Connection::open(path, pragmas::find_preset(pragmas), options);
  DbCheck check;
  auto q = conn.prepare("SELECT count(*) FROM guestbook");
  if (q.step()) check.rows = q.column_int64(0);
  check.integrity = db::integrity_check(conn);
  return check;
}

WalSampler::WalSampler(const std::string& db_path, std::chrono::milliseconds period) {
  thread_ = std::thread([this, wal = db_path + "-wal", period] {
    while (!stop_.load()) {
      struct stat st {};
      if (::stat(wal.c_str(), &st) == 0 && st.st_size > largest_.load()) largest_ = st.st_size;
      std::this_thread::sleep_for(period);
    }
  });
}

WalSampler::~WalSampler() {
  stop_ = true;
  thread_.join();
}

}  // namespace spawnd::bench
