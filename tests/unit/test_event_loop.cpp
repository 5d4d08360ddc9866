// tests/unit/test_event_loop.cpp — EventLoop (server/event_loop.h): an fd is watched once; a second add() of a number
// the loop still tracks is refused (EEXIST), also when that number was closed without remove() and reused by a new
// pipe, so that an entry that events of the current batch may point at is never replaced and freed.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "common/fd.h"
#include "server/event_loop.h"

using spawnd::Fd;
using spawnd::server::EventLoop;

namespace {

struct TestPipe {
  Fd read_end, write_end;
  TestPipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
  }
};

// Runs the loop until a callback stops it, or for at most 2 s.
void run_briefly(EventLoop& loop) {
  EventLoop::TimerId guard = loop.add_timer(2000, [&loop] { loop.stop(); });
  loop.run();
  loop.cancel(guard);
}

}  // namespace

TEST_CASE("EventLoop::add refuses an fd it already watches with EEXIST, and the first callback stays", "[unit][event]") {
  EventLoop loop;
  TestPipe p;
  int first = 0, second = 0;
  REQUIRE(loop.add(p.read_end.get(), EPOLLIN, [&](std::uint32_t) {
    ++first;
    char c;
    while (::read(p.read_end.get(), &c, 1) > 0) {
    }
    loop.stop();
  }));
  errno = 0;
  CHECK_FALSE(loop.add(p.read_end.get(), EPOLLIN, [&](std::uint32_t) { ++second; }));
  CHECK(errno == EEXIST);

  REQUIRE(::write(p.write_end.get(), "x", 1) == 1);
  run_briefly(loop);
  CHECK(first == 1);
  CHECK(second == 0);
  loop.remove(p.read_end.get());
}

TEST_CASE("an fd number closed without remove() stays taken: a new pipe that reuses it is refused until removed",
          "[unit][event]") {
  EventLoop loop;
  auto old_pipe = std::make_unique<TestPipe>();
  const int number = old_pipe->read_end.get();
  int old_calls = 0;
  REQUIRE(loop.add(number, EPOLLIN, [&](std::uint32_t) { ++old_calls; }));
  old_pipe.reset();  // closed, still registered: the mistake add() must not paper over

  TestPipe fresh;  // the lowest free numbers: the old read end's comes back
  REQUIRE(fresh.read_end.get() == number);
  int new_calls = 0;
  auto on_new = [&](std::uint32_t) {
    ++new_calls;
    char c;
    while (::read(fresh.read_end.get(), &c, 1) > 0) {
    }
    loop.stop();
  };
  errno = 0;
  CHECK_FALSE(loop.add(number, EPOLLIN, on_new));
  CHECK(errno == EEXIST);

  // Once the stale entry is removed, the number can be watched again, and its events reach the new callback.
  loop.remove(number);
  REQUIRE(loop.add(number, EPOLLIN, on_new));
  REQUIRE(::write(fresh.write_end.get(), "x", 1) == 1);
  run_briefly(loop);
  CHECK(new_calls == 1);
  CHECK(old_calls == 0);
  loop.remove(number);
}
