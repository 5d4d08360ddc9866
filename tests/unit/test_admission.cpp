// The one admission policy (server/gateway/admission.h): slots decided by the owner's try_start, a bounded FIFO,
// refusal beyond it, withdrawal (also by destruction), expiry of a queued request, and starts that fail at once.
#include <catch2/catch.hpp>

#include <cstddef>
#include <memory>
#include <vector>

#include "server/gateway/admission.h"

using spawnd::server::Admission;

namespace {

struct Request final : Admission::Waiter {
  explicit Request(int n) : id(n) {}
  int id;
};

// A gateway with `slots` slots; started requests are recorded in order.
struct Owner {
  std::size_t slots;
  std::size_t in_use = 0;
  std::vector<int> started;
  bool fail_starts = false;  // a start that fails at once gives its slot back (a spawn error)
  Admission admission;

  Owner(std::size_t n, std::size_t max_queue)
      : slots(n), admission("test", "slot", max_queue, [this](Admission::Waiter& w) {
          if (in_use >= slots) return false;
          started.push_back(static_cast<Request&>(w).id);
          if (fail_starts) {
            admission.slot_freed();  // re-entrant: from inside try_start
          } else {
            ++in_use;
          }
          return true;
        }) {}

  void finish_one() {
    --in_use;
    admission.slot_freed();
  }
};

}  // namespace

TEST_CASE("admission: free slots start at once, then the queue fills, then requests are refused",
          "[unit][admission]") {
  Owner owner(2, 2);
  std::vector<std::unique_ptr<Request>> r;
  for (int i = 0; i < 5; ++i) r.push_back(std::make_unique<Request>(i));
  CHECK(owner.admission.admit(*r[0], 0, "a") == Admission::Outcome::Started);
  CHECK(owner.admission.admit(*r[1], 1, "a") == Admission::Outcome::Started);
  CHECK(owner.admission.admit(*r[2], 2, "a") == Admission::Outcome::Queued);
  CHECK(r[2]->is_queued());
  CHECK(owner.admission.admit(*r[3], 3, "a") == Admission::Outcome::Queued);
  CHECK(owner.admission.admit(*r[4], 4, "a") == Admission::Outcome::Refused);
  CHECK_FALSE(r[4]->is_queued());
  CHECK(owner.admission.queued() == 2);
  CHECK(owner.started == std::vector<int>{0, 1});
}

TEST_CASE("admission: a freed slot goes to the oldest queued request, and a newcomer does not jump the queue",
          "[unit][admission]") {
  Owner owner(1, 8);
  Request a(1), b(2), c(3), d(4);
  CHECK(owner.admission.admit(a, 1, "x") == Admission::Outcome::Started);
  CHECK(owner.admission.admit(b, 2, "x") == Admission::Outcome::Queued);
  CHECK(owner.admission.admit(c, 3, "x") == Admission::Outcome::Queued);
  owner.finish_one();
  CHECK(owner.started == std::vector<int>{1, 2});
  CHECK_FALSE(b.is_queued());
  // A slot is free while c still waits: the newcomer queues behind c.
  ++owner.slots;
  CHECK(owner.admission.admit(d, 4, "x") == Admission::Outcome::Queued);
  owner.admission.slot_freed();
  CHECK(owner.started == std::vector<int>{1, 2, 3});  // b and c hold both slots now
  owner.finish_one();
  CHECK(owner.started == std::vector<int>{1, 2, 3, 4});
}

TEST_CASE("admission: a withdrawn or destroyed waiter leaves the queue", "[unit][admission]") {
  Owner owner(1, 8);
  Request running(1), gone(2), next(3);
  CHECK(owner.admission.admit(running, 1, "x") == Admission::Outcome::Started);
  CHECK(owner.admission.admit(gone, 2, "x") == Admission::Outcome::Queued);
  {
    Request destroyed(9);
    CHECK(owner.admission.admit(destroyed, 9, "x") == Admission::Outcome::Queued);
    CHECK(owner.admission.queued() == 2);
  }
  CHECK(owner.admission.queued() == 1);
  CHECK(owner.admission.withdraw(gone));
  CHECK_FALSE(owner.admission.withdraw(gone));
  CHECK_FALSE(owner.admission.withdraw(running));  // started: not queued
  CHECK(owner.admission.admit(next, 3, "x") == Admission::Outcome::Queued);  // the only slot is taken
  CHECK(owner.started == std::vector<int>{1});
  owner.finish_one();
  CHECK(owner.started == std::vector<int>{1, 3});
}

TEST_CASE("admission: expire() takes a queued request out (503), and refuses one that runs (504)",
          "[unit][admission]") {
  Owner owner(1, 8);
  Request running(1), waiting(2);
  CHECK(owner.admission.admit(running, 1, "x") == Admission::Outcome::Started);
  CHECK(owner.admission.admit(waiting, 2, "x") == Admission::Outcome::Queued);
  CHECK(owner.admission.expire(waiting, 30'000));
  CHECK_FALSE(waiting.is_queued());
  CHECK_FALSE(owner.admission.expire(running, 30'000));
  owner.finish_one();
  CHECK(owner.started == std::vector<int>{1});
}

TEST_CASE("admission: starts that fail at once free their slot and the queue drains without recursion",
          "[unit][admission]") {
  Owner owner(1, 100);
  Request first(0);
  CHECK(owner.admission.admit(first, 0, "x") == Admission::Outcome::Started);
  std::vector<std::unique_ptr<Request>> queued;
  for (int i = 1; i <= 50; ++i) {
    queued.push_back(std::make_unique<Request>(i));
    CHECK(owner.admission.admit(*queued.back(), static_cast<std::uint64_t>(i), "x") == Admission::Outcome::Queued);
  }
  owner.fail_starts = true;
  owner.finish_one();
  CHECK(owner.started.size() == 51);
  CHECK(owner.admission.queued() == 0);
  CHECK(owner.in_use == 0);
}

TEST_CASE("admission: requeue_first puts a started request back at the head, past the limit", "[unit][admission]") {
  Owner owner(1, 1);
  Request a(1), b(2);
  CHECK(owner.admission.admit(a, 1, "x") == Admission::Outcome::Started);
  CHECK(owner.admission.admit(b, 2, "x") == Admission::Outcome::Queued);
  owner.admission.requeue_first(a);  // its connection was lost; the slot is free again
  --owner.in_use;
  CHECK(owner.admission.queued() == 2);
  owner.admission.slot_freed();
  CHECK(owner.started == std::vector<int>{1, 1});
  CHECK(b.is_queued());
}
