// pragmas/presets.cpp — parsing preset text (built-in or a user's file) into its two sections.
#include "pragmas/presets.h"

#include <cerrno>
#include <cstdio>
#include <memory>

#include "common/error.h"
#include "pragmas/embedded.h"

namespace spawnd::pragmas {
namespace {

enum class Section { None, OnCreate, PerConnection };

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

char to_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

class Parser {
 public:
  explicit Parser(std::string_view name) : name_(name) { preset_.name = std::string(name); }

  Preset run(std::string_view text) {
    std::size_t line_no = 0;
    while (!text.empty()) {
      ++line_no;
      std::size_t nl = text.find('\n');
      std::string_view line = nl == std::string_view::npos ? text : text.substr(0, nl);
      text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
      parse_line(line, line_no);
    }
    finish_section(line_no);
    if (preset_.on_create_sql.empty() && preset_.per_connection_sql.empty()) {
      fail(line_no, "no PRAGMA statements (expected `-- @on-create` and/or `-- @per-connection` sections)");
    }
    return std::move(preset_);
  }

 private:
  [[noreturn]] void fail(std::size_t line_no, std::string_view why) const {
    throw spawnd::Error(EINVAL, "pragmas: " + std::string(name_) + ":" + std::to_string(line_no) + ": " +
                                    std::string(why));
  }

  void parse_line(std::string_view line, std::size_t line_no) {
    std::string_view t = trim(line);
    if (t.starts_with("--") && quote_ == 0) {
      std::string_view comment = trim(t.substr(2));
      if (comment.starts_with("@")) {
        start_section(trim(comment.substr(1)), line_no);
      }
      return;  // a whole-line comment
    }
    // SQL text: copy it up to a `--` comment, tracking quotes so that `--` or ';' inside '...' or "..." count as text.
    for (std::size_t i = 0; i < line.size(); ++i) {
      char c = line[i];
      if (quote_ != 0) {
        if (c == quote_) quote_ = 0;
        stmt_ += c;
        continue;
      }
      if (c == '-' && i + 1 < line.size() && line[i + 1] == '-') break;
      if (c == '\'' || c == '"') quote_ = c;
      if (c == ';') {
        end_statement(line_no);
        continue;
      }
      if (trim(stmt_).empty() && !is_space(c)) stmt_line_ = line_no;
      stmt_ += c;
    }
    stmt_ += ' ';
  }

  void start_section(std::string_view marker, std::size_t line_no) {
    Section next = Section::None;
    if (marker == "on-create") {
      next = Section::OnCreate;
    } else if (marker == "per-connection") {
      next = Section::PerConnection;
    } else {
      fail(line_no, "unknown marker `-- @" + std::string(marker) + "` (expected @on-create or @per-connection)");
    }
    finish_section(line_no);
    bool& seen = next == Section::OnCreate ? seen_on_create_ : seen_per_connection_;
    if (seen) fail(line_no, "section `-- @" + std::string(marker) + "` appears twice");
    seen = true;
    section_ = next;
  }

  // At a marker or the end of the text: there must be no statement left without its ';'.
  void finish_section(std::size_t line_no) {
    if (quote_ != 0) fail(line_no, "unterminated quote");
    if (!trim(stmt_).empty()) fail(stmt_line_, "statement lacks its ';': " + std::string(trim(stmt_)));
    stmt_.clear();
  }

  void end_statement(std::size_t line_no) {
    std::string_view stmt = trim(stmt_);
    if (stmt.empty()) {  // a stray ';' is harmless
      stmt_.clear();
      return;
    }
    std::size_t at = stmt_line_ != 0 ? stmt_line_ : line_no;
    if (section_ == Section::None) {
      fail(at, "statement before the first `-- @on-create` or `-- @per-connection` marker");
    }
    if (stmt.size() < 7 || !iequals(stmt.substr(0, 6), "pragma") || !is_space(stmt[6])) {
      fail(at, "not a PRAGMA statement: " + std::string(stmt));
    }
    std::string& out = section_ == Section::OnCreate ? preset_.on_create_sql : preset_.per_connection_sql;
    out.append(stmt);
    out += ';';
    if (section_ == Section::OnCreate) note_journal_mode(trim(stmt.substr(7)));
    stmt_.clear();
    stmt_line_ = 0;
  }

  // `body` is what follows PRAGMA: [schema.]name [= value | (value)]. Records journal_mode's value for main.
  void note_journal_mode(std::string_view body) {
    std::size_t end = body.find_first_of("=(");
    std::string_view pragma_name = trim(body.substr(0, end));
    if (pragma_name.starts_with("main.")) pragma_name.remove_prefix(5);
    if (!iequals(pragma_name, "journal_mode") || end == std::string_view::npos) return;
    std::string_view value = trim(body.substr(end + 1));
    if (body[end] == '(' && value.ends_with(")")) value = trim(value.substr(0, value.size() - 1));
    if (value.size() >= 2 && (value.front() == '\'' || value.front() == '"') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    preset_.journal_mode = lower(value);
  }

  std::string_view name_;
  Preset preset_;
  Section section_ = Section::None;
  bool seen_on_create_ = false;
  bool seen_per_connection_ = false;
  std::string stmt_;           // the statement being read, possibly over several lines
  std::size_t stmt_line_ = 0;  // the line it started on
  char quote_ = 0;             // the open quote character, or 0
};

}  // namespace

Preset parse_preset(std::string_view text, std::string_view name) { return Parser(name).run(text); }

std::span<const std::string_view> builtin_names() noexcept {
  return {detail::kEmbeddedPresetNames, detail::kEmbeddedPresetCount};
}

std::string_view builtin_text(std::string_view name) noexcept {
  for (std::size_t i = 0; i < detail::kEmbeddedPresetCount; ++i) {
    if (detail::kEmbeddedPresets[i].name == name) return detail::kEmbeddedPresets[i].text;
  }
  return {};
}

Preset builtin_preset(std::string_view name) {
  std::string_view text = builtin_text(name);
  if (text.empty()) {
    std::string known;
    for (std::string_view n : builtin_names()) known += (known.empty() ? "" : ", ") + std::string(n);
    throw spawnd::Error(ENOENT, "pragmas: no built-in preset \"" + std::string(name) + "\" (known: " + known +
                                    "; a file path must contain '/' or end in .sql)");
  }
  return parse_preset(text, name);
}

Preset load_preset_file(const std::string& path) {
  // stdio rather than iostreams: the library stays free of iostream static initialisers. "e" = O_CLOEXEC.
  struct Close {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, Close> file(std::fopen(path.c_str(), "rbe"));
  if (!file) throw spawnd::Error(errno, "pragmas: open " + path);
  std::string text;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, file.get())) > 0) text.append(buf, n);
  if (std::ferror(file.get())) throw spawnd::Error(EIO, "pragmas: read " + path);
  return parse_preset(text, path);
}

Preset find_preset(std::string_view name_or_path) {
  if (name_or_path.empty()) return builtin_preset("default");
  if (name_or_path.find('/') != std::string_view::npos || name_or_path.ends_with(".sql")) {
    return load_preset_file(std::string(name_or_path));
  }
  return builtin_preset(name_or_path);
}

}  // namespace spawnd::pragmas
