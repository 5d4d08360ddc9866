// bench/spawn_limit.cpp — the raw rate at which this machine can run a CGI program, without HTTP.
//
// Each of --parallel loops (default: one per online CPU) repeatedly posix_spawn()s the program with a CGI
// environment (the same meta-variables spawnd would give a GET request), reads all of its stdout through a pipe
// and waits for it. The sum of the loops' completions per second is the ceiling for any process-per-request
// server on this machine; spawnd's CGI mode is reported as a ratio to it.
//
//   spawn-limit --seconds 5 [--parallel N] [--env NAME=VALUE ...] PROGRAM
// Prints one line: "spawns_per_second=<float> spawns=<n> seconds=<float> parallel=<n> failures=<n>".
#include <CLI/CLI.hpp>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  double seconds = 5.0;
  unsigned parallel = std::thread::hardware_concurrency();
  std::string program;
  std::vector<std::string> extra_env;
  CLI::App app{"Raw posix_spawn + read + wait rate of a CGI program, no HTTP (the ceiling for CGI servers)"};
  app.add_option("--seconds", seconds, "How long to run")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--parallel", parallel, "Spawning loops (default: online CPUs)")->check(CLI::Range(1u, 256u));
  app.add_option("--env", extra_env, "Extra NAME=VALUE for the child's environment (repeatable)");
  app.add_option("program", program, "The CGI program")->required()->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> env_strings = {
      "GATEWAY_INTERFACE=CGI/1.1", "SERVER_PROTOCOL=HTTP/1.1",  "SERVER_SOFTWARE=spawnd/0.1.0",
      "SERVER_NAME=127.0.0.1",     "SERVER_PORT=8080",          "REQUEST_METHOD=GET",
      "QUERY_STRING=",             "REQUEST_URI=/cgi-bin/x",    "SCRIPT_NAME=/cgi-bin/x",
      "REMOTE_ADDR=127.0.0.1",     "REMOTE_PORT=40000",         "REDIRECT_STATUS=200",
      "HTTP_HOST=127.0.0.1:8080",  "HTTP_USER_AGENT=wrk",       "PATH=/usr/local/bin:/usr/bin:/bin"};
  env_strings.push_back("SCRIPT_FILENAME=" + program);
  for (auto& e : extra_env) env_strings.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> args{program.data(), nullptr};

  std::atomic<bool> stop{false};
  std::atomic<long> total{0}, failures{0};
  auto loop = [&] {
    char buf[65536];
    long n = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      int out[2];
      if (pipe2(out, O_CLOEXEC) != 0) {
        ++failures;
        continue;
      }
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_adddup2(&fa, out[1], 1);
      posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
      pid_t pid;
      int rc = posix_spawn(&pid, program.c_str(), &fa, nullptr, args.data(), envp.data());
      posix_spawn_file_actions_destroy(&fa);
      close(out[1]);
      if (rc != 0) {
        close(out[0]);
        ++failures;
        continue;
      }
      while (read(out[0], buf, sizeof buf) > 0) {
      }
      close(out[0]);
      int status = 0;
      waitpid(pid, &status, 0);
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ++n; else ++failures;
    }
    total += n;
  };
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < parallel; ++i) threads.emplace_back(loop);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("spawns_per_second=%.1f spawns=%ld seconds=%.2f parallel=%u failures=%ld\n",
              static_cast<double>(total.load()) / elapsed, total.load(), elapsed, parallel, failures.load());
  return failures.load() == 0 ? 0 : 1;
}
