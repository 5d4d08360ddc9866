// bench/machine.cpp — CPU, kernel, OS and tool versions (bench/machine.h).
#include "bench/machine.h"

#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <vector>

#include "bench/process.h"

namespace spawnd::bench {

namespace {

// The value of the first "key<sep>value" line of `file` whose key is `key`, trimmed of quotes and blanks.
std::string field_of(const char* file, const std::string& key, char sep) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    size_t at = line.find(sep);
    if (at == std::string::npos) continue;
    std::string k = line.substr(0, at);
    while (!k.empty() && (k.back() == ' ' || k.back() == '\t')) k.pop_back();
    if (k != key) continue;
    std::string v = line.substr(at + 1);
    size_t b = v.find_first_not_of(" \t\"");
    size_t e = v.find_last_not_of(" \t\"");
    return b == std::string::npos ? "" : v.substr(b, e - b + 1);
  }
  return {};
}

// The first line of a command's output (stdout, or stderr folded in by `sh -c '... 2>&1'` for tools that print
// their version there).
std::optional<std::string> first_line(const std::string& shell_command) {
  auto out = run_capture({"/bin/sh", "-c", shell_command + " 2>&1 || true"});
  if (!out || out->empty()) return std::nullopt;
  return out->substr(0, out->find('\n'));
}

}  // namespace

std::string Machine::one_line() const {
  char mem[32];
  std::snprintf(mem, sizeof mem, "%.1f GiB", static_cast<double>(memory_mib) / 1024.0);
  return cpu_model + ", " + std::to_string(cores) + " cores, Linux " + kernel + ", " + os + ", " + mem;
}

nlohmann::json Machine::to_json() const {
  return {{"cpu_model", cpu_model}, {"cores", cores},           {"kernel", kernel},
          {"os", os},               {"memory_mib", memory_mib}, {"versions", versions}};
}

Machine describe_machine(bool with_peers, const std::string& spawnd) {
  Machine m;
  m.cpu_model = field_of("/proc/cpuinfo", "model name", ':');
  m.cores = static_cast<unsigned>(sysconf(_SC_NPROCESSORS_ONLN));
  utsname u{};
  if (uname(&u) == 0) m.kernel = u.release;
  m.os = field_of("/etc/os-release", "PRETTY_NAME", '=');
  std::string mem = field_of("/proc/meminfo", "MemTotal", ':');
  m.memory_mib = std::atoll(mem.c_str()) / 1024;

  const std::string build_dir = spawnd.substr(0, spawnd.rfind('/'));
  if (auto rev = run_capture({"git", "-C", build_dir, "describe", "--always", "--dirty"}))
    m.versions["spawnd"] = "git " + rev->substr(0, rev->find('\n'));
  std::vector<std::pair<std::string, std::string>> tools = {{"wrk", "wrk -v"}, {"sqlite", "sqlite3 --version"}};
  if (with_peers) {
    tools.insert(tools.end(), {{"nginx", "nginx -v"},
                               {"lighttpd", "lighttpd -v"},
                               {"apache2", "apache2 -v"},
                               {"fcgiwrap", "dpkg-query -W -f='${Version}' fcgiwrap"}});
  }
  for (const auto& [name, command] : tools) {
    std::string exe = find_executable(command.substr(0, command.find(' ')));
    if (exe.empty()) continue;
    if (auto v = first_line(command)) m.versions[name] = *v;
  }
  return m;
}

std::string filesystem_type(const std::string& path) {
  struct statfs s {};
  if (statfs(path.c_str(), &s) != 0) return "unknown";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0x01021994: return "tmpfs";
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794c7630: return "overlay";
    default: {
      char hex[32];
      std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(s.f_type));
      return hex;
    }
  }
}

}  // namespace spawnd::bench
