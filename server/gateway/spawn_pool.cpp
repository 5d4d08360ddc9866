#include "server/gateway/spawn_pool.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <cerrno>

#include "common/error.h"
#include "common/sys.h"

namespace spawnd::server {

SpawnPool::SpawnPool(EventLoop& loop, std::size_t threads, DoneCallback on_done)
    : loop_(loop), on_done_(std::move(on_done)), event_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (!event_fd_) throw Error(errno, "eventfd");
  if (!loop_.add(event_fd_.get(), EPOLLIN, [this](std::uint32_t) { deliver(); }))
    throw Error(errno, "epoll_ctl(eventfd)");
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { worker(); });
}

SpawnPool::~SpawnPool() { stop_and_deliver(); }

void SpawnPool::stop_and_deliver() {
  {
    std::lock_guard lock(mutex_);
    is_stopping_ = true;
    jobs_.clear();  // never started: their pipes close, nothing else to undo
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  if (event_fd_) {
    loop_.remove(event_fd_.get());
    event_fd_.reset();
  }
  std::vector<std::pair<std::uint64_t, Result<ChildProcess>>> done;
  {
    std::lock_guard lock(mutex_);
    done.swap(done_);
  }
  for (auto& [token, child] : done) on_done_(token, std::move(child));
}

void SpawnPool::submit(Job job) {
  if (threads_.empty()) {
    auto child = spawn_process(job.spec);
    std::lock_guard lock(mutex_);
    done_.emplace_back(job.token, std::move(child));
  } else {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
    return;
  }
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = sys::write(event_fd_.get(), &one, sizeof one);
}

void SpawnPool::worker() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return is_stopping_ || !jobs_.empty(); });
      if (is_stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    auto child = spawn_process(job.spec);
    const std::uint64_t token = job.token;
    // The child has its copies now: close ours (in the Job's Fds) before reporting, so that EOF on the child's
    // stdout means the child closed it.
    job = Job{};
    {
      std::lock_guard lock(mutex_);
      done_.emplace_back(token, std::move(child));
    }
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = sys::write(event_fd_.get(), &one, sizeof one);
  }
}

void SpawnPool::deliver() {
  std::uint64_t count = 0;
  [[maybe_unused]] ssize_t n = sys::read(event_fd_.get(), &count, sizeof count);
  std::vector<std::pair<std::uint64_t, Result<ChildProcess>>> done;
  {
    std::lock_guard lock(mutex_);
    done.swap(done_);
  }
  for (auto& [token, child] : done) on_done_(token, std::move(child));
}

}  // namespace spawnd::server
