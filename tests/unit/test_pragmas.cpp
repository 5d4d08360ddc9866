// tests/unit/test_pragmas.cpp — the preset parser and the embedded presets (pragmas/presets.h).
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

#include "common/error.h"
#include "pragmas/presets.h"

using spawnd::pragmas::Preset;

namespace {

// The errno-like code a spawnd::Error carries.
int error_code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const spawnd::Error& e) {
    return e.code().value();
  }
  return 0;
}

std::string error_text_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const spawnd::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("Built-in presets are default, durable and baseline, default first", "[unit][pragmas]") {
  auto names = spawnd::pragmas::builtin_names();
  REQUIRE(names.size() == 3);
  CHECK(names[0] == "default");
  CHECK(names[1] == "durable");
  CHECK(names[2] == "baseline");
}

TEST_CASE("Every built-in preset parses into both sections and names its journal mode", "[unit][pragmas]") {
  auto [name, mode] = GENERATE(table<std::string, std::string>({
      {"default", "wal"},
      {"durable", "wal"},
      {"baseline", "delete"},
  }));
  Preset p = spawnd::pragmas::builtin_preset(name);
  CAPTURE(name);
  CHECK(p.name == name);
  REQUIRE(p.journal_mode.has_value());
  CHECK(*p.journal_mode == mode);
  CHECK(p.on_create_sql.find("PRAGMA journal_mode") != std::string::npos);
  CHECK(p.on_create_sql.find("PRAGMA page_size") != std::string::npos);
  CHECK(p.per_connection_sql.find("PRAGMA busy_timeout") != std::string::npos);
  CHECK(p.per_connection_sql.find("PRAGMA synchronous") != std::string::npos);
  // Settings that persist are not in the per-connection block, which runs at every open.
  CHECK(p.per_connection_sql.find("journal_mode") == std::string::npos);
  CHECK(p.per_connection_sql.find("page_size") == std::string::npos);
  // Comments are stripped: what is run is only the statements.
  CHECK(p.on_create_sql.find("--") == std::string::npos);
  CHECK(p.per_connection_sql.find("--") == std::string::npos);
}

TEST_CASE("Every PRAGMA line of the embedded presets carries a comment", "[unit][pragmas]") {
  for (std::string_view name : spawnd::pragmas::builtin_names()) {
    std::string_view text = spawnd::pragmas::builtin_text(name);
    REQUIRE_FALSE(text.empty());
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string_view::npos) end = text.size();
      std::string line(text.substr(start, end - start));
      if (line.rfind("PRAGMA", 0) == 0) {
        CAPTURE(name, line);
        auto comment = line.find("--");
        REQUIRE(comment != std::string::npos);
        CHECK(line.size() - comment > 20);  // a real sentence, not a bare "--"
      }
      start = end + 1;
    }
  }
}

TEST_CASE("durable differs from default only in synchronous", "[unit][pragmas]") {
  Preset def = spawnd::pragmas::builtin_preset("default");
  Preset dur = spawnd::pragmas::builtin_preset("durable");
  CHECK(def.on_create_sql == dur.on_create_sql);
  CHECK(def.per_connection_sql.find("PRAGMA synchronous = NORMAL;") != std::string::npos);
  std::string expected = def.per_connection_sql;
  expected.replace(expected.find("synchronous = NORMAL"), 20, "synchronous = FULL");
  CHECK(dur.per_connection_sql == expected);
}

TEST_CASE("parse_preset splits sections and keeps quoted -- and semicolons as text", "[unit][pragmas]") {
  Preset p = spawnd::pragmas::parse_preset(
      "-- a heading comment\n"
      "\n"
      "-- @on-create\n"
      "pragma page_size = 8192;  -- lower-case keyword is fine\n"
      "PRAGMA main.journal_mode = 'WAL';\n"
      "-- @per-connection\n"
      "PRAGMA busy_timeout = 100; PRAGMA synchronous\n"
      "  = OFF;\n"
      "PRAGMA application_id = '--;x';\n",
      "inline");
  CHECK(p.name == "inline");
  CHECK(p.on_create_sql == "pragma page_size = 8192;PRAGMA main.journal_mode = 'WAL';");
  CHECK(p.per_connection_sql == "PRAGMA busy_timeout = 100;PRAGMA synchronous   = OFF;PRAGMA application_id = '--;x';");
  REQUIRE(p.journal_mode);
  CHECK(*p.journal_mode == "wal");
}

TEST_CASE("A preset with only one section is valid, and the journal_mode(x) form is understood", "[unit][pragmas]") {
  Preset p = spawnd::pragmas::parse_preset("-- @on-create\nPRAGMA journal_mode(Delete);\n", "x");
  CHECK(p.per_connection_sql.empty());
  REQUIRE(p.journal_mode);
  CHECK(*p.journal_mode == "delete");
  Preset q = spawnd::pragmas::parse_preset("-- @per-connection\nPRAGMA cache_size = -100;\n", "y");
  CHECK(q.on_create_sql.empty());
  CHECK_FALSE(q.journal_mode);
}

TEST_CASE("Malformed presets throw spawnd::Error naming the file and line", "[unit][pragmas]") {
  auto row = GENERATE(table<std::string, std::string>({
      {"PRAGMA foreign_keys = ON;\n", "x.sql:1: statement before the first"},
      {"-- @on-create\n-- @oncreate\n", "x.sql:2: unknown marker `-- @oncreate`"},
      {"-- @per-connection\nPRAGMA a = 1;\n-- @per-connection\n", "x.sql:3: section `-- @per-connection` appears twice"},
      {"-- @per-connection\nPRAGMA a = 1\n", "x.sql:2: statement lacks its ';'"},
      {"-- @per-connection\nPRAGMA a = 1\n-- @on-create\nPRAGMA b = 2;\n", "x.sql:2: statement lacks its ';'"},
      {"-- @per-connection\nCREATE TABLE t(x);\n", "x.sql:2: not a PRAGMA statement: CREATE TABLE t(x)"},
      {"-- @per-connection\nPRAGMA a = 'open;\n", "unterminated quote"},
      {"-- just comments\n-- @on-create\n-- @per-connection\n", "no PRAGMA statements"},
      {"", "no PRAGMA statements"},
  }));
  // Not a structured binding: Clang 14 cannot capture those in the lambdas below.
  const std::string text = std::get<0>(row);
  const std::string needle = std::get<1>(row);
  CAPTURE(text);
  std::string what = error_text_of([&] { (void)spawnd::pragmas::parse_preset(text, "x.sql"); });
  CHECK_THAT(what, Catch::Contains(needle));
  CHECK(error_code_of([&] { (void)spawnd::pragmas::parse_preset(text, "x.sql"); }) == EINVAL);
}

TEST_CASE("find_preset takes a built-in name or a file path", "[unit][pragmas]") {
  CHECK(spawnd::pragmas::find_preset("").name == "default");
  CHECK(spawnd::pragmas::find_preset("baseline").name == "baseline");

  SECTION("an unknown name lists the known ones") {
    std::string what = error_text_of([] { (void)spawnd::pragmas::find_preset("fast"); });
    CHECK_THAT(what, Catch::Contains("\"fast\"") && Catch::Contains("default, durable, baseline"));
    CHECK(error_code_of([] { (void)spawnd::pragmas::find_preset("fast"); }) == ENOENT);
  }
  SECTION("a missing file carries errno and the path") {
    std::string what = error_text_of([] { (void)spawnd::pragmas::find_preset("/nonexistent/spawnd.sql"); });
    CHECK_THAT(what, Catch::Contains("/nonexistent/spawnd.sql"));
    CHECK(error_code_of([] { (void)spawnd::pragmas::find_preset("/nonexistent/spawnd.sql"); }) == ENOENT);
    CHECK(error_code_of([] { (void)spawnd::pragmas::find_preset("missing.sql"); }) == ENOENT);
  }
  SECTION("a file is read and parsed, and its path becomes the name") {
    char path[] = "/tmp/spawnd-preset-XXXXXX.sql";
    int fd = mkstemps(path, 4);
    REQUIRE(fd >= 0);
    std::string text = "-- @on-create\nPRAGMA journal_mode = WAL;\n-- @per-connection\nPRAGMA busy_timeout = 7;\n";
    REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    close(fd);
    Preset p = spawnd::pragmas::find_preset(path);
    CHECK(p.name == path);
    CHECK(p.per_connection_sql == "PRAGMA busy_timeout = 7;");
    std::filesystem::remove(path);
  }
  SECTION("a file that does not parse names the file") {
    char path[] = "/tmp/spawnd-preset-XXXXXX.sql";
    int fd = mkstemps(path, 4);
    REQUIRE(fd >= 0);
    std::string text = "PRAGMA journal_mode = WAL;\n";
    REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    close(fd);
    std::string what = error_text_of([&] { (void)spawnd::pragmas::load_preset_file(path); });
    CHECK_THAT(what, Catch::Contains(std::string(path) + ":1:"));
    std::filesystem::remove(path);
  }
}
