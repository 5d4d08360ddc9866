// server/gateway/admission.h — the one admission policy of every dynamic mode: a request runs if its gateway has a
// free slot (a child slot of --max-children in cgi and fork mode, a connection to a FastCGI application, an
// in-process worker), else waits in a bounded FIFO, else is refused with 503 and Retry-After (RFC 9110 §15.6.4).
//
// The gateway owns its slots and says whether one is free through `try_start`; Admission owns the queue, the order
// and the two log lines of an overloaded gateway ("... requests queued: 503" and "waited N ms for a free ...:
// 503"). --handler-timeout counts from Gateway::start() in every mode, so time spent queued here is part of it: a
// request still queued when it expires gets 503 (it never reached a handler), not 504.
//
// Loop thread only. Waiters are the gateways' exchanges: Admission keeps raw pointers to queued ones, and a waiter
// leaves the queue when it is destroyed (~Waiter), so the queue never holds a dangling one. The Admission must
// outlive its waiters (a gateway destroys its exchanges' connections first: gateway.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <string_view>

namespace spawnd::server {

class Admission {
 public:
  // An exchange that may wait for a slot; its position in the queue lives here so that leaving it is O(1).
  class Waiter {
   public:
    [[nodiscard]] bool is_queued() const noexcept { return is_queued_; }

   protected:
    Waiter() = default;
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;
    ~Waiter() {
      if (is_queued_) admission_->withdraw(*this);
    }

   private:
    friend class Admission;
    Admission* admission_ = nullptr;  // while queued
    std::list<Waiter*>::iterator position_;
    bool is_queued_ = false;
    std::uint64_t request_id_ = 0;
    std::string name_;  // the script or handler, for log lines
  };

  // Starts `waiter` on a free slot and returns true, or returns false if no slot is free now (the waiter is then
  // not touched). A start that fails at once (spawn error, unreachable application) answers the request itself and
  // still returns true: the waiter has been dealt with.
  using TryStart = std::function<bool(Waiter& waiter)>;

  enum class Outcome {
    Started,  // try_start took it
    Queued,   // waiting: try_start will be called for it when a slot frees up (slot_freed())
    Refused,  // no slot and the queue is full: answer 503 with Retry-After (logged here)
  };

  // `mode`: the log tag ("cgi", "fastcgi", "inproc"); `slot`: what a slot is, for log lines ("child slot",
  // "connection", "worker"); `max_queue`: requests that may wait (--max-queue; 0: none).
  Admission(std::string mode, std::string slot, std::size_t max_queue, TryStart try_start);
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  // Admits the request `request_id` for `name` (script or handler name, for log lines).
  [[nodiscard]] Outcome admit(Waiter& waiter, std::uint64_t request_id, std::string_view name);
  // A slot may be free now: starts queued waiters, oldest first, until try_start refuses one. Safe to call from
  // inside try_start (a start that failed and gave its slot back).
  void slot_freed();
  // Puts a started `waiter` back at the head of the queue, whatever its length: its start has to be repeated (a
  // kept-open FastCGI connection the application had closed), and it keeps its turn. Call slot_freed() after.
  void requeue_first(Waiter& waiter);
  // `waiter` leaves the queue; false (a no-op) if it was not queued.
  bool withdraw(Waiter& waiter) noexcept;
  // --handler-timeout expired for a queued `waiter` after `waited_ms`: it leaves the queue, with the log line.
  // Returns false if it was not queued (it is running: the caller's timeout is a 504).
  bool expire(Waiter& waiter, std::int64_t waited_ms);
  // The same log line for a request of this gateway that expired after admission but before it reached a handler
  // (an in-process job still in the workers' queue): it is answered 503 as well.
  // Counts it among expired().
  void log_expired(std::uint64_t request_id, std::string_view name, std::int64_t waited_ms);

  [[nodiscard]] std::size_t queued() const noexcept { return queue_.size(); }
  // Requests refused because the queue was full (Outcome::Refused), since construction.
  [[nodiscard]] std::uint64_t refused() const noexcept { return refused_; }
  // Requests that expired before they reached a handler (expire(), log_expired()), since construction.
  [[nodiscard]] std::uint64_t expired() const noexcept { return expired_; }

 private:
  std::string mode_;
  std::string slot_;
  std::size_t max_queue_;
  TryStart try_start_;
  std::list<Waiter*> queue_;
  bool is_starting_ = false;   // inside slot_freed()'s loop
  bool is_freed_again_ = false;  // slot_freed() was called from inside that loop
  std::uint64_t refused_ = 0;
  std::uint64_t expired_ = 0;
};

}  // namespace spawnd::server
