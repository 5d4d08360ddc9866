// db/db_error.h — spawnd::db::DbError, the one exception type of the SQLite layer.
//
// Every failing SQLite call in db/ throws DbError. It carries the SQLite *extended* result code (connections are
// opened with SQLITE_OPEN_EXRESCODE, so e.g. SQLITE_BUSY_SNAPSHOT (517) rather than SQLITE_BUSY (5)), SQLite's
// message, and the SQL that failed (empty for errors outside a statement, such as open). code() is a std::error_code
// in sqlite_category(), whose value() is the extended code.
//
// It derives from std::system_error, like spawnd::Error, so main() catching std::system_error (or std::exception)
// catches both. The SDK maps is_busy() to 503 with Retry-After; anything else to 500.
#pragma once

#include <string>
#include <system_error>

namespace spawnd::db {

// The error category of SQLite result codes: name() is "sqlite", message(code) is sqlite3_errstr(code).
[[nodiscard]] const std::error_category& sqlite_category() noexcept;

class DbError : public std::system_error {
 public:
  // `extended_code` is a SQLite (extended) result code other than SQLITE_OK/ROW/DONE; `message` is usually
  // sqlite3_errmsg(); `sql` is the statement text, or empty.
  DbError(int extended_code, std::string message, std::string sql);

  // The extended result code, e.g. 517 (SQLITE_BUSY_SNAPSHOT), 2067 (SQLITE_CONSTRAINT_UNIQUE).
  [[nodiscard]] int extended_code() const noexcept { return code().value(); }
  // The primary result code, the low 8 bits of the extended code, e.g. 5 (SQLITE_BUSY), 19 (SQLITE_CONSTRAINT).
  [[nodiscard]] int primary_code() const noexcept { return code().value() & 0xff; }
  // SQLite's message (sqlite3_errmsg at the time of failure).
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  // The SQL that failed, or empty.
  [[nodiscard]] const std::string& sql() const noexcept { return sql_; }
  // True for the SQLITE_BUSY and SQLITE_LOCKED families: another connection holds a lock we need, and the same work
  // may succeed if tried again later. The SDK turns this into 503.
  [[nodiscard]] bool is_busy() const noexcept;
  // True for the SQLITE_CONSTRAINT family (UNIQUE, NOT NULL, FOREIGN KEY, CHECK, ...).
  [[nodiscard]] bool is_constraint() const noexcept;

  // "<message> (sqlite code N)" followed by " in SQL: <sql>" when there is SQL.
  [[nodiscard]] const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::string message_;
  std::string sql_;
  std::string what_;
};

}  // namespace spawnd::db
