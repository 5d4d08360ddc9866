// db/db_error.cpp — DbError and the "sqlite" error category.
#include "db/db_error.h"

#include <sqlite3.h>

namespace spawnd::db {
namespace {

class SqliteCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sqlite"; }
  std::string message(int code) const override { return sqlite3_errstr(code); }
};

std::string compose_what(int code, const std::string& message, const std::string& sql) {
  std::string what = message.empty() ? std::string(sqlite3_errstr(code)) : message;
  what += " (sqlite code ";
  what += std::to_string(code);
  what += ')';
  if (!sql.empty()) {
    what += " in SQL: ";
    what += sql;
  }
  return what;
}

}  // namespace

const std::error_category& sqlite_category() noexcept {
  static const SqliteCategory category;  // constant-initialised: the class has a constexpr default constructor
  return category;
}

DbError::DbError(int extended_code, std::string message, std::string sql)
    : std::system_error(extended_code, sqlite_category()),
      message_(std::move(message)),
      sql_(std::move(sql)),
      what_(compose_what(extended_code, message_, sql_)) {}

bool DbError::is_busy() const noexcept {
  int primary = primary_code();
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

bool DbError::is_constraint() const noexcept { return primary_code() == SQLITE_CONSTRAINT; }

}  // namespace spawnd::db
