#include "server/gateway/admission.h"

#include <utility>

#include "common/log.h"

namespace spawnd::server {

namespace {

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

}  // namespace

Admission::Admission(std::string mode, std::string slot, std::size_t max_queue, TryStart try_start)
    : mode_(std::move(mode)), slot_(std::move(slot)), max_queue_(max_queue), try_start_(std::move(try_start)) {}

Admission::Outcome Admission::admit(Waiter& waiter, std::uint64_t request_id, std::string_view name) {
  // Queued requests go first: a newcomer takes a free slot only when nobody is waiting for one.
  if (queue_.empty() && try_start_(waiter)) return Outcome::Started;
  if (queue_.size() >= max_queue_) {
    ++refused_;
    SPAWND_LOG_WARN("%s[%llu] %.*s: no free %s and %zu requests queued: 503", mode_.c_str(), ull(request_id),
                    static_cast<int>(name.size()), name.data(), slot_.c_str(), queue_.size());
    return Outcome::Refused;
  }
  waiter.request_id_ = request_id;
  waiter.name_ = name;
  waiter.admission_ = this;
  waiter.is_queued_ = true;
  waiter.position_ = queue_.insert(queue_.end(), &waiter);
  return Outcome::Queued;
}

void Admission::slot_freed() {
  if (is_starting_) {
    is_freed_again_ = true;  // the loop below looks again
    return;
  }
  is_starting_ = true;
  do {
    is_freed_again_ = false;
    while (!queue_.empty()) {
      Waiter& waiter = *queue_.front();
      // Out of the queue while it starts, so that nothing done during the start finds it there.
      queue_.pop_front();
      waiter.is_queued_ = false;
      if (try_start_(waiter)) continue;
      waiter.is_queued_ = true;
      waiter.position_ = queue_.insert(queue_.begin(), &waiter);
      break;
    }
  } while (is_freed_again_ && !queue_.empty());
  is_starting_ = false;
}

void Admission::requeue_first(Waiter& waiter) {
  if (waiter.is_queued_) return;
  waiter.admission_ = this;
  waiter.is_queued_ = true;
  waiter.position_ = queue_.insert(queue_.begin(), &waiter);
}

bool Admission::withdraw(Waiter& waiter) noexcept {
  if (!waiter.is_queued_ || waiter.admission_ != this) return false;
  queue_.erase(waiter.position_);
  waiter.is_queued_ = false;
  return true;
}

bool Admission::expire(Waiter& waiter, std::int64_t waited_ms) {
  if (!withdraw(waiter)) return false;
  log_expired(waiter.request_id_, waiter.name_, waited_ms);
  return true;
}

void Admission::log_expired(std::uint64_t request_id, std::string_view name, std::int64_t waited_ms) {
  ++expired_;
  SPAWND_LOG_WARN("%s[%llu] %.*s: waited %lld ms for a free %s: 503", mode_.c_str(), ull(request_id),
                  static_cast<int>(name.size()), name.data(), static_cast<long long>(waited_ms), slot_.c_str());
}

}  // namespace spawnd::server
