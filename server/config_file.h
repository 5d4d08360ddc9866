// server/config_file.h — spawnd's configuration file (--config FILE), in TOML (https://toml.io/en/v1.0.0), read
// with toml++.
//
// The file has no schema of its own: every key is the long flag of the same name, without its dashes, as CLI11
// defines it in main.cpp (`listen = "0.0.0.0:80"`, `handler-timeout = 30`, `index = ["index.html", "index.php"]`,
// `pass-authorization = true`). So a key takes exactly the values its flag takes, checked by the same CLI11
// validators, and a flag added to main.cpp is a key at once. A `[[site]]` table (a virtual host) holds `hosts` and
// the keys of the flags in the option group kSiteOptions.
//
// Types: a flag without a value (add_flag) takes a boolean; a repeatable flag an array (which replaces the default
// list); a flag whose type is a number (INT, UINT, FLOAT, SECONDS) an integer or a float; every other flag a string.
// Errors: ConfigError (spawnd exits 2) "FILE:LINE: KEY: what is wrong", for a TOML syntax error, an unknown key, a
// key of the wrong type, a value the flag's validator rejects, and a process-wide key inside [[site]].
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}

namespace spawnd::server {

// The option group of the flags that are also keys of a [[site]] table; --help lists them under this heading.
inline constexpr const char* kSiteOptions = "Site options (also keys of a [[site]] table in --config)";

// Long options that are never keys: they say how to read the configuration, not what it is.
[[nodiscard]] bool is_command_only_option(std::string_view long_name) noexcept;

class ConfigFile {
 public:
  // Reads and parses `path`. Throws ConfigError "PATH:LINE: message" on a TOML syntax error, or "PATH: message" if
  // the file cannot be read.
  explicit ConfigFile(std::string path);
  ~ConfigFile();
  ConfigFile(ConfigFile&&) noexcept;
  ConfigFile& operator=(ConfigFile&&) noexcept;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  // Gives every top-level key (but `site`) to the option of `app` of the same name, unless the command line gave
  // that option already (`app` has parsed it: a flag on the command line overrides the file, and a repeatable one
  // replaces the file's whole list). Runs each option's validators and callback. Throws ConfigError as above.
  void apply_top_level(CLI::App& app) const;

  // The number of [[site]] tables. Throws ConfigError if `site` is there but not an array of tables.
  [[nodiscard]] std::size_t site_count() const;
  // Gives the keys of [[site]] number `index` to `app` (freshly made, nothing parsed: every key applies), which
  // accepts only options of the group kSiteOptions. Returns its `hosts` as lookup keys (net::host_name_key:
  // lower-cased, one trailing dot dropped): a non-empty array of host names (RFC 9110 §7.2 uri-host, without port).
  // `line` gets the table's line. Throws ConfigError as above, and for missing or malformed `hosts`.
  [[nodiscard]] std::vector<std::string> apply_site(std::size_t index, CLI::App& app, int& line) const;

 private:
  struct Document;
  std::string path_;
  std::unique_ptr<Document> doc_;
};

}  // namespace spawnd::server
