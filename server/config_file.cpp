#include "server/config_file.h"

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include <array>
#include <cassert>
#include <sstream>
#include <utility>

#include "common/error.h"
#include "common/net_addr.h"

namespace spawnd::server {

namespace {

constexpr std::array<std::string_view, 4> kCommandOnly{"config", "check-config", "version", "help"};

[[nodiscard]] int line_of(const toml::node& node) noexcept { return static_cast<int>(node.source().begin.line); }

[[noreturn]] void fail(const std::string& path, int line, std::string_view key, const std::string& what) {
  throw ConfigError(path + ":" + std::to_string(line) + ": " + std::string(key) + ": " + what);
}

// A number-typed option: CLI11's type names for integers and floats, and add_seconds()'s SECONDS (main.cpp). The
// validators' descriptions follow after ':' ("INT:INT in [1 - 1024]").
[[nodiscard]] bool is_numeric(const CLI::Option& opt) {
  const std::string type = opt.get_type_name();
  for (std::string_view numeric : {"INT", "UINT", "FLOAT", "NUMBER", "SECONDS"}) {
    if (type.starts_with(numeric) && (type.size() == numeric.size() || type[numeric.size()] == ':')) return true;
  }
  return false;
}

// One scalar TOML value as the text of a flag's argument; false if its type is not the one `opt` takes.
[[nodiscard]] bool scalar_text(const toml::node& node, bool is_number, std::string& out) {
  if (is_number) {
    if (auto i = node.value_exact<std::int64_t>()) {
      out = std::to_string(*i);
      return true;
    }
    if (auto d = node.value_exact<double>()) {
      std::ostringstream s;
      s << *d;
      out = s.str();
      return true;
    }
    return false;
  }
  if (auto text = node.value_exact<std::string>()) {
    out = *text;
    return true;
  }
  return false;
}

// Gives `value` of `key` to its option of `app`: the option's results, then its validators and callback.
void apply_key(const std::string& path, CLI::App& app, const std::string& key, const toml::node& value,
               bool is_site) {
  const int line = line_of(value);
  CLI::Option* opt = is_command_only_option(key) ? nullptr : app.get_option_no_throw("--" + key);
  if (opt == nullptr) fail(path, line, key, is_site ? "unknown key in [[site]]" : "unknown key");
  if (is_site && opt->get_group() != kSiteOptions)
    fail(path, line, key, "not a key of [[site]]: a process-wide setting goes at the top level");
  if (opt->count() > 0) return;  // the command line gave it: the command line wins

  const bool is_number = is_numeric(*opt);
  const char* expected = is_number ? "a number" : "a string";
  std::vector<std::string> args;
  if (opt->get_expected_max() == 0) {  // a flag without a value: add_flag
    auto b = value.value_exact<bool>();
    if (!b) fail(path, line, key, "expected true or false");
    args.emplace_back(*b ? "true" : "false");
  } else if (opt->get_expected_max() > 1) {  // repeatable: the array replaces the default list
    const toml::array* items = value.as_array();
    if (items == nullptr) fail(path, line, key, std::string("expected an array of ") + (is_number ? "numbers" : "strings"));
    for (const toml::node& item : *items) {
      std::string text;
      if (!scalar_text(item, is_number, text)) fail(path, line_of(item), key, std::string("expected ") + expected);
      args.push_back(std::move(text));
    }
    if (args.empty()) return;  // an empty list: the default (for index, none)
  } else {
    std::string text;
    if (!scalar_text(value, is_number, text)) fail(path, line, key, std::string("expected ") + expected);
    args.push_back(std::move(text));
  }
  try {
    opt->add_result(std::move(args));
    opt->run_callback();
  } catch (const CLI::Error& e) {
    fail(path, line, key, e.what());
  }
}

// A host name of `hosts`: RFC 9110 §7.2's uri-host without port, a reg-name (letters, digits, "-._~") or an IPv6
// literal in brackets.
[[nodiscard]] bool is_host_name(std::string_view h) noexcept {
  if (h.empty()) return false;
  if (h.front() == '[') return h.size() > 2 && h.back() == ']' && h.find_first_not_of("0123456789abcdefABCDEF:.", 1) == h.size() - 1;
  for (char c : h) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == '_' || c == '~';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

bool is_command_only_option(std::string_view long_name) noexcept {
  for (std::string_view name : kCommandOnly)
    if (name == long_name) return true;
  return false;
}

struct ConfigFile::Document {
  toml::table table;
};

ConfigFile::ConfigFile(std::string path) : path_(std::move(path)), doc_(std::make_unique<Document>()) {
  try {
    doc_->table = toml::parse_file(path_);
  } catch (const toml::parse_error& e) {
    // toml++ reports an unreadable file the same way, with no position.
    const auto line = e.source().begin.line;
    throw ConfigError(path_ + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " +
                      std::string(e.description()));
  }
}

ConfigFile::~ConfigFile() = default;
ConfigFile::ConfigFile(ConfigFile&&) noexcept = default;
ConfigFile& ConfigFile::operator=(ConfigFile&&) noexcept = default;

void ConfigFile::apply_top_level(CLI::App& app) const {
  for (const auto& [key, value] : doc_->table) {
    if (key.str() == "site") continue;
    apply_key(path_, app, std::string(key.str()), value, false);
  }
}

std::size_t ConfigFile::site_count() const {
  const toml::node* sites = doc_->table.get("site");
  if (sites == nullptr) return 0;
  if (!sites->is_array_of_tables())
    fail(path_, line_of(*sites), "site", "expected [[site]] tables (an array of tables)");
  return sites->as_array()->size();
}

std::vector<std::string> ConfigFile::apply_site(std::size_t index, CLI::App& app, int& line) const {
  const toml::array* sites = doc_->table["site"].as_array();
  const toml::table* table = sites != nullptr && index < sites->size() ? (*sites)[index].as_table() : nullptr;
  assert(table != nullptr);  // site_count() checked that `site` is an array of tables
  if (table == nullptr) return {};
  const toml::table& site = *table;
  line = line_of(site);
  std::vector<std::string> hosts;
  const toml::node* hosts_node = site.get("hosts");
  if (hosts_node == nullptr) fail(path_, line, "[[site]]", "needs hosts = [\"NAME\", ...]");
  const toml::array* items = hosts_node->as_array();
  if (items == nullptr || items->empty()) fail(path_, line_of(*hosts_node), "hosts", "expected a non-empty array of host names");
  for (const toml::node& item : *items) {
    auto name = item.value_exact<std::string>();
    // Stored as the lookup key the requests' Host and the TLS clients' SNI names are turned into (request_host(),
    // TlsContexts), so that "Example.ORG." is found as "example.org"; "." alone names no host.
    std::string key = name && is_host_name(*name) ? net::host_name_key(*name) : std::string();
    if (key.empty()) fail(path_, line_of(item), "hosts", "expected a host name without port (e.g. \"example.org\")");
    hosts.push_back(std::move(key));
  }
  for (const auto& [key, value] : site) {
    if (key.str() == "hosts") continue;
    apply_key(path_, app, std::string(key.str()), value, true);
  }
  return hosts;
}

}  // namespace spawnd::server
