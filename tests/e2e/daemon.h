// tests/e2e/daemon.h — the FastCGI applications end-to-end tests start themselves (php-fpm, fcgiwrap, scripted
// responders): a background program in a process group of its own, stopped however the test ends, and the waits
// for it to listen. php-fpm and fcgiwrap are test dependencies (scripts/install-deps.sh): a missing one fails the
// test, never skips it. Every wait is bounded.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "harness.h"

namespace spawnd::e2e {

inline constexpr std::chrono::milliseconds kDaemonStartTimeout{10'000};  // for an application's socket to appear

// Fails the test (never skips it) unless `path` is executable; the message names the Debian `package`.
void require_executable(const std::string& path, const char* package);

// A program the test runs in the background (a FastCGI application), in a process group of its own, with stdin from
// /dev/null and stdout and stderr appended to `log_path`. The destructor sends SIGTERM to the group, waits up to
// 3 s for the program to exit, then SIGKILLs the group, and reaps the program: nothing is left running, whatever
// path the test took.
class Daemon {
 public:
  Daemon(std::vector<std::string> argv, const std::string& log_path);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  // True while the program runs (it has not exited; an exit is reaped here).
  [[nodiscard]] bool is_running();
  // The wait status of the program's exit, once is_running() has seen it; -1 before.
  [[nodiscard]] int wait_status() const noexcept { return status_; }

 private:
  std::string name_;
  pid_t pid_ = -1;
  int status_ = -1;
};

// True once something accepts connections on unix socket `path`.
[[nodiscard]] bool accepts_connections(const std::string& path);

// Waits (bounded) for `daemon` to listen on `path` (probe: by connecting; else: the path exists); fails the test with
// its logs if it exits or never listens.
void wait_listening(Daemon& daemon, const std::string& path, const std::vector<std::string>& log_paths,
                    bool probe = true);

// The newest /usr/sbin/php-fpm* (php-fpm8.2 on Debian 12), or "" if there is none.
[[nodiscard]] std::string find_php_fpm();

// php-fpm with one pool of `children` static workers (pm = static) listening on <dir>/fpm.sock, its configuration,
// pid file and logs in `dir`. As root (the tests usually are) the workers run as root (-R). `pool_lines` are added to
// the pool section (e.g. "php_admin_value[auto_prepend_file] = ..."); `php_ini`, if not empty, is given with -c (its
// conf.d still loads the Debian extensions), else php-fpm runs with -n (no php.ini, built-in extensions only).
// Fails the test if php-fpm is missing or does not listen.
struct PhpFpm {
  PhpFpm(const TempDir& dir, int children, const std::string& pool_lines = "", const std::string& php_ini = "");
  std::string sock;
  std::string log;
  std::string error_log;
  std::unique_ptr<Daemon> daemon;
};

}  // namespace spawnd::e2e
