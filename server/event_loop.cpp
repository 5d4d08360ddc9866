#include "server/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "common/error.h"
#include "common/sys.h"

namespace spawnd::server {

std::int64_t monotonic_ms() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

EventLoop::EventLoop()
    : epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      post_wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      now_ms_(monotonic_ms()) {
  if (!epoll_) throw Error(errno, "epoll_create1");
  if (!post_wake_) throw Error(errno, "eventfd");
  if (!add(post_wake_.get(), EPOLLIN, [this](std::uint32_t) { on_posted(); })) throw Error(errno, "epoll_ctl(eventfd)");
}

EventLoop::~EventLoop() = default;

bool EventLoop::add(int fd, std::uint32_t events, IoCallback cb) {
  if (entries_.count(fd) != 0) {
    errno = EEXIST;
    return false;
  }
  auto entry = std::make_unique<Entry>(Entry{fd, true, std::move(cb)});
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = entry.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return false;
  entries_.emplace(fd, std::move(entry));
  return true;
}

bool EventLoop::modify(int fd, std::uint32_t events) {
  auto it = entries_.find(fd);
  if (it == entries_.end()) {
    errno = ENOENT;
    return false;
  }
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = it->second.get();
  return ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) == 0;
}

void EventLoop::remove(int fd) {
  auto it = entries_.find(fd);
  if (it == entries_.end()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  // The entry may still be referenced by events later in this epoll_wait batch: keep it, dead, until the batch ends.
  it->second->is_alive = false;
  graveyard_.push_back(std::move(it->second));
  entries_.erase(it);
}

EventLoop::TimerId EventLoop::add_timer(std::int64_t delay_ms, Task cb) {
  TimerId id = next_timer_id_++;
  timer_heap_.push_back(Timer{now_ms_ + (delay_ms < 0 ? 0 : delay_ms), id});
  std::push_heap(timer_heap_.begin(), timer_heap_.end(), std::greater<>());
  timers_.emplace(id, std::move(cb));
  return id;
}

void EventLoop::cancel(TimerId id) noexcept {
  timers_.erase(id);
  // Most of the heap dead: drop the cancelled entries (amortised O(1) per cancel; no allocation).
  if (timer_heap_.size() > 2 * timers_.size() + 64) {
    std::erase_if(timer_heap_, [this](const Timer& t) { return !timers_.contains(t.id); });
    std::make_heap(timer_heap_.begin(), timer_heap_.end(), std::greater<>());
  }
}

void EventLoop::defer(Task task) { deferred_.push_back(std::move(task)); }

void EventLoop::post(Task task) {
  bool was_empty;
  {
    std::lock_guard lock(post_mutex_);
    was_empty = posted_.empty();
    posted_.push_back(std::move(task));
  }
  if (was_empty) {
    // One wake-up per batch: on_posted() reads the eventfd before it takes the list, so a task posted after that
    // read finds the list empty and writes again.
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = sys::write(post_wake_.get(), &one, sizeof one);
  }
}

void EventLoop::on_posted() {
  std::uint64_t count = 0;
  [[maybe_unused]] ssize_t n = sys::read(post_wake_.get(), &count, sizeof count);
  run_posted();
}

void EventLoop::run_posted() {
  std::vector<Task> batch;
  {
    std::lock_guard lock(post_mutex_);
    batch.swap(posted_);
  }
  for (auto& task : batch) task();
}

int EventLoop::next_timeout_ms() const {
  if (!deferred_.empty()) return 0;
  if (timer_heap_.empty()) return -1;
  std::int64_t wait = timer_heap_.front().deadline_ms - monotonic_ms();
  if (wait <= 0) return 0;
  return wait > 60'000 ? 60'000 : static_cast<int>(wait);
}

void EventLoop::run_timers() {
  while (!timer_heap_.empty() && timer_heap_.front().deadline_ms <= now_ms_) {
    TimerId id = timer_heap_.front().id;
    std::pop_heap(timer_heap_.begin(), timer_heap_.end(), std::greater<>());
    timer_heap_.pop_back();
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;  // cancelled
    Task cb = std::move(it->second);
    timers_.erase(it);
    cb();
  }
}

void EventLoop::run_deferred() {
  // A deferred task may defer more work; run until none is left.
  while (!deferred_.empty()) run_deferred_batch();
}

void EventLoop::run_deferred_batch() {
  std::vector<Task> batch;
  batch.swap(deferred_);
  for (auto& task : batch) task();
}

void EventLoop::run() {
  is_stopping_ = false;
  epoll_event events[256];
  while (!is_stopping_) {
    int n = ::epoll_wait(epoll_.get(), events, 256, next_timeout_ms());
    if (n < 0 && errno != EINTR) throw Error(errno, "epoll_wait");
    now_ms_ = monotonic_ms();
    for (int i = 0; i < n; ++i) {
      auto* entry = static_cast<Entry*>(events[i].data.ptr);
      // An earlier callback of this batch may have removed this fd (redis re-checks fe->mask the same way).
      if (!entry->is_alive) continue;
      entry->cb(events[i].events);
    }
    run_timers();
    // Only the tasks deferred before this point: what they defer in turn waits for the next turn, after an
    // epoll_wait that does not block (next_timeout_ms() is 0 then). Otherwise one connection answering its
    // pipelined requests one deferred task after another would keep the loop from every other fd.
    run_deferred_batch();
    graveyard_.clear();
  }
  run_deferred();
  graveyard_.clear();
}

}  // namespace spawnd::server
