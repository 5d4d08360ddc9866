#include "server/gateway/supervisor.h"

#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include "common/log.h"

namespace spawnd::server {

std::int64_t RestartBackoff::next_delay_ms() noexcept {
  ++failures_;
  if (failures_ == 1) return 0;
  return std::min(kMaxDelayMs, kFirstDelayMs << std::min(failures_ - 2, 10));
}

std::optional<HandlerVersion> HandlerVersion::of(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return HandlerVersion{st.st_dev, st.st_ino, st.st_size,
                        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

Supervisor::Supervisor(EventLoop& loop, ChildTable& children, std::string name, std::string path)
    : loop_(loop), children_(children), name_(std::move(name)), path_(std::move(path)),
      version_(HandlerVersion::of(path_).value_or(HandlerVersion{})) {}

bool Supervisor::check_replaced() {
  const std::optional<HandlerVersion> now = HandlerVersion::of(path_);
  if (!now || *now == version_) return false;
  version_ = *now;
  backoff_.reset();
  SPAWND_LOG_INFO("%s: the handler was replaced: replacing its processes", name_.c_str());
  return true;
}

SupervisedProcess::SupervisedProcess(Supervisor& group, std::string role, Hooks hooks)
    : group_(group), role_(std::move(role)), hooks_(std::move(hooks)) {}

SupervisedProcess::~SupervisedProcess() {
  if (start_timer_) group_.loop_.cancel(start_timer_);
  // It stays in the child table, which stops and reaps it; nobody listens for its exit any more.
  if (child_) {
    group_.children_.set_exit_callback(child_, nullptr);
    group_.children_.terminate_group(child_);
  }
}

void SupervisedProcess::start() {
  if (child_ || is_retired_) return;
  if (start_timer_) {
    group_.loop_.cancel(start_timer_);
    start_timer_ = 0;
  }
  is_recycling_ = false;
  version_ = HandlerVersion::of(group_.path_).value_or(HandlerVersion{});
  Result<ChildProcess> process = hooks_.spawn();
  if (!process) {
    ++group_.start_failures_;
    const std::int64_t delay = group_.backoff_.next_delay_ms();
    SPAWND_LOG_ERROR("%s: cannot start a %s: %s; retrying in %lld ms", group_.name_.c_str(), role_.c_str(),
                     process.error().message().c_str(), static_cast<long long>(delay));
    schedule_start(delay);
    return;
  }
  const pid_t pid = process->pid;
  Result<ChildTable::ChildId> id = group_.children_.watch(std::move(*process), [this](int status) { on_exit(status); });
  if (!id) {  // logged by the table, which killed it
    ++group_.start_failures_;
    schedule_start(group_.backoff_.next_delay_ms());
    return;
  }
  child_ = *id;
  pid_ = pid;
  SPAWND_LOG_DEBUG("%s: started %s %d", group_.name_.c_str(), role_.c_str(), static_cast<int>(pid));
  if (hooks_.on_started) hooks_.on_started(pid);
}

void SupervisedProcess::recycle() {
  if (!child_) return;
  is_recycling_ = true;
  group_.children_.terminate_group(child_);
}

void SupervisedProcess::terminate() {
  if (child_) group_.children_.terminate_group(child_);
}

void SupervisedProcess::kill() {
  if (child_) group_.children_.kill_group(child_);
}

void SupervisedProcess::retire() {
  is_retired_ = true;
  if (start_timer_) {
    group_.loop_.cancel(start_timer_);
    start_timer_ = 0;
  }
  if (!child_) return;
  group_.children_.set_exit_callback(child_, nullptr);
  group_.children_.kill_group(child_);
  child_ = 0;
  pid_ = -1;
}

void SupervisedProcess::on_exit(int wait_status) {
  const pid_t pid = pid_;
  child_ = 0;
  pid_ = -1;
  std::int64_t delay = 0;
  if (!is_recycling_) {
    delay = group_.backoff_.next_delay_ms();
    SPAWND_LOG_ERROR("%s: %s %d ended with %s; restarting it in %lld ms", group_.name_.c_str(), role_.c_str(),
                     static_cast<int>(pid), describe_exit(wait_status).c_str(), static_cast<long long>(delay));
  }
  is_recycling_ = false;
  schedule_start(delay);
  // Last, touching nothing of ours afterwards: the hook may retire this process (which cancels the restart) or
  // destroy it.
  if (hooks_.on_exited) hooks_.on_exited(wait_status);
}

void SupervisedProcess::schedule_start(std::int64_t delay_ms) {
  if (start_timer_) group_.loop_.cancel(start_timer_);
  start_timer_ = group_.loop_.add_timer(delay_ms, [this] {
    start_timer_ = 0;
    start();
  });
}

}  // namespace spawnd::server
