// The rules of persistent handler processes (server/gateway/supervisor.h): the restart back-off, the handler
// version that decides a reload, and SupervisedProcess applying them to real child processes (/bin/sh) in a real
// EventLoop and ChildTable: restart at once then after the back-off, recycle without back-off, terminate and kill
// with it, retire for good, a failed start retried, the version a process runs, and destruction stopping it.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "server/event_loop.h"
#include "server/gateway/process.h"
#include "server/gateway/supervisor.h"

using spawnd::Fd;
using spawnd::Result;
using spawnd::server::ChildProcess;
using spawnd::server::ChildTable;
using spawnd::server::EventLoop;
using spawnd::server::HandlerVersion;
using spawnd::server::RestartBackoff;
using spawnd::server::SpawnSpec;
using spawnd::server::SupervisedProcess;
using spawnd::server::Supervisor;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// A handler file for the group's version, in a directory of its own, removed at the end.
struct HandlerFile {
  fs::path dir = fs::temp_directory_path() / ("spawnd-supervised-" + std::to_string(::getpid()));
  std::string path = (dir / "handler").string();
  HandlerFile() {
    fs::create_directories(dir);
    std::ofstream(path) << "version 1";
  }
  ~HandlerFile() { fs::remove_all(dir); }
  void replace(const std::string& text) const {
    std::ofstream((dir / ".new").string()) << text;
    fs::rename(dir / ".new", path);
  }
};

// A SupervisedProcess running `/bin/sh -c script` and recording what happens to it.
struct Recorder {
  Fd dev_null{::open("/dev/null", O_RDWR | O_CLOEXEC)};
  std::string script;
  int spawn_failures_left = 0;  // the next spawns fail with EMFILE
  int spawns = 0;
  std::vector<pid_t> started;
  std::vector<int> exits;  // wait statuses
  std::vector<Clock::time_point> started_at, exited_at;

  SupervisedProcess::Hooks hooks() {
    SupervisedProcess::Hooks h;
    h.spawn = [this]() -> Result<ChildProcess> {
      ++spawns;
      if (spawn_failures_left > 0) {
        --spawn_failures_left;
        return spawnd::errno_code(EMFILE);
      }
      SpawnSpec spec;
      spec.path = "/bin/sh";
      spec.argv = {"/bin/sh", "-c", script};
      spec.envp = {"PATH=/usr/bin:/bin"};
      spec.stdin_fd = spec.stdout_fd = spec.stderr_fd = dev_null.get();
      return spawnd::server::spawn_process(spec);
    };
    h.on_started = [this](pid_t pid) {
      started.push_back(pid);
      started_at.push_back(Clock::now());
    };
    h.on_exited = [this](int status) {
      exits.push_back(status);
      exited_at.push_back(Clock::now());
    };
    return h;
  }
};

// Runs the loop until `done()` holds, for at most 10 s; false on the time limit.
bool run_until(EventLoop& loop, const std::function<bool()>& done) {
  bool timed_out = false;
  EventLoop::TimerId guard = loop.add_timer(10'000, [&] {
    timed_out = true;
    loop.stop();
  });
  EventLoop::TimerId poll = 0;
  std::function<void()> check = [&] {
    if (done()) {
      loop.stop();
      return;
    }
    poll = loop.add_timer(2, check);
  };
  poll = loop.add_timer(0, check);
  loop.run();
  loop.cancel(guard);
  loop.cancel(poll);
  return !timed_out;
}

// Runs the loop for `ms` milliseconds.
void run_for(EventLoop& loop, std::int64_t ms) {
  EventLoop::TimerId stop = loop.add_timer(ms, [&loop] { loop.stop(); });
  loop.run();
  loop.cancel(stop);
}

std::int64_t ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

bool is_alive(pid_t pid) { return ::kill(pid, 0) == 0; }

// What every SupervisedProcess test needs: a handler file, a loop, the ChildTable, one Supervisor and a Recorder.
struct SupervisedFixture {
  HandlerFile file;
  EventLoop loop;
  ChildTable children{loop};
  Supervisor group{loop, children, "test", file.path};
  Recorder rec;
};

}  // namespace

TEST_CASE("supervisor: a restart is at once the first time, then backs off from 100 ms to 10 s", "[unit][supervisor]") {
  RestartBackoff backoff;
  std::vector<std::int64_t> delays;
  for (int i = 0; i < 12; ++i) delays.push_back(backoff.next_delay_ms());
  CHECK(delays == std::vector<std::int64_t>{0, 100, 200, 400, 800, 1600, 3200, 6400, 10'000, 10'000, 10'000, 10'000});
  CHECK(backoff.failures() == 12);
  for (int i = 0; i < 1000; ++i) (void)backoff.next_delay_ms();  // no overflow however long it keeps failing
  CHECK(backoff.next_delay_ms() == 10'000);
  backoff.reset();  // it proved healthy
  CHECK(backoff.next_delay_ms() == 0);
  CHECK(backoff.next_delay_ms() == 100);
}

TEST_CASE("supervisor: a handler's version changes when it is replaced or rewritten, not when it is only read",
          "[unit][supervisor]") {
  const fs::path dir = fs::temp_directory_path() / ("spawnd-supervisor-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "app").string();
  std::ofstream(path) << "version 1";
  const auto v1 = HandlerVersion::of(path);
  REQUIRE(v1);
  CHECK(HandlerVersion::of(path) == v1);  // stable while nothing changes

  // Replaced by rename (a deploy): a new inode.
  std::ofstream((dir / ".app.new").string()) << "version 2";
  fs::rename(dir / ".app.new", path);
  const auto v2 = HandlerVersion::of(path);
  REQUIRE(v2);
  CHECK_FALSE(*v2 == *v1);

  // Rewritten in place with the same size: the modification time tells.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::ofstream(path, std::ios::trunc) << "version 3";
  const auto v3 = HandlerVersion::of(path);
  REQUIRE(v3);
  CHECK_FALSE(*v3 == *v2);

  fs::remove(path);
  CHECK_FALSE(HandlerVersion::of(path).has_value());
  fs::remove_all(dir);
}

TEST_CASE_METHOD(SupervisedFixture,
                 "supervisor: a process that keeps ending is restarted at once, then after 100 ms, then 200 ms",
                 "[unit][supervisor]") {
  rec.script = "exit 3";
  SupervisedProcess process(group, "worker", rec.hooks());
  process.start();
  REQUIRE(rec.started.size() == 1);
  CHECK(process.pid() == rec.started[0]);
  CHECK(process.is_running());
  REQUIRE(run_until(loop, [&] { return rec.started.size() == 4; }));
  REQUIRE(rec.exits.size() >= 3);
  CHECK(WIFEXITED(rec.exits[0]));
  CHECK(WEXITSTATUS(rec.exits[0]) == 3);
  // Each restart waits the back-off after the exit before it: 0, 100, 200 ms (a loaded machine only adds).
  CHECK(ms_between(rec.exited_at[0], rec.started_at[1]) < 100);
  CHECK(ms_between(rec.exited_at[1], rec.started_at[2]) >= 95);
  CHECK(ms_between(rec.exited_at[2], rec.started_at[3]) >= 195);
}

TEST_CASE_METHOD(SupervisedFixture,
                 "supervisor: healthy() resets the back-off, and a recycled process restarts at once without counting",
                 "[unit][supervisor]") {
  rec.script = "exec sleep 30";
  SupervisedProcess process(group, "worker", rec.hooks());
  process.start();
  REQUIRE(rec.started.size() == 1);
  // Four recycles in a row: each is restarted at once (no back-off builds up), after SIGTERM.
  for (std::size_t i = 1; i <= 4; ++i) {
    process.recycle();
    REQUIRE(run_until(loop, [&] { return rec.started.size() == i + 1; }));
    CHECK(WIFSIGNALED(rec.exits[i - 1]));
    CHECK(WTERMSIG(rec.exits[i - 1]) == SIGTERM);
    CHECK(ms_between(rec.exited_at[i - 1], rec.started_at[i]) < 100);
    CHECK_FALSE(is_alive(rec.started[i - 1]));
  }
  // terminate() counts: the first failure restarts at once, the second after 100 ms...
  process.terminate();
  REQUIRE(run_until(loop, [&] { return rec.started.size() == 6; }));
  CHECK(ms_between(rec.exited_at[4], rec.started_at[5]) < 100);
  process.kill();  // ... and kill() (SIGKILL at once) too
  REQUIRE(run_until(loop, [&] { return rec.started.size() == 7; }));
  CHECK(WTERMSIG(rec.exits[5]) == SIGKILL);
  CHECK(ms_between(rec.exited_at[5], rec.started_at[6]) >= 95);
  // ... until the process proves healthy.
  group.healthy();
  process.kill();
  REQUIRE(run_until(loop, [&] { return rec.started.size() == 8; }));
  CHECK(ms_between(rec.exited_at[6], rec.started_at[7]) < 100);
}

TEST_CASE_METHOD(SupervisedFixture,
                 "supervisor: a retired process is killed at once, never restarted, and no hook runs for it",
                 "[unit][supervisor]") {
  rec.script = "trap '' TERM; while :; do sleep 1; done";  // would outlive a SIGTERM
  SupervisedProcess process(group, "fork server", rec.hooks());
  process.start();
  REQUIRE(rec.started.size() == 1);
  const pid_t pid = rec.started[0];
  process.retire();
  CHECK_FALSE(process.is_running());
  CHECK(process.pid() == -1);
  REQUIRE(run_until(loop, [&] { return children.size() == 0; }));  // reaped by the table
  CHECK_FALSE(is_alive(pid));
  // Nothing more: no exit hook, no restart, and start() is refused for good.
  run_for(loop, 300);
  CHECK(rec.exits.empty());
  CHECK(rec.started.size() == 1);
  process.start();
  CHECK(rec.spawns == 1);
}

TEST_CASE_METHOD(SupervisedFixture,
                 "supervisor: a start that fails is retried after the back-off", "[unit][supervisor]") {
  rec.script = "exec sleep 30";
  rec.spawn_failures_left = 2;
  SupervisedProcess process(group, "worker", rec.hooks());
  const auto t0 = Clock::now();
  process.start();
  CHECK_FALSE(process.is_running());
  CHECK(rec.started.empty());
  REQUIRE(run_until(loop, [&] { return !rec.started.empty(); }));
  CHECK(rec.spawns == 3);  // at once, then after 0 ms, then after 100 ms
  CHECK(ms_between(t0, rec.started_at[0]) >= 95);
  CHECK(process.is_running());
}

TEST_CASE_METHOD(SupervisedFixture,
                 "supervisor: a replaced handler makes running processes stale until they restart from the new version",
                 "[unit][supervisor]") {
  rec.script = "exec sleep 30";
  SupervisedProcess process(group, "worker", rec.hooks());
  process.start();
  REQUIRE(process.is_running());
  CHECK(process.is_current());
  CHECK_FALSE(group.check_replaced());  // nothing changed

  file.replace("version 2");
  CHECK(group.check_replaced());
  CHECK_FALSE(group.check_replaced());  // reported once
  CHECK(group.version() == *HandlerVersion::of(file.path));
  CHECK_FALSE(process.is_current());
  process.recycle();
  REQUIRE(run_until(loop, [&] { return rec.started.size() == 2; }));
  CHECK(process.is_current());
  CHECK(process.version() == group.version());

  // A handler removed keeps its version (its processes serve on until it is back).
  fs::remove(file.path);
  CHECK_FALSE(group.check_replaced());
  CHECK(process.is_current());
}

TEST_CASE_METHOD(SupervisedFixture,
                 "supervisor: destroying a SupervisedProcess stops its process and cancels a pending restart",
                 "[unit][supervisor]") {
  rec.script = "exec sleep 30";
  pid_t pid = -1;
  {
    SupervisedProcess process(group, "worker", rec.hooks());
    process.start();
    REQUIRE(process.is_running());
    pid = process.pid();
  }
  REQUIRE(run_until(loop, [&] { return children.size() == 0; }));
  CHECK_FALSE(is_alive(pid));
  CHECK(rec.exits.empty());  // no hook after destruction

  // A process that ended and waits for its restart (the second failure: 100 ms) is not restarted once destroyed.
  Recorder rec2;
  rec2.script = "exit 1";
  {
    SupervisedProcess process(group, "worker", rec2.hooks());
    process.start();
    REQUIRE(run_until(loop, [&] { return rec2.exits.size() == 2; }));
  }
  const std::size_t starts = rec2.started.size();
  run_for(loop, 300);  // past the 100 ms restart it was waiting for
  CHECK(rec2.started.size() == starts);
}
