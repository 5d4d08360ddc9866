// tests/unit/test_event_loop.cpp — EventLoop (server/event_loop.h): an fd is watched once; a second add() of a number
// the loop still tracks is refused (EEXIST), also when that number was closed without remove() and reused by a new
// pipe, so that an entry that events of the current batch may point at is never replaced and freed. Timers fire in
// deadline order and cancel() stops them; defer() runs one batch per turn; post() hands tasks from other threads
// to the loop thread, in order.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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

TEST_CASE("EventLoop timers fire in deadline order, and a cancelled one never fires", "[unit][event][timer]") {
  EventLoop loop;
  std::vector<int> fired;
  loop.add_timer(30, [&] { fired.push_back(3); loop.stop(); });
  loop.add_timer(10, [&] { fired.push_back(1); });
  const EventLoop::TimerId cancelled = loop.add_timer(20, [&] { fired.push_back(99); });
  loop.add_timer(20, [&] { fired.push_back(2); });
  loop.cancel(cancelled);
  loop.cancel(0);  // no-op
  run_briefly(loop);
  CHECK(fired == std::vector<int>{1, 2, 3});
}

TEST_CASE("EventLoop timers re-armed many times (a connection's, at every request) keep their order and fire once",
          "[unit][event][timer]") {
  // Each cancel leaves a dead heap entry until the heap is compacted; the live timers must survive compactions in
  // deadline order.
  EventLoop loop;
  std::vector<int> fired;
  EventLoop::TimerId a = 0, b = 0;
  for (int i = 0; i < 10'000; ++i) {
    loop.cancel(a);
    loop.cancel(b);
    a = loop.add_timer(20, [&] { fired.push_back(2); loop.stop(); });
    b = loop.add_timer(10, [&] { fired.push_back(1); });
  }
  const EventLoop::TimerId late = loop.add_timer(60'000, [&] { fired.push_back(99); });
  run_briefly(loop);
  CHECK(fired == std::vector<int>{1, 2});
  loop.cancel(late);
}

TEST_CASE("EventLoop::defer runs after the dispatch pass, a task deferred by a deferred task waits a turn",
          "[unit][event][defer]") {
  EventLoop loop;
  std::vector<std::string> order;
  TestPipe p;
  REQUIRE(::write(p.write_end.get(), "x", 1) == 1);
  REQUIRE(loop.add(p.read_end.get(), EPOLLIN, [&](std::uint32_t) {
    order.emplace_back("io");
    loop.remove(p.read_end.get());
    loop.defer([&] {
      order.emplace_back("deferred");
      loop.defer([&] {
        order.emplace_back("deferred again");
        loop.stop();
      });
    });
    // A timer due now runs in the same turn, after the fd callbacks and before the deferred tasks.
    loop.add_timer(0, [&] { order.emplace_back("timer"); });
  }));
  run_briefly(loop);
  CHECK(order == std::vector<std::string>{"io", "timer", "deferred", "deferred again"});
}

TEST_CASE("EventLoop::post runs tasks from other threads on the loop thread, in the order each thread posted",
          "[unit][event][post]") {
  EventLoop loop;
  constexpr int kThreads = 4;
  constexpr int kTasks = 2000;
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::vector<std::vector<int>> seen(kThreads);  // loop thread only
  int done = 0;
  bool is_all_on_loop_thread = true;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kTasks; ++i) {
        loop.post([&, t, i] {
          if (std::this_thread::get_id() != loop_thread) is_all_on_loop_thread = false;
          seen[t].push_back(i);
          if (++done == kThreads * kTasks) loop.stop();
        });
      }
    });
  }
  run_briefly(loop);
  for (auto& thread : threads) thread.join();
  CHECK(done == kThreads * kTasks);
  CHECK(is_all_on_loop_thread);
  for (const auto& one : seen) {
    REQUIRE(one.size() == static_cast<std::size_t>(kTasks));
    bool is_ordered = true;
    for (int i = 0; i < kTasks; ++i) is_ordered = is_ordered && one[static_cast<std::size_t>(i)] == i;
    CHECK(is_ordered);
  }
}

TEST_CASE("EventLoop::run_posted runs what was posted without a loop turn, later posts still wake the loop",
          "[unit][event][post]") {
  EventLoop loop;
  int ran = 0;
  std::thread poster([&] { loop.post([&] { ++ran; }); });
  poster.join();
  loop.run_posted();  // teardown path: nothing left for later
  CHECK(ran == 1);
  std::thread again([&] { loop.post([&] { ++ran; loop.stop(); }); });
  again.join();
  run_briefly(loop);
  CHECK(ran == 2);
}
