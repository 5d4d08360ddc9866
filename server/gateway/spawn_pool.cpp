#include "server/gateway/spawn_pool.h"

#include <memory>

namespace spawnd::server {

SpawnPool::SpawnPool(EventLoop& loop, std::size_t threads, DoneCallback on_done)
    : loop_(loop), on_done_(std::move(on_done)) {
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { worker(); });
}

SpawnPool::~SpawnPool() { stop_and_deliver(); }

void SpawnPool::stop_and_deliver() {
  {
    std::lock_guard lock(mutex_);
    if (is_stopping_) return;
    is_stopping_ = true;
    jobs_.clear();  // never started: their pipes close, nothing else to undo
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  // What the threads posted and the loop has not run yet references this pool: run it now.
  loop_.run_posted();
}

void SpawnPool::spawn(Job job) {
  if (threads_.empty()) {
    auto child = spawn_process(job.spec);
    const std::uint64_t token = job.token;
    job = Job{};  // the child has its copies of the pipe ends
    complete(token, std::move(child));
    return;
  }
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void SpawnPool::complete(std::uint64_t token, Result<ChildProcess> child) {
  // std::function needs a copyable task; the child (its pidfd) is not: it travels in a shared_ptr.
  loop_.post([this, token, child = std::make_shared<Result<ChildProcess>>(std::move(child))] {
    on_done_(token, std::move(*child));
  });
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
    complete(token, std::move(child));
  }
}

}  // namespace spawnd::server
