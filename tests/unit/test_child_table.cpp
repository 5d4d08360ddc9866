// tests/unit/test_child_table.cpp — spawn_process() and ChildTable (server/gateway/process.h) with real child
// processes: every spawn method hands back a pidfd for the very child it started; the table reports each exit with
// its wait status through that pidfd, signals a group, refuses a process it already watches, reports a process that
// is not our child with kUnknownStatus, and a spawn that cannot have its pidfd kills the child and fails with EMFILE.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

#include "common/fd.h"
#include "common/sys.h"
#include "server/event_loop.h"
#include "server/gateway/process.h"
#include "handler_process.h"

using spawnd::Fd;
using spawnd::test::pidfd_target;
using spawnd::server::ChildProcess;
using spawnd::server::ChildTable;
using spawnd::server::EventLoop;
using spawnd::server::SpawnMethod;
using spawnd::server::SpawnSpec;

namespace {

const char* method_name(SpawnMethod m) {
  switch (m) {
    case SpawnMethod::Vfork: return "vfork";
    case SpawnMethod::PosixSpawn: return "posix_spawn";
    case SpawnMethod::Fork: return "fork";
  }
  return "?";
}

// /bin/sh -c `script`, stdio on /dev/null.
struct ShellSpec {
  Fd dev_null{::open("/dev/null", O_RDWR | O_CLOEXEC)};
  SpawnSpec spec;
  ShellSpec(const std::string& script, SpawnMethod method) {
    REQUIRE(dev_null);
    spec.path = "/bin/sh";
    spec.argv = {"/bin/sh", "-c", script};
    spec.envp = {"PATH=/usr/bin:/bin"};
    spec.stdin_fd = spec.stdout_fd = spec.stderr_fd = dev_null.get();
    spec.method = method;
  }
};

// Runs the loop until `done` is set by a callback, for at most 10 s.
void run_until(EventLoop& loop, const std::optional<int>& done) {
  EventLoop::TimerId guard = loop.add_timer(10'000, [&loop] { loop.stop(); });
  EventLoop::TimerId poll = 0;
  std::function<void()> check = [&] {
    if (done) {
      loop.stop();
      return;
    }
    poll = loop.add_timer(5, check);
  };
  poll = loop.add_timer(0, check);
  loop.run();
  loop.cancel(guard);
  loop.cancel(poll);
}

}  // namespace

TEST_CASE("every spawn method returns a pidfd for the child it started, and the table reports its exit status",
          "[unit][process]") {
  const SpawnMethod method = GENERATE(SpawnMethod::Vfork, SpawnMethod::PosixSpawn, SpawnMethod::Fork);
  INFO(method_name(method));
  EventLoop loop;
  ChildTable table(loop);
  ShellSpec shell("read _ <&0; exit 3", method);  // waits for EOF on stdin: /dev/null, at once
  auto child = spawnd::server::spawn_process(shell.spec);
  REQUIRE(child);
  REQUIRE(child->pid > 0);
  REQUIRE(child->pidfd);
  CHECK(child->is_own_child);
  CHECK(pidfd_target(child->pidfd.get()) == std::to_string(child->pid));
  CHECK((::fcntl(child->pidfd.get(), F_GETFD) & FD_CLOEXEC) != 0);

  std::optional<int> status;
  auto id = table.watch(std::move(*child), [&](int s) { status = s; });
  REQUIRE(id);
  CHECK(*id != 0);
  CHECK(table.size() == 1);
  run_until(loop, status);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 3);
  CHECK(table.size() == 0);
  // Reaped by the table: no zombie of ours is left.
  int st = 0;
  CHECK(::waitpid(-1, &st, WNOHANG) == -1);
  CHECK(errno == ECHILD);
}

TEST_CASE("terminate_group stops a child (SIGTERM to its group), and ids are not reused", "[unit][process]") {
  EventLoop loop;
  ChildTable table(loop, 500);
  ShellSpec shell("sleep 30 & wait", SpawnMethod::Vfork);
  auto first = spawnd::server::spawn_process(shell.spec);
  REQUIRE(first);
  std::optional<int> status;
  auto id = table.watch(std::move(*first), [&](int s) { status = s; });
  REQUIRE(id);
  table.terminate_group(*id);
  run_until(loop, status);
  REQUIRE(status);
  CHECK(WIFSIGNALED(*status));
  CHECK(WTERMSIG(*status) == SIGTERM);
  // Calls for an id that has exited are no-ops.
  table.terminate_group(*id);
  table.set_exit_callback(*id, nullptr);

  auto second = spawnd::server::spawn_process(ShellSpec("exit 0", SpawnMethod::Vfork).spec);
  REQUIRE(second);
  std::optional<int> second_status;
  auto second_id = table.watch(std::move(*second), [&](int s) { second_status = s; });
  REQUIRE(second_id);
  CHECK(*second_id != *id);
  run_until(loop, second_status);
  CHECK(second_status == std::optional<int>(0));
}

TEST_CASE("ChildTable refuses a process it already watches (EEXIST), and the first entry keeps it", "[unit][process]") {
  EventLoop loop;
  ChildTable table(loop);
  ShellSpec shell("read _ <&0; exit 0", SpawnMethod::Vfork);
  Fd in_read, in_write;
  {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    in_read.reset(p[0]);
    in_write.reset(p[1]);
  }
  shell.spec.stdin_fd = in_read.get();  // it runs until we close in_write
  auto child = spawnd::server::spawn_process(shell.spec);
  REQUIRE(child);
  in_read.reset();
  const pid_t pid = child->pid;
  std::optional<int> status;
  auto id = table.watch(std::move(*child), [&](int s) { status = s; });
  REQUIRE(id);

  // A second pidfd for the same live process: a duplicate registration.
  Fd again(spawnd::sys::pidfd_open(pid));
  REQUIRE(again);
  bool was_called = false;
  auto duplicate = table.watch(ChildProcess{pid, std::move(again), true}, [&](int) { was_called = true; });
  REQUIRE_FALSE(duplicate);
  CHECK(duplicate.error().value() == EEXIST);
  CHECK(table.size() == 1);

  in_write.reset();  // EOF: the child exits 0
  run_until(loop, status);
  CHECK(status == std::optional<int>(0));
  CHECK_FALSE(was_called);
  CHECK(table.size() == 0);
}

TEST_CASE("a process that is not our child is watched through its pidfd and reported with kUnknownStatus",
          "[unit][process]") {
  // We fork a parent, which forks the process to watch and reaps it itself (as a fork server does).
  int report[2], go[2];
  REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
  const pid_t parent = ::fork();
  REQUIRE(parent >= 0);
  if (parent == 0) {
    ::close(go[1]);  // only the test holds the write end: its close is the grandchild's EOF
    const pid_t grandchild = ::fork();
    if (grandchild == 0) {
      char c;
      (void)::read(go[0], &c, 1);  // until the test says go
      ::_exit(5);
    }
    (void)::write(report[1], &grandchild, sizeof grandchild);
    int st;
    ::waitpid(grandchild, &st, 0);
    ::_exit(0);
  }
  ::close(report[1]);
  ::close(go[0]);
  pid_t grandchild = -1;
  REQUIRE(::read(report[0], &grandchild, sizeof grandchild) == static_cast<ssize_t>(sizeof grandchild));
  ::close(report[0]);
  Fd pidfd(spawnd::sys::pidfd_open(grandchild));  // alive: it waits for `go`
  REQUIRE(pidfd);

  EventLoop loop;
  ChildTable table(loop);
  std::optional<int> status;
  auto id = table.watch(ChildProcess{grandchild, std::move(pidfd), false}, [&](int s) { status = s; });
  REQUIRE(id);
  ::close(go[1]);  // go: it exits, and its parent reaps it
  run_until(loop, status);
  CHECK(status == std::optional<int>(ChildTable::kUnknownStatus));
  int st = 0;
  REQUIRE(::waitpid(parent, &st, 0) == parent);
  CHECK(WIFEXITED(st));
}

TEST_CASE("a spawn that cannot have its pidfd fails with EMFILE and leaves no child behind", "[unit][process]") {
  const SpawnMethod method = GENERATE(SpawnMethod::Vfork, SpawnMethod::PosixSpawn, SpawnMethod::Fork);
  INFO(method_name(method));
  ShellSpec shell("exit 0", method);
  // No free fd number below the limit: the pidfd is the one fd a spawn needs in spawnd.
  int lowest_free = 0;
  while (::fcntl(lowest_free, F_GETFD) != -1) ++lowest_free;
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
  rlimit tight = old;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
  auto child = spawnd::server::spawn_process(shell.spec);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);
  REQUIRE_FALSE(child);
  CHECK(child.error().value() == EMFILE);
  int st = 0;
  CHECK(::waitpid(-1, &st, WNOHANG) == -1);  // killed and reaped, if it was started at all
  CHECK(errno == ECHILD);
}

TEST_CASE("a child the loop cannot watch is killed and reaped, and watch() fails with the loop's errno",
          "[unit][process]") {
  EventLoop loop;
  ChildTable table(loop);
  auto child = spawnd::server::spawn_process(ShellSpec("sleep 30", SpawnMethod::Vfork).spec);
  REQUIRE(child);
  // Its pidfd's number is taken in the loop already, so the table's registration is refused (EEXIST).
  REQUIRE(loop.add(child->pidfd.get(), 0, [](std::uint32_t) {}));
  const int number = child->pidfd.get();
  bool was_called = false;
  auto id = table.watch(std::move(*child), [&](int) { was_called = true; });
  REQUIRE_FALSE(id);
  CHECK(id.error().value() == EEXIST);
  CHECK(table.size() == 0);
  CHECK_FALSE(was_called);
  int st = 0;
  CHECK(::waitpid(-1, &st, WNOHANG) == -1);  // reaped already, not left sleeping for 30 s
  CHECK(errno == ECHILD);
  loop.remove(number);
}
