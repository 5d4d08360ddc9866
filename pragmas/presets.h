// pragmas/presets.h — PRAGMA presets: named .sql files embedded at build time, or a user's own file.
//
// A preset is two blocks of PRAGMA statements, split by marker lines (see pragmas/README.md):
//
//   -- @on-create        settings that persist in the database file (journal_mode=WAL, page_size, auto_vacuum);
//                        db::Connection::open runs them only when the file is new or not yet configured
//   -- @per-connection   settings that live in one connection (synchronous, busy_timeout, cache_size, ...);
//                        run at every open, in one sqlite3_exec
//
// Built-in presets: "default", "durable", "baseline" (pragmas/*.sql). SPAWND_PRAGMAS names one of them or a file path.
// This library only parses text; it does not link SQLite, and bad SQL inside a valid preset is reported by SQLite
// when a connection runs it (db::DbError). Nothing here runs at static-initialisation time: the embedded texts are
// constant-initialised string literals, parsed on lookup. Thread-safe (no shared mutable state).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace spawnd::pragmas {

struct Preset {
  // "default", "durable", "baseline", or the file path it was read from. For messages only.
  std::string name;
  // The on-create PRAGMAs, comments stripped, each statement ended by ';'. May be empty.
  std::string on_create_sql;
  // The per-connection PRAGMAs, comments stripped, each statement ended by ';'. May be empty.
  std::string per_connection_sql;
  // The lower-case value of the on-create `PRAGMA journal_mode = X`, if the preset sets one ("wal", "delete", ...).
  // db::Connection::open compares it with the file's current mode to decide whether the file is configured.
  std::optional<std::string> journal_mode;
};

// Parses preset text in the marker syntax. `name` is copied into Preset::name and used in messages.
// Rules: `--` starts a comment to end of line; a line `-- @on-create` or `-- @per-connection` starts that section;
// each statement ends with ';' and must be a PRAGMA. Throws spawnd::Error (EINVAL) naming `name` and the line if a
// statement appears before the first marker, a marker is unknown (`-- @typo`), a section marker repeats, a statement
// is not a PRAGMA or lacks its ';', or there are no statements at all.
[[nodiscard]] Preset parse_preset(std::string_view text, std::string_view name);

// Returns the built-in preset `name` ("default", "durable", "baseline"), parsed. Throws spawnd::Error (ENOENT) listing
// the known names if there is none by that name.
[[nodiscard]] Preset builtin_preset(std::string_view name);

// Reads and parses the preset file at `path`. Throws spawnd::Error carrying errno ("pragmas: open PATH") if it
// cannot be read, or as parse_preset() if it does not parse.
[[nodiscard]] Preset load_preset_file(const std::string& path);

// What SPAWND_PRAGMAS holds: a built-in name or a file path. A value containing '/' or ending in ".sql" is a path
// (write ./mine.sql for a file in the working directory); anything else is a built-in name. An empty value means
// "default". Throws as builtin_preset() or load_preset_file().
[[nodiscard]] Preset find_preset(std::string_view name_or_path);

// The built-in preset names, in a fixed order ("default" first).
[[nodiscard]] std::span<const std::string_view> builtin_names() noexcept;

// The raw embedded .sql text of built-in `name`, comments included (for `--print-pragmas` style output), or an
// empty view if there is no such preset.
[[nodiscard]] std::string_view builtin_text(std::string_view name) noexcept;

}  // namespace spawnd::pragmas
