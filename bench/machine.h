// bench/machine.h — a description of the machine a benchmark ran on, for results.json and the table's header.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace spawnd::bench {

struct Machine {
  std::string cpu_model;     // /proc/cpuinfo "model name"
  unsigned cores = 0;        // online CPUs
  std::string kernel;        // uname -r
  std::string os;            // /etc/os-release PRETTY_NAME
  long long memory_mib = 0;  // MemTotal
  std::map<std::string, std::string> versions;  // tool -> version line: wrk, nginx, lighttpd, apache2, ...

  // "AMD EPYC, 2 cores, Linux 6.1.0, Debian GNU/Linux 12 (bookworm), 3.9 GiB"
  [[nodiscard]] std::string one_line() const;
  [[nodiscard]] nlohmann::json to_json() const;
};

// Reads the machine's description; versions are looked up for the tools that are installed (`with_peers` adds the
// peer servers). `spawnd` is the executable measured: its version is `git describe` of the tree it was built in,
// when there is one.
[[nodiscard]] Machine describe_machine(bool with_peers, const std::string& spawnd);

// The file system type under `path` ("tmpfs", "ext4", "xfs", "btrfs", "overlay", or the magic number in hex).
[[nodiscard]] std::string filesystem_type(const std::string& path);

}  // namespace spawnd::bench
