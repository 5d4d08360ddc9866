#include "daemon.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "common/fd.h"

extern char** environ;

namespace spawnd::e2e {

namespace fs = std::filesystem;

void require_executable(const std::string& path, const char* package) {
  INFO(path << " is missing or not executable: install the Debian package '" << package
            << "' (scripts/install-deps.sh installs it); the FastCGI interop tests need it");
  REQUIRE(::access(path.c_str(), X_OK) == 0);
}

Daemon::Daemon(std::vector<std::string> argv, const std::string& log_path) : name_(argv.at(0)) {
  std::vector<char*> av;
  for (auto& s : argv) av.push_back(s.data());
  av.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  init_shell_like_spawnattr(attr, true);
  const int rc = ::posix_spawnp(&pid_, av[0], &fa, &attr, av.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("posix_spawn " + name_ + ": " + std::strerror(rc));
}

Daemon::~Daemon() {
  if (pid_ <= 0) return;
  ::kill(-pid_, SIGTERM);
  int status = 0;
  const bool has_exited =
      wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, std::chrono::milliseconds(3000));
  ::kill(-pid_, SIGKILL);  // what is left of the group: stragglers of a clean exit, or all of a hung one
  if (!has_exited) ::waitpid(pid_, &status, 0);
}

bool Daemon::is_running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    ::kill(-pid_, SIGKILL);
    pid_ = -1;
    status_ = status;
    return false;
  }
  return true;
}

bool accepts_connections(const std::string& path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path.c_str());
  return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof sun) == 0;
}

void wait_listening(Daemon& daemon, const std::string& path, const std::vector<std::string>& log_paths, bool probe) {
  bool has_died = false;
  const bool is_up = wait_until(
      [&] {
        if (!daemon.is_running()) {
          has_died = true;
          return true;
        }
        return probe ? accepts_connections(path) : fs::exists(path);
      },
      kDaemonStartTimeout);
  std::string logs;
  for (const auto& log_path : log_paths) logs += log_path + ":\n" + read_file(log_path) + "\n";
  INFO("the application's logs:\n" << logs);
  REQUIRE_FALSE(has_died);
  REQUIRE(is_up);
}

std::string find_php_fpm() {
  std::string best;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/sbin", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("php-fpm") && ::access(entry.path().c_str(), X_OK) == 0 && entry.path().string() > best)
      best = entry.path().string();
  }
  return best;
}

PhpFpm::PhpFpm(const TempDir& dir, int children, const std::string& pool_lines, const std::string& php_ini)
    : sock(dir.path() + "/fpm.sock"), log(dir.path() + "/fpm.out"), error_log(dir.path() + "/fpm-error.log") {
  const std::string binary = find_php_fpm();
  INFO("no /usr/sbin/php-fpm*: install the Debian package 'php-fpm' (scripts/install-deps.sh installs it)");
  REQUIRE_FALSE(binary.empty());
  const bool is_root = ::geteuid() == 0;
  std::string conf = "[global]\npid = " + dir.path() + "/fpm.pid\nerror_log = " + error_log +
                     "\ndaemonize = no\n\n[www]\nlisten = " + sock + "\npm = static\npm.max_children = " +
                     std::to_string(children) + "\nclear_env = no\ncatch_workers_output = yes\n" + pool_lines + "\n";
  if (is_root) conf += "user = root\n";
  const std::string conf_path = dir.write("php-fpm.conf", conf);
  std::vector<std::string> argv{binary};
  if (php_ini.empty()) {
    argv.emplace_back("-n");
  } else {
    argv.emplace_back("-c");
    argv.push_back(php_ini);
  }
  for (const char* arg : {"-y", "", "-F"}) argv.emplace_back(*arg ? arg : conf_path.c_str());
  if (is_root) argv.emplace_back("-R");
  daemon = std::make_unique<Daemon>(argv, log);
  wait_listening(*daemon, sock, {log, error_log});
}

}  // namespace spawnd::e2e
