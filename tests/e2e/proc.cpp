#include "proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string_view>
#include <system_error>

namespace spawnd::e2e {

namespace {

std::vector<ProcStat> processes_where(const std::function<bool(const ProcStat&)>& keep) {
  std::vector<ProcStat> out;
  for (const ProcStat& p : all_processes())
    if (keep(p)) out.push_back(p);
  return out;
}

}  // namespace

std::optional<ProcStat> proc_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(in, s)) return std::nullopt;
  auto paren = s.rfind(')');  // the command name may contain spaces and parentheses
  if (paren == std::string::npos) return std::nullopt;
  ProcStat st;
  st.pid = pid;
  long ppid = 0, pgid = 0;
  if (std::sscanf(s.c_str() + paren + 1, " %c %ld %ld", &st.state, &ppid, &pgid) != 3) return std::nullopt;
  st.ppid = static_cast<pid_t>(ppid);
  st.pgid = static_cast<pid_t>(pgid);
  return st;
}

std::vector<ProcStat> all_processes() {
  std::vector<ProcStat> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    if (auto st = proc_stat(static_cast<pid_t>(pid))) out.push_back(*st);
  }
  ::closedir(d);
  return out;
}

std::vector<ProcStat> children_of(pid_t parent) {
  return processes_where([&](const ProcStat& p) { return p.ppid == parent; });
}

std::vector<ProcStat> live_children_of(pid_t parent) {
  return processes_where([&](const ProcStat& p) { return p.ppid == parent && p.state != 'Z'; });
}

std::vector<ProcStat> zombie_children_of(pid_t parent) {
  return processes_where([&](const ProcStat& p) { return p.ppid == parent && p.state == 'Z'; });
}

std::vector<ProcStat> live_group_members(pid_t pgid) {
  return processes_where([&](const ProcStat& p) { return p.pgid == pgid && p.state != 'Z'; });
}

std::size_t fd_count(pid_t pid) {
  std::error_code ec;
  std::size_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end; !ec && it != end;
       it.increment(ec))
    ++n;
  return n;
}

std::vector<std::string> fd_targets(pid_t pid) {
  std::vector<std::string> targets;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code link_ec;  // an fd closed meanwhile: an empty entry
    targets.push_back(std::filesystem::read_symlink(it->path(), link_ec).string());
  }
  return targets;
}

std::string proc_file(pid_t pid, const char* name) {
  std::string out;
  const int fd = ::open(("/proc/" + std::to_string(pid) + "/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

pid_t thread_named(pid_t pid, const std::string& name) {
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    const std::string tid = task.path().filename().string();
    if (proc_file(pid, ("task/" + tid + "/comm").c_str()) == name + "\n") return static_cast<pid_t>(std::stol(tid));
  }
  return 0;
}

long voluntary_switches(pid_t pid, pid_t tid) {
  const std::string status = proc_file(pid, ("task/" + std::to_string(tid) + "/status").c_str());
  const std::string_view key = "voluntary_ctxt_switches:";
  const auto at = status.find(key);
  return at == std::string::npos ? -1 : std::stol(status.substr(at + key.size()));
}

long vm_rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

}  // namespace spawnd::e2e
