// server/gateway/spawn_pool.h — starts child processes on worker threads, so that the event loop never waits in vfork.
//
// A vfork-style spawn (ours or posix_spawn()) suspends the calling thread (CLONE_VFORK) until the child has exec'd:
// the child's set-up and the kernel's loading of the new program happen while the caller is blocked, about as long
// as the rest of a small CGI request. Done on the loop thread, that serialises every spawn behind the loop and leaves
// cores idle; done here, `threads` spawns proceed in parallel while the loop keeps serving. Completions come back
// with EventLoop::post() and are delivered by `on_done` on the loop thread.
//
// With threads == 0 spawn() runs the spawn synchronously on the calling thread (for comparison in the benchmark) and
// still delivers the result through the loop. The job list has no bound of its own: the gateway spawns only for
// requests it admitted (admission.h), at most --max-children at a time.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "server/event_loop.h"
#include "server/gateway/process.h"

namespace spawnd::server {

class SpawnPool {
 public:
  struct Job {
    std::uint64_t token = 0;  // the caller's handle for the completion
    SpawnSpec spec;           // its *_fd fields point at the Fds below (or at an fd the caller keeps open)
    Fd child_stdin;           // the child's ends of its pipes: closed by the pool once the child exists
    Fd child_stdout;
    Fd child_stderr;
  };
  // Runs on the loop thread: the child (pid and pidfd, which the callback takes over), or the errno of the failed
  // spawn. Completions are matched to their jobs by token only.
  using DoneCallback = std::function<void(std::uint64_t token, Result<ChildProcess> child)>;

  // Throws std::system_error if a thread cannot be started.
  SpawnPool(EventLoop& loop, std::size_t threads, DoneCallback on_done);
  SpawnPool(const SpawnPool&) = delete;
  SpawnPool& operator=(const SpawnPool&) = delete;
  // stop_and_deliver(), if the owner has not called it yet.
  ~SpawnPool();

  // Queues `job` for a thread (with threads == 0: spawns it now); its completion reaches on_done on a later loop turn.
  void spawn(Job job);
  // Teardown: drops jobs not yet started (their pipes close), waits for running spawns, joins the threads, then
  // delivers every child spawned but not yet delivered, so none goes untracked. The owner calls it while the
  // callback's target (its child table) still exists.
  void stop_and_deliver();

 private:
  void worker();
  // Hands a finished spawn to the loop thread (EventLoop::post), where on_done_ gets it.
  void complete(std::uint64_t token, Result<ChildProcess> child);

  EventLoop& loop_;
  DoneCallback on_done_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool is_stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace spawnd::server
