#include "shared/slot_slice.h"

#include <doctest/doctest.h>

#include "randomization_fixtures.h"

using namespace irt::shared;

namespace {

RandomizationList site_list(std::size_t per_stratum = 40) {
  Study s = irt::test::stratified_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}}, {4, 6});
  auto source = irt::test::seeded(31);
  return *generate_list(s, source, per_stratum);
}

bool whole_blocks(const RandomizationList& list, const SlotGrant& g) {
  std::map<std::uint32_t, std::uint32_t> per_block;
  for (const auto& s : g.slots) ++per_block[s.block];
  for (const auto& [block, n] : per_block)
    for (const auto& s : g.slots)
      if (s.block == block && n != s.block_size) return false;
  (void)list;
  return true;
}

}  // namespace

TEST_CASE("grant size comes from forecast times offline days, rounded up to whole blocks") {
  CHECK(grant_target_slots(0.5, 14) == 7);
  CHECK(grant_target_slots(0.01, 14) == 1);
  CHECK(grant_target_slots(0, 14) == 0);
  auto list = site_list();
  SliceLedger ledger(list);
  auto g = ledger.top_up("n1", 0, 0.5, 14);
  REQUIRE(g.ok());
  CHECK(g->slots.size() >= 7);
  CHECK(g->slots.size() <= 7 + 5);
  CHECK(whole_blocks(list, *g));
  CHECK(g->stratum_label == "site=101;sex=F");
  // Topping up again with enough free slots grants nothing.
  auto again = ledger.top_up("n1", 0, 0.5, 14);
  REQUIRE(again.ok());
  CHECK(again->slots.empty());
}

TEST_CASE("a node's exhausted slice stops randomization with a message to sync") {
  auto list = site_list();
  SliceLedger ledger(list);
  NodeSlots node;
  auto g = ledger.grant("n1", 2, 1);
  REQUIRE(node.apply(*g).ok());
  for (std::size_t i = 0; i < g->slots.size(); ++i) REQUIRE(node.take_next(2).ok());
  auto r = node.take_next(2);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::exhausted);
  CHECK(r.error().message == "the randomization slice for stratum 'site=102;sex=F' is used up on this node; "
                             "sync with the hub to receive more slots, then randomize again");
  CHECK(node.take_next(3).error().code == Errc::exhausted);
}

TEST_CASE("a node can never assign a slot it does not own") {
  auto list = site_list();
  SliceLedger ledger(list);
  NodeSlots n1, n2;
  auto g1 = ledger.grant("n1", 0, 4);
  auto g2 = ledger.grant("n2", 0, 4);
  REQUIRE(n1.apply(*g1).ok());
  REQUIRE(n2.apply(*g2).ok());
  const auto foreign = g2->slots.front().slot;
  CHECK(n1.take(0, foreign).error().code == Errc::forbidden);
  CHECK(ledger.record_use("n1", 0, foreign).error().code == Errc::forbidden);
  CHECK(n2.take(0, foreign).ok());
  CHECK(ledger.record_use("n2", 0, foreign).ok());
  CHECK(n2.take(0, foreign).error().code == Errc::conflict);
  CHECK(ledger.record_use("n2", 0, foreign).error().code == Errc::conflict);
  CHECK(n1.apply(*g1).error().code == Errc::conflict);  // a grant applies once
}

TEST_CASE("a revoked node's unused slots are voided and never granted again") {
  auto list = site_list();
  SliceLedger ledger(list);
  auto g1 = ledger.grant("lost", 1, 10);
  REQUIRE(ledger.record_use("lost", 1, g1->slots[0].slot).ok());
  auto voids = ledger.revoke("lost");
  REQUIRE(voids.size() == 1);
  CHECK(voids[0].slots.size() == g1->slots.size() - 1);
  CHECK(ledger.state(1, g1->slots[0].slot) == SliceLedger::State::used);
  CHECK(ledger.state(1, g1->slots[1].slot) == SliceLedger::State::voided);
  auto g2 = ledger.grant("new", 1, 10);
  for (const auto& s : g2->slots) CHECK(s.slot > g1->slots.back().slot);
  NodeSlots lost;
  REQUIRE(lost.apply(*g1).ok());
  REQUIRE(lost.take(1, g1->slots[0].slot).ok());
  lost.apply(voids[0]);
  CHECK(lost.free_count(1) == 0);
}

TEST_CASE("a stratum cap bounds the grants and a capped stratum refuses with a clear message") {
  auto list = site_list();
  SliceLedger ledger(list);
  auto g1 = ledger.grant("n1", 0, 4, 7);
  REQUIRE(g1.ok());
  auto g2 = ledger.grant("n2", 0, 4, 7);  // 7 - outstanding leaves room for the rest
  REQUIRE(g2.ok());
  CHECK(g1->slots.size() + g2->slots.size() == 7);
  auto g3 = ledger.grant("n3", 0, 4, 7);
  REQUIRE_FALSE(g3.ok());
  CHECK(g3.error().code == Errc::exhausted);
  CHECK(g3.error().message.find("stratum 'site=101;sex=F' has no room left under its enrollment cap") == 0);
}

TEST_CASE("a list that runs out of blocks says to generate an extension") {
  auto list = site_list(8);
  SliceLedger ledger(list);
  REQUIRE(ledger.grant("n1", 4, 100).ok());
  auto r = ledger.grant("n1", 4, 1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::exhausted);
  CHECK(r.error().message.find("extension list") != std::string::npos);
}

TEST_CASE("grants, voids, node slots and the ledger survive JSON round trips") {
  auto list = site_list();
  SliceLedger ledger(list);
  auto g = *ledger.grant("n1", 3, 5);
  CHECK(nlohmann::json(g).get<SlotGrant>() == g);
  NodeSlots node;
  REQUIRE(node.apply(g).ok());
  REQUIRE(node.take_next(3).ok());
  auto copy = nlohmann::json::parse(nlohmann::json(node).dump()).get<NodeSlots>();
  CHECK(copy.free_count(3) == node.free_count(3));
  CHECK(copy.apply(g).error().code == Errc::conflict);
  auto v = ledger.revoke("n1");
  CHECK(nlohmann::json(v[0]).get<SlotVoid>() == v[0]);
  SliceLedger restored(list);
  REQUIRE(restored.restore(ledger.state_json()).ok());
  CHECK(restored.state(3, g.slots[0].slot) == SliceLedger::State::voided);
  CHECK(restored.grant("n2", 3, 1)->slots.front().slot > g.slots.back().slot);
  auto short_list = site_list(8);
  SliceLedger other(short_list);
  CHECK(other.restore(ledger.state_json()).error().code == Errc::invalid_input);
}
