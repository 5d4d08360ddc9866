// kv — a JSON key-value store over HTTP, the write-heavy workload.
//
//   PUT    /cgi-bin/kv/<key>        body: any JSON text (RFC 8259), stored as sent
//                                   -> 201 Created (new key) or 204 No Content (replaced); 400 if not JSON
//   GET    /cgi-bin/kv/<key>        -> 200 application/json, the stored text; 404 if absent
//   DELETE /cgi-bin/kv/<key>        -> 204; 404 if absent
//   GET    /cgi-bin/kv?prefix=p     -> 200 ["key1","key2",...], keys starting with p in byte order, at most
//                                      `limit` of them (default 1000, at most 10000)
//   anything else                   -> 405 with Allow
//
// The key is PATH_INFO without its leading '/', already percent-decoded by the server (RFC 3875 §4.1.5), so
// /cgi-bin/kv/a%2Fb and /cgi-bin/kv/a/b may name the same key "a/b" depending on the server; keys must be 1..512
// bytes of UTF-8. Every error is JSON: {"error": "...", "status": N}. Writes are one statement in BEGIN
// IMMEDIATE (db::with_write_transaction); a busy database answers 503 with Retry-After after the retries.
#include <spawnd/handler.h>
#include <spawnd/json.h>
#include <spawnd/utf8.h>

#include "db/database.h"
#include "site_schema.h"

#include <time.h>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sdk = spawnd::sdk;
namespace db = spawnd::db;

namespace {

constexpr size_t kMaxKeyBytes = 512;
constexpr int kDefaultListLimit = 1000;
constexpr int kMaxListLimit = 10000;


sdk::Response method_not_allowed(sdk::Context& ctx, const char* allow) {
  sdk::Response r = ctx.error(405, std::string("allowed methods: ") + allow);
  r.set_header("Allow", allow);
  return r;
}

// The smallest string greater than every string that starts with `prefix` (byte order, SQLite's BINARY
// collation), or nullopt if there is none (empty prefix, or all 0xFF bytes): the upper bound of a prefix range.
std::optional<std::string> prefix_end(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xFF) prefix.pop_back();
  if (prefix.empty()) return std::nullopt;
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

sdk::Response list_keys(sdk::Request& req, sdk::Context& ctx) {
  std::string prefix(req.query("prefix").value_or(""));
  int limit = kDefaultListLimit;
  if (auto text = req.query("limit")) {
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), limit);
    if (ec != std::errc() || end != text->data() + text->size() || limit < 1 || limit > kMaxListLimit)
      throw sdk::HttpError(400, "limit must be an integer from 1 to 10000");
  }
  db::Connection& conn = site::open_site_db(ctx);
  std::optional<std::string> end = prefix_end(prefix);
  // cached(): one compiled statement per process, reused by every request in the FastCGI and in-process modes.
  auto cached = end ? conn.cached("SELECT key FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3")
                    : conn.cached("SELECT key FROM kv WHERE key >= ?1 ORDER BY key LIMIT ?3");
  db::Statement& q = *cached;
  q.bind(1, std::string_view(prefix));
  if (end) q.bind(2, std::string_view(*end));
  q.bind(3, limit);
  nlohmann::json keys = nlohmann::json::array();
  while (q.step()) keys.push_back(std::string(q.column_text(0)));
  return sdk::json_response(keys);
}

sdk::Response get_value(db::Connection& conn, const std::string& key) {
  auto cached = conn.cached("SELECT value FROM kv WHERE key = ?1");
  db::Statement& q = *cached;
  q.bind(1, std::string_view(key));
  if (!q.step()) throw sdk::HttpError(404, "no such key");
  return sdk::Response::json_text(std::string(q.column_text(0)));
}

sdk::Response put_value(sdk::Request& req, db::Connection& conn, const std::string& key) {
  // The body was validated as JSON by the caller; the text is stored as sent (no re-serialisation, which would
  // reorder object members).
  const std::int64_t updated = site::now_ms();
  bool created = db::with_write_transaction(conn, [&](db::Connection& c) {
    c.cached("INSERT INTO kv(key, value, updated) VALUES(?1, ?2, ?3) ON CONFLICT(key) DO NOTHING")
        ->bind_all(std::string_view(key), req.body(), updated)
        .run();
    if (c.changes() == 1) return true;
    c.cached("UPDATE kv SET value = ?2, updated = ?3 WHERE key = ?1")
        ->bind_all(std::string_view(key), req.body(), updated)
        .run();
    return false;
  });
  if (!created) return sdk::Response(204);
  sdk::Response r = sdk::json_response(nlohmann::json{{"key", key}}, 201);
  r.set_header("Location", req.path());
  return r;
}

sdk::Response delete_value(db::Connection& conn, const std::string& key) {
  std::int64_t deleted = db::with_write_transaction(conn, [&](db::Connection& c) {
    c.cached("DELETE FROM kv WHERE key = ?1")->bind(1, std::string_view(key)).run();
    return c.changes();
  });
  if (deleted == 0) throw sdk::HttpError(404, "no such key");
  return sdk::Response(204);
}

sdk::Response handle(sdk::Request& req, sdk::Context& ctx) {
  std::string_view path_info = req.path_info();
  if (path_info.starts_with('/')) path_info.remove_prefix(1);
  const std::string_view method = req.method();

  if (path_info.empty()) {  // the collection: /cgi-bin/kv
    if (method == "GET" || method == "HEAD") return list_keys(req, ctx);
    return method_not_allowed(ctx, "GET, HEAD");
  }

  if (method != "GET" && method != "HEAD" && method != "PUT" && method != "DELETE")
    return method_not_allowed(ctx, "GET, HEAD, PUT, DELETE");
  if (path_info.size() > kMaxKeyBytes) throw sdk::HttpError(400, "key longer than 512 bytes");
  if (!sdk::is_valid_utf8(path_info)) throw sdk::HttpError(400, "key is not valid UTF-8");
  const std::string key(path_info);

  if (method == "PUT") {
    // Validate before opening the database: bad input costs no SQLite.
    (void)sdk::parse_json_body(req);
    return put_value(req, site::open_site_db(ctx), key);
  }
  db::Connection& conn = site::open_site_db(ctx);
  if (method == "DELETE") return delete_value(conn, key);
  return get_value(conn, key);
}

// A pre-forked child (--mode fork --prefork) opens and migrates its connection while it waits.
void warm_up(sdk::Context& ctx) { (void)site::open_site_db(ctx); }

}  // namespace

SPAWND_HANDLER(handle, .error_format = sdk::ErrorFormat::Json, .limits = {.max_body_bytes = 1 << 20},
               .warm_up = warm_up);
