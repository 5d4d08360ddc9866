// spawnd/context.h — Context: the per-process services a handler uses besides its Request: the database, its
// name, logging, error responses in its own format.
//
// Under CGI one process serves one request, so a Context lives exactly as long as the request. Under the
// FastCGI and in-process runtimes it outlives many requests (so the database connection is reused): never keep
// request state in it. It is never carried across fork(): the fork-server runtime builds a fresh one in each
// child (a pre-forked child builds its own after the fork, before its request arrives), and an SQLite connection
// must not cross a fork.
#pragma once

#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include <spawnd/response.h>

namespace spawnd::db {
class Connection;
}

namespace spawnd::sdk {

struct HandlerInfo;

// How a thrown exception maps to a response: what the runtime asks Context::classify() about.
struct ErrorClass {
  int status = 500;       // HTTP status to answer with
  int retry_after_s = 0;  // > 0: add Retry-After (RFC 9110 §10.2.3), e.g. for 503 on a busy database
  bool log = true;        // write one line on stderr
  std::string message;    // shown to the client; never an internal what() for a 500
};

class Context {
 public:
  // Where the database comes from. An empty path means "no database configured": db() then throws.
  struct DbConfig {
    std::string path;     // SPAWND_DB: path of the SQLite file
    std::string pragmas;  // SPAWND_PRAGMAS: a preset name ("default", "durable", ...) or a .sql file path; "" = default
    std::string wal_max_bytes;  // SPAWND_WAL_MAX_BYTES: the WAL bound in bytes the connection's commits help keep
                                // (db::Connection::set_wal_max_bytes); "" or not a number: none
    bool operator==(const DbConfig&) const = default;
  };

  // `name` appears in log lines ("handler NAME: ..."); `info` outlives the Context (it is a static).
  Context(const HandlerInfo& info, std::string name, DbConfig db_config);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] const DbConfig& db_config() const noexcept { return db_config_; }

  // The handler's database connection (db/database.h), opened on first use from DbConfig: the file SPAWND_DB with
  // the PRAGMA preset SPAWND_PRAGMAS applied. Schema set-up is the handler's (db::migrate by user_version).
  // Throws spawnd::Error if SPAWND_DB is unset, or as db::Connection::open (db::DbError) if the database will not
  // open; the runtime answers 500 (503 if it was busy). Handlers that never call db() never open SQLite, and in a
  // static build do not even link it (see context_db.cpp).
  [[nodiscard]] db::Connection& db();
  // db(), and `set_up` run once on each connection it opens, before the connection is first handed out: the place
  // for work that belongs to a connection's start rather than to each request (a schema migration, which reads
  // user_version), since under FastCGI and in-process one connection serves many requests. Pass the same `set_up`
  // every time. If it throws, the connection is closed and the exception propagates, so the next call opens and
  // sets up afresh.
  [[nodiscard]] db::Connection& db(void (*set_up)(db::Connection&));
  [[nodiscard]] bool has_open_db() const noexcept { return db_ != nullptr; }
  // Closes the connection if open. A fork server that opened one must close it before it forks. Never throws.
  void close_db() noexcept;

  // An error response in this handler's error format (HandlerInfo::error_format): HTML page or JSON object.
  [[nodiscard]] Response error(int status, std::string_view message = {}) const;

  // One line on stderr, "handler NAME: <message>", written with a single write(2) (lines never interleave).
  void log(const char* fmt, ...) const __attribute__((format(printf, 2, 3)));

  // For runtimes: how the exception `e` should be answered. HttpError -> its status; the db library's busy
  // error -> 503 with Retry-After; anything else -> 500, logged.
  [[nodiscard]] ErrorClass classify(const std::exception_ptr& e) const noexcept;

  [[nodiscard]] const HandlerInfo& info() const noexcept { return *info_; }

 private:
  const HandlerInfo* info_;
  std::string name_;
  DbConfig db_config_;
  // The connection, once db() opened it. Its deleter and the busy classifier are function pointers set by db()
  // (context_db.cpp), so that Context's own translation unit never names a db symbol: a handler that never calls
  // db() links no SQLite at all.
  std::unique_ptr<db::Connection, void (*)(db::Connection*) noexcept> db_{nullptr, nullptr};
  bool (*classify_db_error_)(const std::exception_ptr&, ErrorClass&) noexcept = nullptr;
  bool is_db_set_up_ = false;  // db(set_up) ran set_up on the open connection
};

}  // namespace spawnd::sdk
