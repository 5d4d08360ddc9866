// tests/unit/handler_process.h — running the built handler executables as real processes, for the [cgi-child]
// tests: a temporary site (database + PRAGMA preset), the meta-variables a server would pass, the CGI response
// parsed, and the child's stdio pumped. Used by test_sdk_handlers_cgi.cpp (plain CGI) and test_sdk_fork_server.cpp
// (the same handlers as fork servers, whose output must be byte-for-byte the CGI output).
#pragma once

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#ifndef SPAWND_CGI_BIN_DIR
#error "SPAWND_CGI_BIN_DIR must name the directory of the built handler executables"
#endif

namespace spawnd::test {

// The "Pid:" line of /proc/self/fdinfo/<fd>, which a pidfd has: the pid of its process (-1 once it has been reaped).
inline std::string pidfd_target(int fd) {
  std::ifstream in("/proc/self/fdinfo/" + std::to_string(fd));
  for (std::string line; std::getline(in, line);)
    if (line.rfind("Pid:", 0) == 0) return line.substr(line.find_first_not_of(" \t", 4));
  return {};
}

struct CgiResult {
  int exit_code = -1;
  std::string stdout_bytes;
  std::string stderr_bytes;
  // Parsed from stdout:
  int status = 0;
  std::multimap<std::string, std::string> headers;  // names lower-cased
  std::string body;
  bool has_blank_line = false;

  [[nodiscard]] std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

inline std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

inline void parse_cgi_output(CgiResult& r) {
  const std::string& out = r.stdout_bytes;
  size_t end = out.find("\r\n\r\n");
  if (end == std::string::npos) return;
  r.has_blank_line = true;
  r.body = out.substr(end + 4);
  size_t pos = 0;
  while (pos < end) {
    size_t eol = out.find("\r\n", pos);
    std::string line = out.substr(pos, eol - pos);
    pos = eol + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = lower(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (name == "status") r.status = std::atoi(value.c_str());
    r.headers.emplace(name, value);
  }
}

// The whole file, or "" if it cannot be opened.
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline std::string handler_path(const std::string& name) { return std::string(SPAWND_CGI_BIN_DIR) + "/" + name; }

// Feeds `body` to `in_fd` and drains `out_fd` and `err_fd` into `r` together, so that no pipe fills up and stalls
// the child, until both outputs reach EOF. Takes ownership of the three fds (our ends of the child's pipes).
inline void pump_child_io(const std::string& what, int in_fd, int out_fd, int err_fd, const std::string& body,
                          CgiResult& r) {
  // A child may exit without reading all of `body` (a refused body, a body longer than CONTENT_LENGTH): that is
  // EPIPE below, not a SIGPIPE that ends the test runner.
  struct IgnoreSigpipe {
    struct sigaction old {};
    IgnoreSigpipe() {
      struct sigaction ign {};
      ign.sa_handler = SIG_IGN;
      sigemptyset(&ign.sa_mask);
      sigaction(SIGPIPE, &ign, &old);
    }
    ~IgnoreSigpipe() { sigaction(SIGPIPE, &old, nullptr); }
    IgnoreSigpipe(const IgnoreSigpipe&) = delete;
    IgnoreSigpipe& operator=(const IgnoreSigpipe&) = delete;
  } ignore_sigpipe;
  size_t written = 0;
  if (body.empty()) {
    close(in_fd);
    in_fd = -1;
  } else {
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  int open_outputs = 2;
  pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {in_fd, POLLOUT, 0}};
  while (open_outputs > 0) {
    int n = poll(fds, in_fd >= 0 ? 3 : 2, 10'000);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      for (pollfd& p : fds)
        if (p.fd >= 0) close(p.fd);
      FAIL(what << " made no progress for 10 s (or poll failed)");
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[65536];
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        (i == 0 ? r.stdout_bytes : r.stderr_bytes).append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_outputs;
      }
    }
    if (in_fd >= 0 && fds[2].revents != 0) {
      ssize_t w = write(in_fd, body.data() + written, body.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) written = body.size();  // EPIPE: the child did not read it
      if (written == body.size()) {
        close(in_fd);
        in_fd = -1;
        fds[2].fd = -1;
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
}

// The exit code as a shell shows it: the status of a normal exit, 128 + the signal of a killed process.
inline int exit_code_of(int wstatus) {
  return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}

// "NAME=value" strings from a map, and the NULL-terminated array of pointers into them that execve wants.
struct EnvStrings {
  explicit EnvStrings(const std::map<std::string, std::string>& env) {
    for (const auto& [k, v] : env) strings.push_back(k + "=" + v);
    for (std::string& s : strings) pointers.push_back(s.data());
    pointers.push_back(nullptr);
  }
  std::vector<std::string> strings;
  std::vector<char*> pointers;
};

// Runs cgi-bin/<name> with exactly `env` as its environment and `body` on stdin.
inline CgiResult run_cgi(const std::string& name, const std::map<std::string, std::string>& env,
                         const std::string& body = {}) {
  const std::string path = handler_path(name);
  EnvStrings envp(env);
  std::string argv0 = path;
  char* argv[] = {argv0.data(), nullptr};

  int in[2], out[2], err[2];
  REQUIRE(pipe2(in, O_CLOEXEC) == 0);
  REQUIRE(pipe2(out, O_CLOEXEC) == 0);
  REQUIRE(pipe2(err, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &fa, nullptr, argv, envp.pointers.data());
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  INFO("spawning " << path);
  if (rc != 0) {
    close(in[1]);
    close(out[0]);
    close(err[0]);
  }
  REQUIRE(rc == 0);

  CgiResult r;
  pump_child_io("cgi-bin/" + name, in[1], out[0], err[0], body, r);
  int wstatus = 0;
  REQUIRE(waitpid(pid, &wstatus, 0) == pid);
  r.exit_code = exit_code_of(wstatus);
  parse_cgi_output(r);
  return r;
}

// A fresh directory with the database and a PRAGMA preset whose busy_timeout is short, removed afterwards.
class TempSite {
 public:
  TempSite() {
    char tmpl[] = "/tmp/spawnd-sdk-test-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    std::ofstream(pragmas_path()) << "-- test preset: WAL, and give up on a lock quickly\n"
                                     "-- @on-create\n"
                                     "PRAGMA journal_mode = WAL;\n"
                                     "-- @per-connection\n"
                                     "PRAGMA synchronous = NORMAL;\n"
                                     "PRAGMA busy_timeout = 40;\n";
  }
  ~TempSite() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempSite(const TempSite&) = delete;
  TempSite& operator=(const TempSite&) = delete;

  [[nodiscard]] const std::string& dir() const { return dir_; }
  [[nodiscard]] std::string db_path() const { return dir_ + "/site.db"; }
  [[nodiscard]] std::string pragmas_path() const { return dir_ + "/fast-busy.sql"; }

  // The meta-variables a server would pass for `method` on /cgi-bin/<name><path_info>?<query>.
  [[nodiscard]] std::map<std::string, std::string> env(const std::string& name, const std::string& method,
                                                       const std::string& path_info = {},
                                                       const std::string& query = {}) const {
    return {{"GATEWAY_INTERFACE", "CGI/1.1"},
            {"SERVER_PROTOCOL", "HTTP/1.1"},
            {"SERVER_SOFTWARE", "spawnd-test"},
            {"SERVER_NAME", "localhost"},
            {"SERVER_PORT", "8080"},
            {"REMOTE_ADDR", "127.0.0.1"},
            {"REQUEST_METHOD", method},
            {"SCRIPT_NAME", "/cgi-bin/" + name},
            {"PATH_INFO", path_info},
            {"QUERY_STRING", query},
            {"SPAWND_DB", db_path()},
            {"SPAWND_PRAGMAS", pragmas_path()}};
  }

  // env() plus a body: CONTENT_LENGTH and CONTENT_TYPE.
  [[nodiscard]] std::map<std::string, std::string> env_with_body(const std::string& name, const std::string& method,
                                                                 const std::string& content_type,
                                                                 const std::string& body,
                                                                 const std::string& path_info = {}) const {
    auto e = env(name, method, path_info);
    e["CONTENT_TYPE"] = content_type;
    e["CONTENT_LENGTH"] = std::to_string(body.size());
    return e;
  }

 private:
  std::string dir_;
};

}  // namespace spawnd::test
