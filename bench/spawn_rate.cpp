// bench/spawn_rate.cpp — posix_spawn + read + wait loops (bench/spawn_rate.h).
#include "bench/spawn_rate.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace spawnd::bench {

std::vector<std::string> cgi_environment(const std::string& program, const std::string& script_name,
                                         const std::string& method, const std::string& content_type,
                                         size_t content_length, const std::vector<std::string>& extra) {
  std::vector<std::string> env = {
      "GATEWAY_INTERFACE=CGI/1.1", "SERVER_PROTOCOL=HTTP/1.1", "SERVER_SOFTWARE=spawnd",
      "SERVER_NAME=127.0.0.1",     "SERVER_PORT=8080",         "SERVER_ADDR=127.0.0.1",
      "REQUEST_METHOD=" + method,  "QUERY_STRING=",            "REQUEST_URI=" + script_name,
      "SCRIPT_NAME=" + script_name, "SCRIPT_FILENAME=" + program, "PATH_INFO=",
      "REMOTE_ADDR=127.0.0.1",     "REMOTE_PORT=40000",        "REDIRECT_STATUS=200",
      "HTTP_HOST=127.0.0.1:8080",  "HTTP_USER_AGENT=wrk",      "PATH=/usr/local/bin:/usr/bin:/bin"};
  if (!content_type.empty()) {
    env.push_back("CONTENT_TYPE=" + content_type);
    env.push_back("CONTENT_LENGTH=" + std::to_string(content_length));
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

namespace {

// One spawn + read + wait. Returns 0 on a run that exited 0, else an errno-like code (> 0) or -1 for a bad exit.
int run_once(const SpawnRateSpec& spec, char* const* argv, char* const* envp) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return errno;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, spec.stdin_path.empty() ? "/dev/null" : spec.stdin_path.c_str(),
                                   O_RDONLY, 0);
  pid_t pid = 0;
  // posix_spawn returns its error number rather than setting errno.
  int rc = posix_spawn(&pid, spec.program.c_str(), &fa, nullptr, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    return rc;
  }
  char buf[65536];
  while (true) {
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n > 0 || (n < 0 && errno == EINTR)) continue;
    break;
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

}  // namespace

SpawnRate measure_spawn_rate(const SpawnRateSpec& spec, bool (*stop_early)()) {
  std::vector<std::string> env = spec.env;
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string program = spec.program;
  std::vector<char*> argv{program.data(), nullptr};

  // One run up front: a program that cannot start at all is a configuration error, not a rate of zero.
  if (int rc = run_once(spec, argv.data(), envp.data()); rc > 0)
    throw std::runtime_error("cannot spawn " + spec.program + ": " + std::strerror(rc));

  std::atomic<bool> stop{false};
  std::atomic<long> total{0}, failures{0};
  auto loop = [&] {
    long ok = 0, bad = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      if (run_once(spec, argv.data(), envp.data()) == 0) ++ok; else ++bad;
    }
    total += ok;
    failures += bad;
  };
  const auto t0 = std::chrono::steady_clock::now();
  const auto deadline = t0 + std::chrono::duration<double>(spec.seconds);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < spec.parallel; ++i) threads.emplace_back(loop);
  while (std::chrono::steady_clock::now() < deadline && !(stop_early && stop_early()))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop = true;
  for (auto& t : threads) t.join();
  SpawnRate r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.spawns = total.load();
  r.failures = failures.load();
  r.parallel = spec.parallel;
  r.spawns_per_second = static_cast<double>(r.spawns) / r.seconds;
  return r;
}

}  // namespace spawnd::bench
