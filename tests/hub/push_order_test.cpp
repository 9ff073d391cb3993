// Tests for hub/push_order.h: a node's later push waits for its earlier one.
#include "hub/push_order.h"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

using irt::hub::PushOrder;
using namespace std::chrono_literals;

TEST_CASE("a push whose predecessor is recorded goes on at once, whatever else is in progress") {
  PushOrder order(1h, 1h);
  std::mutex m;
  std::unique_lock lock(m);
  auto earlier = order.begin("101-N1", 1);
  order.wait_for_predecessor(lock, "101-N1", 11, [] { return std::uint64_t{10}; });
  CHECK(lock.owns_lock());
}

TEST_CASE("a later push waits for the node's earlier push in progress, then goes on when it is recorded") {
  PushOrder order(1h, 1h);
  std::mutex m;
  std::uint64_t acked = 0;      // under m
  bool entered = false;         // under m: the later push registered and is about to wait
  std::atomic<bool> waiting_done{false};
  std::unique_lock lock(m);
  auto first = std::make_unique<PushOrder::Ticket>(order, "101-N1", 1);
  CHECK(order.earlier_in_progress("101-N1", 11));
  CHECK_FALSE(order.earlier_in_progress("101-N1", 1));
  CHECK_FALSE(order.earlier_in_progress("101-N2", 11));
  std::thread later([&] {
    std::unique_lock l(m);
    auto second = order.begin("101-N1", 11);
    entered = true;
    order.wait_for_predecessor(l, "101-N1", 11, [&] { return acked; });
    CHECK(acked == 10);  // it went on only once the first push was recorded
    waiting_done = true;
  });
  // Once `entered` reads true under the mutex, the later push holds it no
  // more: it is waiting (or, were the wait broken, has already gone on).
  for (;;) {
    lock.unlock();
    std::this_thread::yield();
    lock.lock();
    if (entered) break;
  }
  acked = 10;
  first.reset();  // the earlier push ends, recorded
  lock.unlock();
  later.join();
  CHECK(waiting_done.load());
  lock.lock();
  CHECK_FALSE(order.earlier_in_progress("101-N1", 100));  // every ticket ended
}

TEST_CASE("a push ahead of its predecessor with none in progress waits only for the grace") {
  PushOrder order(0ms, 1h);
  std::mutex m;
  std::unique_lock lock(m);
  auto mine = order.begin("101-N1", 21);
  order.wait_for_predecessor(lock, "101-N1", 21, [] { return std::uint64_t{10}; });
  CHECK(lock.owns_lock());  // goes on, and the ledger refuses the gap
}

TEST_CASE("a push behind an earlier push that never ends goes on at the limit") {
  PushOrder order(0ms, 50ms);
  std::mutex m;
  std::unique_lock lock(m);
  auto stuck = order.begin("101-N1", 1);
  auto mine = order.begin("101-N1", 11);
  order.wait_for_predecessor(lock, "101-N1", 11, [] { return std::uint64_t{0}; });
  CHECK(lock.owns_lock());
  CHECK(order.earlier_in_progress("101-N1", 11));
}
