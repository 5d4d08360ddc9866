// guestbook — the reference workload of "Serving 200 million requests per day with a cgi-bin": one HTML page
// showing a sign form and the 100 newest entries, and a POST that adds an entry and redirects back (303).
//
//   GET  /cgi-bin/guestbook   200 text/html: form + newest 100 entries (ORDER BY created DESC, via an index)
//   POST /cgi-bin/guestbook   name (1..80 characters), message (1..2000 characters), as a form
//                             -> 303 See Other, Location: SCRIPT_NAME (the Post/Redirect/Get pattern)
//                             -> 400 with the form again if a field is empty, too long or not UTF-8
//   other methods             405, Allow: GET, HEAD, POST
//
// Every piece of user text is HTML-escaped on output. The schema is created on first use (db::migrate by
// user_version, with the site-wide step list of site_schema.h); the write is one INSERT in BEGIN IMMEDIATE (db::with_write_transaction), so a busy database
// waits out busy_timeout, is retried, and only then answers 503.
#include <spawnd/handler.h>
#include <spawnd/utf8.h>

#include "db/database.h"
#include "site_schema.h"

#include <time.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace sdk = spawnd::sdk;
namespace db = spawnd::db;

namespace {

constexpr size_t kMaxNameChars = 80;
constexpr size_t kMaxMessageChars = 2000;
constexpr int kPageEntries = 100;


// "2025-01-31 17:05 UTC"
std::string format_time(std::int64_t ms) {
  time_t secs = static_cast<time_t>(ms / 1000);
  tm utc{};
  gmtime_r(&secs, &utc);
  char buf[32];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &utc);
  return std::string(buf, n);
}

void page_start(std::string& out) {
  out += "<!doctype html>\n<html lang=\"en\">\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         "<title>Guestbook</title>\n<link rel=\"stylesheet\" href=\"/style.css\">\n"
         "<h1>Guestbook</h1>\n";
}

void sign_form(std::string& out, std::string_view action, std::string_view name, std::string_view message) {
  out += "<form class=\"sign\" method=\"post\" action=\"";
  sdk::append_html_escaped(out, action);
  out += "\">\n<p><label>Name <input name=\"name\" maxlength=\"80\" required value=\"";
  sdk::append_html_escaped(out, name);
  out += "\"></label></p>\n<p><label>Message <textarea name=\"message\" maxlength=\"2000\" rows=\"4\" required>";
  sdk::append_html_escaped(out, message);
  out += "</textarea></label></p>\n<p><button type=\"submit\">Sign</button></p>\n</form>\n";
}

constexpr const char* kNewestSql =
    "SELECT name, message, created FROM guestbook ORDER BY created DESC, id DESC LIMIT ?1";
constexpr const char* kSignSql = "INSERT INTO guestbook(name, message, created) VALUES(?1, ?2, ?3)";

sdk::Response show(sdk::Request& req, sdk::Context& ctx) {
  db::Connection& conn = site::open_site_db(ctx);
  std::string out;
  out.reserve(16 * 1024);
  page_start(out);
  sign_form(out, req.script_name(), {}, {});
  out += "<section class=\"entries\">\n";
  // cached(): one compiled statement per process, reused by every request in the FastCGI and in-process modes.
  auto cached = conn.cached(kNewestSql);
  db::Statement& q = *cached;
  q.bind(1, kPageEntries);
  int shown = 0;
  while (q.step()) {
    out += "<article class=\"entry\">\n<h2>";
    sdk::append_html_escaped(out, q.column_text(0));
    out += "</h2> <time>";
    out += format_time(q.column_int64(2));
    out += "</time>\n<p>";
    sdk::append_html_escaped(out, q.column_text(1));
    out += "</p>\n</article>\n";
    ++shown;
  }
  if (shown == 0) out += "<p>No entries yet: be the first to sign.</p>\n";
  out += "</section>\n</html>\n";
  return sdk::Response::html(std::move(out));
}

// The form again, with what the visitor typed and why it was refused.
sdk::Response refuse(const sdk::Request& req, std::string_view why, std::string_view name, std::string_view message) {
  std::string out;
  page_start(out);
  out += "<p class=\"error\">";
  sdk::append_html_escaped(out, why);
  out += "</p>\n";
  // Refill only valid UTF-8, so the page itself stays valid.
  sign_form(out, req.script_name(), sdk::is_valid_utf8(name) ? name : "", sdk::is_valid_utf8(message) ? message : "");
  out += "</html>\n";
  return sdk::Response::html(std::move(out), 400);
}

// A field is acceptable if it is valid UTF-8 with 1..max characters that are not all whitespace.
const char* check_field(std::string_view value, size_t max_chars, const char* empty_msg, const char* long_msg) {
  std::optional<size_t> chars = sdk::utf8_length(value);
  if (!chars) return "Please use UTF-8 text.";
  if (value.find_first_not_of(" \t\r\n") == std::string_view::npos) return empty_msg;
  if (*chars > max_chars) return long_msg;
  return nullptr;
}

sdk::Response sign(sdk::Request& req, sdk::Context& ctx) {
  std::string_view name = req.form_value("name").value_or("");
  std::string_view message = req.form_value("message").value_or("");
  if (const char* why = check_field(name, kMaxNameChars, "Please give a name.", "Names are at most 80 characters."))
    return refuse(req, why, name, message);
  if (const char* why =
          check_field(message, kMaxMessageChars, "Please write a message.", "Messages are at most 2000 characters."))
    return refuse(req, why, name, message);

  db::Connection& conn = site::open_site_db(ctx);
  const std::int64_t created = site::now_ms();
  db::with_write_transaction(conn, [&](db::Connection& c) {
    c.cached(kSignSql)->bind_all(name, message, created).run();
  });
  return sdk::Response::redirect(req.script_name());
}

sdk::Response handle(sdk::Request& req, sdk::Context& ctx) {
  std::string_view method = req.method();
  if (method == "GET" || method == "HEAD") return show(req, ctx);
  if (method == "POST") return sign(req, ctx);
  sdk::Response r = ctx.error(405, "The guestbook answers GET and POST.");
  r.set_header("Allow", "GET, HEAD, POST");
  return r;
}

// A pre-forked child (--mode fork --prefork) opens and migrates its connection and prepares both statements while
// it waits, so its request finds them in the connection's cache.
void warm_up(sdk::Context& ctx) {
  db::Connection& conn = site::open_site_db(ctx);
  (void)conn.cached(kNewestSql);
  (void)conn.cached(kSignSql);
}

}  // namespace

SPAWND_HANDLER(handle, .limits = {.max_body_bytes = 64 * 1024, .max_form_fields = 16}, .warm_up = warm_up);
