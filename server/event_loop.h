// server/event_loop.h — the single-threaded epoll loop: fds, timers and deferred work. It knows nothing of HTTP.
//
// Modelled on redis' ae.c. Callbacks run on the loop thread only. Removing an fd (remove()) is safe from inside any
// callback, including the fd's own: the entry is marked dead at once (later events of the same epoll_wait batch are
// dropped) and freed after the batch. Objects that must outlive the current callback are destroyed with
// defer(), which runs after the dispatch pass (redis freeClientAsync, lighttpd fdevent_sched_close).
//
// Timers are a min-heap of deadlines in milliseconds of CLOCK_MONOTONIC; cancel() is O(1) (lazy deletion).
//
// post() is the one way another thread hands work to the loop (the spawn pool's and the in-process workers'
// completions): a mutex-guarded list and an eventfd that wakes epoll_wait, written once per batch.
#pragma once

#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/fd.h"

namespace spawnd::server {

// Milliseconds of CLOCK_MONOTONIC.
[[nodiscard]] std::int64_t monotonic_ms() noexcept;

class EventLoop {
 public:
  // Callback for readiness; `events` is the EPOLL* mask that fired (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, ...).
  using IoCallback = std::function<void(std::uint32_t events)>;
  using Task = std::function<void()>;
  using TimerId = std::uint64_t;

  // Throws spawnd::Error if epoll_create1, eventfd or registering the eventfd fails.
  EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  ~EventLoop();

  // A registration of one fd, removed from the loop when the Watch is destroyed or reset() (before the fd closes:
  // declare the Watch after the Fd it watches, so it goes first). Movable, not copyable; empty when default-made.
  class Watch {
   public:
    Watch() = default;
    Watch(Watch&& other) noexcept : loop_(std::exchange(other.loop_, nullptr)), fd_(std::exchange(other.fd_, -1)) {}
    Watch& operator=(Watch&& other) noexcept {
      if (this != &other) {
        reset();
        loop_ = std::exchange(other.loop_, nullptr);
        fd_ = std::exchange(other.fd_, -1);
      }
      return *this;
    }
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    ~Watch() { reset(); }

    // Stops watching (EventLoop::remove); a no-op when empty.
    void reset() noexcept {
      if (loop_ != nullptr) loop_->remove(fd_);
      loop_ = nullptr;
      fd_ = -1;
    }
    // EventLoop::modify: changes the interest mask. False (errno set) if empty or if epoll_ctl fails.
    [[nodiscard]] bool modify(std::uint32_t events) {
      if (loop_ == nullptr) {
        errno = ENOENT;
        return false;
      }
      return loop_->modify(fd_, events);
    }
    [[nodiscard]] explicit operator bool() const noexcept { return loop_ != nullptr; }

   private:
    friend class EventLoop;
    Watch(EventLoop* loop, int fd) : loop_(loop), fd_(fd) {}
    EventLoop* loop_ = nullptr;
    int fd_ = -1;
  };

  // An fd owned together with its registration: close() (and destruction) takes it out of the loop, then closes it.
  struct WatchedFd {
    Fd fd;
    Watch watch;  // after `fd`: destroyed first
    void close() noexcept {
      watch.reset();
      fd.reset();
    }
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(fd); }
    [[nodiscard]] int get() const noexcept { return fd.get(); }
  };

  // add() as a Watch: empty (errno set, as add() sets it) if the fd could not be added.
  [[nodiscard]] Watch watch(int fd, std::uint32_t events, IoCallback cb) {
    return add(fd, events, std::move(cb)) ? Watch(this, fd) : Watch();
  }

  // Watches `fd` (not owned) for `events` (EPOLLIN / EPOLLOUT, level-triggered). Returns false (errno set) if
  // epoll_ctl fails, or with errno EEXIST if `fd` is watched already: an fd may be added once (use modify() to
  // change the mask), and an fd number that was closed without remove() stays taken until it is removed. Replacing
  // the entry instead would free it while events of the current epoll_wait batch may still point at it (the old
  // file's events, delivered for a number that a new socket or pipe reused).
  [[nodiscard]] bool add(int fd, std::uint32_t events, IoCallback cb);
  // Changes the interest mask of a watched fd. Returns false (errno set) on failure.
  [[nodiscard]] bool modify(int fd, std::uint32_t events);
  // Stops watching `fd`. Call before closing the fd. A no-op for an fd that is not watched.
  void remove(int fd);

  // Runs `cb` once, `delay_ms` milliseconds from now (0: on the next loop turn). Returns an id for cancel().
  TimerId add_timer(std::int64_t delay_ms, Task cb);
  // Cancels a pending timer; a no-op for 0, fired or unknown ids.
  void cancel(TimerId id) noexcept;

  // Runs `task` after the current dispatch pass, before the next epoll_wait. A task deferred by a deferred task runs
  // on the next loop turn, after an epoll_wait that does not block: a chain of deferred work (a connection's
  // pipelined requests) cannot keep the loop from other fds.
  void defer(Task task);

  // Runs the deferred tasks now, and those they defer, until none is left (for teardown: before objects they
  // reference are destroyed).
  void run_deferred();

  // Runs `task` on the loop thread, on the next loop turn (after the fd callbacks of the turn in which it arrives),
  // in the order posted. The only member callable from any thread. A task must not outlive what it references:
  // an owner whose tasks may still be pending either guards them (a liveness flag the task checks on the loop
  // thread) or runs them with run_posted() before it goes away. Tasks never run are destroyed with the loop.
  void post(Task task);
  // Runs the tasks posted so far, now, on the calling (loop) thread: for an owner's teardown (SpawnPool) once its
  // threads are joined, so that nothing it posted is left to run after it.
  void run_posted();

  // Runs until stop(). Returns normally; epoll_wait errors other than EINTR throw spawnd::Error.
  void run();
  // Makes run() return after the current pass. Callable from any callback.
  void stop() noexcept { is_stopping_ = true; }

  // Cached CLOCK_MONOTONIC time, refreshed once per loop turn (milliseconds).
  [[nodiscard]] std::int64_t now_ms() const noexcept { return now_ms_; }

 private:
  struct Entry {
    int fd;
    bool is_alive;
    IoCallback cb;
  };
  struct Timer {
    std::int64_t deadline_ms;
    TimerId id;
    bool operator>(const Timer& o) const noexcept {
      return deadline_ms != o.deadline_ms ? deadline_ms > o.deadline_ms : id > o.id;
    }
  };

  int next_timeout_ms() const;
  void run_timers();
  void run_deferred_batch();
  void on_posted();

  Fd epoll_;
  std::unordered_map<int, std::unique_ptr<Entry>> entries_;
  std::vector<std::unique_ptr<Entry>> graveyard_;  // removed entries, freed after the dispatch pass
  // A min-heap (std::push_heap with std::greater) of deadlines. A cancelled timer's entry stays until it comes due
  // or until cancel() compacts the heap: connections re-arm their timer at every request, and without compaction
  // the heap would hold every timer of the last --io-timeout (millions at tens of thousands of requests a second).
  std::vector<Timer> timer_heap_;
  std::unordered_map<TimerId, Task> timers_;
  TimerId next_timer_id_ = 1;
  std::vector<Task> deferred_;
  Fd post_wake_;  // eventfd: written when posted_ stops being empty
  std::mutex post_mutex_;
  std::vector<Task> posted_;  // guarded by post_mutex_
  std::int64_t now_ms_;
  bool is_stopping_ = false;
};

}  // namespace spawnd::server
