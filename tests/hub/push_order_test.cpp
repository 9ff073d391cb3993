// Tests for hub/push_order.h: a node's later push waits for its earlier one,
// whether that one is in progress in this process or in another sharing the
// database.
#include "hub/push_order.h"

#include <doctest/doctest.h>

#include <atomic>
#include <optional>
#include <thread>

#include "sync/hlc.h"
#include "tests/support/test_support.h"

using irt::hub::PushOrder;
using namespace std::chrono_literals;

namespace {

// The hub's push-order table in a database of its own; open() is one more
// connection to it, as another hub process would hold.
struct Store {
  irt::test::TempDir dir;
  irt::storage::Database open() const {
    auto db = irt::storage::Database::open(dir / "hub.db");
    REQUIRE(db.ok());
    REQUIRE(irt::hub::migrate_push_order(*db).ok());
    return std::move(db).value();
  }
};

}  // namespace

TEST_CASE("a push whose predecessor is recorded goes on at once, whatever else is in progress") {
  Store store;
  auto db = store.open();
  PushOrder order(db, 1h, 1h);
  std::mutex m;
  std::unique_lock lock(m);
  auto earlier = order.begin("101-N1", 1);
  order.wait_for_predecessor(lock, "101-N1", 11, [] { return std::uint64_t{10}; });
  CHECK(lock.owns_lock());
}

TEST_CASE("a later push waits for the node's earlier push in progress, then goes on when it is recorded") {
  Store store;
  auto db = store.open();
  PushOrder order(db, 1h, 1h);
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
  Store store;
  auto db = store.open();
  PushOrder order(db, 0ms, 1h);
  std::mutex m;
  std::unique_lock lock(m);
  auto mine = order.begin("101-N1", 21);
  order.wait_for_predecessor(lock, "101-N1", 21, [] { return std::uint64_t{10}; });
  CHECK(lock.owns_lock());  // goes on, and the ledger refuses the gap
}

TEST_CASE("a push behind an earlier push that never ends goes on at the limit") {
  Store store;
  auto db = store.open();
  PushOrder order(db, 0ms, 50ms);
  std::mutex m;
  std::unique_lock lock(m);
  auto stuck = order.begin("101-N1", 1);
  auto mine = order.begin("101-N1", 11);
  order.wait_for_predecessor(lock, "101-N1", 11, [] { return std::uint64_t{0}; });
  CHECK(lock.owns_lock());
}

TEST_CASE("a push in progress in another process holds back the node's later push until its events are recorded") {
  // Two connections, two PushOrders, two mutexes: two hub processes sharing
  // one database, a node's two pushes in flight reaching one each.
  Store store;
  auto db_a = store.open();
  auto db_b = store.open();
  PushOrder a(db_a, 0ms, 1h), b(db_b, 0ms, 1h);
  std::mutex ma, mb;
  std::atomic<std::uint64_t> acked{0};  // the ledger both processes read
  std::atomic<bool> went_on{false};
  std::optional<PushOrder::Ticket> first;
  {
    std::lock_guard l(ma);
    first.emplace(a, "101-N1", 1);
  }
  std::thread later([&] {
    std::unique_lock l(mb);
    auto second = b.begin("101-N1", 11);
    CHECK(b.earlier_in_progress("101-N1", 11));  // seen from the other process
    b.wait_for_predecessor(l, "101-N1", 11, [&] { return acked.load(); });
    went_on = true;
  });
  std::this_thread::sleep_for(4 * PushOrder::kPollInterval);  // several polls of the other process
  CHECK_FALSE(went_on.load());                                 // grace 0: only the row holds it back
  acked = 10;
  later.join();
  CHECK(went_on.load());
  std::lock_guard l(ma);
  first.reset();
  CHECK_FALSE(a.earlier_in_progress("101-N1", 100));
}

TEST_CASE("the row of a push whose process was killed holds nobody back once it is older than the limit") {
  Store store;
  auto db = store.open();
  PushOrder order(db, 0ms, 10s);
  {
    // A process killed mid-push leaves its row behind, begun 20 s ago.
    db.prepare("INSERT INTO hub_pushes_in_progress(node_id, first_seq, started_ms) VALUES (?, ?, ?)")
        .bind_all("101-N1", 1, irt::sync::system_millis() - 20000)
        .run();
  }
  CHECK_FALSE(order.earlier_in_progress("101-N1", 11));
  std::mutex m;
  std::unique_lock lock(m);
  auto start = std::chrono::steady_clock::now();
  auto mine = order.begin("101-N1", 11);  // clears expired rows as it registers
  order.wait_for_predecessor(lock, "101-N1", 11, [] { return std::uint64_t{0}; });
  CHECK(std::chrono::steady_clock::now() - start < 10s);  // went on after the grace, not at the limit
  auto rows = db.prepare("SELECT count(*) FROM hub_pushes_in_progress");
  REQUIRE(rows.step());
  CHECK(rows.int64(0) == 1);  // only its own
}
