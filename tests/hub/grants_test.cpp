// Tests for hub/randomization_store.h, hub/kit_inventory.h, hub/grants.h and
// hub/consumption.h: the list and kits made at init, the grants issued at
// enrollment, what the hub learns from a node's events, top-up and revocation.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "crypto/seal.h"
#include "hub/amendments.h"
#include "hub/audit.h"
#include "hub/consumption.h"
#include "hub/enrollment.h"
#include "hub/grants.h"
#include "hub/kit_inventory.h"
#include "hub/list_hash.h"
#include "hub/number_ranges.h"
#include "hub/randomization_store.h"
#include "sync/seeded_source.h"
#include "shared/directive_payloads.h"
#include "shared/event_payloads.h"
#include "shared/numbering.h"
#include "shared/offline_minimization.h"
#include "sync/directive.h"
#include "sync/event.h"
#include "tests/hub/hub_fixture.h"
#include "tests/hub/test_node.h"

using namespace irt;
using nlohmann::json;
using test::HubFixture;
using test::kHubNow;
using test::TestNode;
using test::consume;
using test::directives;
using test::enroll;
using test::from_slot;
using test::screened;
using test::seal;

namespace {

constexpr const char* kMinimizationStudy = "packaging/examples/study-minimization.json";

hub::GrantsIssued top_up_grants(HubFixture& f, const std::string& node) {
  storage::Transaction tx(f.hub->db());
  auto r = hub::top_up_grants(*f.hub, node, kHubNow);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  tx.commit();
  return *r;
}

hub::GrantsVoided revoke(HubFixture& f, const std::string& node) {
  hub::GrantsVoided v;
  REQUIRE(f.hub->ledger()
              .revoke(node, "tablet lost", "admin", kHubNow, [&] { v = hub::void_node_grants(*f.hub, node, "admin", kHubNow); })
              .ok());
  return v;
}

std::vector<std::string> alert_kinds(HubFixture& f) {
  std::vector<std::string> out;
  for (const auto& a : f.hub->ledger().alerts(true)) out.push_back(a.kind);
  return out;
}

// (stratum, slot) pairs a node was granted over all its grant.slots directives.
std::set<std::pair<std::uint32_t, std::uint32_t>> granted_slots(HubFixture& f, const std::string& node) {
  std::set<std::pair<std::uint32_t, std::uint32_t>> out;
  for (const auto& d : directives(f, node, shared::kGrantSlotsDirective)) {
    auto g = shared::parse_grant_slots(d.dump());
    REQUIRE(g.ok());
    for (const auto& grant : g->grants)
      for (const auto& s : grant.slots) CHECK(out.insert({grant.stratum, s.slot}).second);
  }
  return out;
}

std::int64_t count_where(HubFixture& f, const std::string& sql, const std::string& arg) {
  auto st = f.hub->db().prepare(sql);
  st.bind(1, arg);
  REQUIRE(st.step());
  return st.int64(0);
}

}  // namespace

TEST_CASE("init generates the list from a recorded seed and its hash regenerates from that seed") {
  HubFixture f;
  auto* store = f.hub->randomization();
  REQUIRE(store);
  const auto& list = store->list();
  CHECK(list.strata.count() == 6);  // 3 sites x diabetes yes/no
  for (std::size_t s = 0; s < list.strata.count(); ++s)
    CHECK(list.stratum_begin[s + 1] - list.stratum_begin[s] >= hub::kSlotsPerStratum);
  CHECK(shared::check_block_ratios(list).ok());

  auto seed_hex = hub::randomization_seed_hex(f.hub->db(), 1);
  REQUIRE(seed_hex.ok());
  auto seed = sync::parse_seed_hex(*seed_hex);
  REQUIRE(seed);
  sync::SeededSource source(*seed);
  auto again = shared::generate_list(f.hub->study(), source, hub::kSlotsPerStratum);
  REQUIRE(again.ok());
  auto csv = shared::encode_list_csv(*again);
  CHECK(hub::randomization_list_hash(csv) == store->list_hash());
  auto st = f.hub->db().prepare("SELECT list_csv, list_hash FROM hub_randomization_lists WHERE study_version = 1");
  REQUIRE(st.step());
  CHECK(st.text(0) == csv);
  CHECK(crypto::Hash::from_view(st.blob(1)) == store->list_hash());

  // Audited, and the seed appears nowhere in the trail.
  bool audited = false;
  for (const auto& e : hub::audit_entries(f.hub->db())) {
    audited = audited || e.action == "randomization.list_generated";
    CHECK(e.new_value.find(*seed_hex) == std::string::npos);
    CHECK(e.reason.find(*seed_hex) == std::string::npos);
  }
  CHECK(audited);
}

TEST_CASE("init places the kit list at the depot in three lots, each kit once") {
  HubFixture f;
  auto kits = hub::kits_held_by(f.hub->db(), "depot", "EU-01");
  // 5 x 3 sites x max(initial 6, max_level 8) per kit type.
  REQUIRE(kits.size() == 2 * 5 * 3 * 8);
  std::map<std::string, std::set<std::string>> lots_of_type;
  std::map<std::string, std::string> expiry_of_lot;
  std::set<std::string> numbers;
  for (const auto& k : kits) {
    CHECK(numbers.insert(k.number).second);
    CHECK(k.status == shared::KitStatus::available);
    lots_of_type[k.kit_type].insert(k.lot);
    // A lot has one expiry whatever the kit type, so neither says anything about an arm.
    auto [it, fresh] = expiry_of_lot.emplace(k.lot, k.expiry);
    if (!fresh) CHECK(it->second == k.expiry);
  }
  CHECK(lots_of_type["VLC25"] == std::set<std::string>{"L01", "L02", "L03"});
  CHECK(lots_of_type["PBO"] == lots_of_type["VLC25"]);
  CHECK(expiry_of_lot["L01"] == "2028-01-01");  // 730 days after 2026-01-01
  CHECK(expiry_of_lot["L01"] < expiry_of_lot["L02"]);
}

TEST_CASE("enrollment grants whole blocks of the node's site only, disjoint numbers and the initial shipment") {
  HubFixture f;
  auto a = enroll(f, "101");
  auto b = enroll(f, "101");
  auto c = enroll(f, "102");

  // Slots: whole blocks, strata of the node's own site, each stratum topped to the target.
  const auto target = shared::grant_target_slots(hub::kNodeForecastPerDay / 2, 14);  // two strata per site
  for (const auto& [node, site] : {std::pair{a.id, "101"}, {b.id, "101"}, {c.id, "102"}}) {
    auto grants = directives(f, node, shared::kGrantSlotsDirective);
    REQUIRE(grants.size() == 1);
    auto g = shared::parse_grant_slots(grants[0].dump());
    REQUIRE(g.ok());
    CHECK(g->study_version == 1);
    REQUIRE(g->grants.size() == 2);
    for (const auto& grant : g->grants) {
      CHECK(grant.node == node);
      CHECK(grant.stratum_label.rfind(std::string("site=") + site + ";", 0) == 0);
      CHECK(grant.slots.size() >= target);
      std::map<std::uint32_t, std::uint32_t> per_block;
      for (const auto& s : grant.slots) ++per_block[s.block];
      for (const auto& s : grant.slots) CHECK(per_block[s.block] == s.block_size);
      CHECK(f.hub->randomization()->slices().free_slots(node, grant.stratum) == grant.slots.size());
    }
  }
  auto sa = granted_slots(f, a.id), sb = granted_slots(f, b.id);
  for (const auto& s : sa) CHECK_FALSE(sb.count(s));

  // Numbers: per site, one after the other; another site starts at 1.
  auto na = shared::parse_number_range(directives(f, a.id, shared::kGrantNumbersDirective).at(0).dump());
  auto nb = shared::parse_number_range(directives(f, b.id, shared::kGrantNumbersDirective).at(0).dump());
  auto nc = shared::parse_number_range(directives(f, c.id, shared::kGrantNumbersDirective).at(0).dump());
  REQUIRE((na.ok() && nb.ok() && nc.ok()));
  CHECK(na->prefix == "101");
  CHECK(na->first == 1);
  CHECK(na->last == hub::kNumbersPerRange);
  CHECK(nb->first == na->last + 1);
  CHECK(nc->prefix == "102");
  CHECK(nc->first == 1);
  CHECK(hub::numbers_left(f.hub->db(), a.id) == hub::kNumbersPerRange);

  // Shipment: the study's counts per kit type, earliest expiry first, custody moved to the node.
  std::set<std::string> shipped;
  for (const auto& node : {a.id, b.id, c.id}) {
    auto ships = directives(f, node, shared::kShipmentDirective);
    REQUIRE(ships.size() == 1);
    auto s = shared::parse_shipment(ships[0].dump());
    REQUIRE(s.ok());
    CHECK(s->kind == "initial");
    std::map<std::string, int> per_type;
    for (const auto& k : s->kits) {
      ++per_type[k.kit_type];
      CHECK(shipped.insert(k.kit_number).second);  // never shipped to two nodes
      auto held = hub::find_kit(f.hub->db(), k.kit_number);
      REQUIRE(held);
      CHECK(held->custody_kind == "node");
      CHECK(held->custody_id == node);
      CHECK(held->status == shared::KitStatus::shipped);
      CHECK(held->shipment_id == s->shipment_id);
    }
    CHECK(per_type == std::map<std::string, int>{{"PBO", 6}, {"VLC25", 6}});
    CHECK(hub::kits_held_by(f.hub->db(), "node", node).size() == 12);
  }
  // What stayed at the depot expires no earlier than anything shipped.
  std::string latest_shipped;
  for (const auto& n : shipped) latest_shipped = std::max(latest_shipped, hub::find_kit(f.hub->db(), n)->expiry);
  for (const auto& k : hub::kits_held_by(f.hub->db(), "depot", "EU-01")) CHECK(k.expiry >= latest_shipped);
  CHECK(count_where(f, "SELECT count(*) FROM hub_kits WHERE custody_kind = ?", "node") == 36);
}

TEST_CASE("the hub records a node's slot and number use from its events and tops it up below half the target") {
  HubFixture f;
  auto a = enroll(f, "101");
  auto* store = f.hub->randomization();
  auto g = shared::parse_grant_slots(directives(f, a.id, shared::kGrantSlotsDirective).at(0).dump());
  REQUIRE(g.ok());
  const auto& first = g->grants.at(0);
  const auto target = shared::grant_target_slots(hub::kNodeForecastPerDay / 2, 14);
  auto ship = shared::parse_shipment(directives(f, a.id, shared::kShipmentDirective).at(0).dump());
  REQUIRE(ship.ok());

  // Screen 60 participants (numbers 101-001..101-060), randomize into the first stratum's slots.
  for (int i = 1; i <= 60; ++i) {
    char number[32];
    std::snprintf(number, sizeof number, "101-%03d", i);
    a.push(f, shared::kScreenedEvent, screened(number, {{"site", "101"}, {"diabetes", "yes"}}));
  }
  const std::size_t use = first.slots.size() - target / 2 + 1;  // leaves fewer than half the target
  std::vector<std::string> dispensed;
  for (std::size_t i = 0; i < use; ++i) {
    char number[32];
    std::snprintf(number, sizeof number, "101-%03zu", i + 1);
    const auto& kit = ship->kits[i];
    dispensed.push_back(kit.kit_number);
    a.push(f, shared::kRandomizedEvent,
           from_slot(number, first, i, {kit.kit_number},
                     seal(f, shared::RandomizedSealed{first.slots[i].arm, {{kit.kit_number, kit.kit_type}}, {}})));
  }
  auto report = consume(f, a.id);
  CHECK(report.numbers == 60);
  CHECK(report.slots == use);
  CHECK(report.kits == use);
  CHECK(report.alerts == 0);
  CHECK(alert_kinds(f).empty());
  CHECK(store->slices().used(first.stratum) == use);
  CHECK(hub::numbers_left(f.hub->db(), a.id) == 40);
  for (const auto& k : dispensed) CHECK(hub::find_kit(f.hub->db(), k)->status == shared::KitStatus::dispensed);
  // Consuming again finds nothing new: the cursor moved with the records.
  CHECK(consume(f, a.id).events == 0);

  const auto before = f.hub->outbox().last_seq(a.id);
  auto issued = top_up_grants(f, a.id);
  CHECK(issued.numbers == hub::kNumbersPerRange);  // 40 left < 50
  CHECK(issued.directives == 2);
  auto more = directives(f, a.id, shared::kGrantSlotsDirective, before);
  REQUIRE(more.size() == 1);
  auto mg = shared::parse_grant_slots(more[0].dump());
  REQUIRE(mg.ok());
  REQUIRE(mg->grants.size() == 1);  // only the stratum that ran low
  CHECK(mg->grants[0].stratum == first.stratum);
  CHECK(mg->grants[0].slots.front().slot == first.slots.back().slot + 1);
  CHECK(store->slices().free_slots(a.id, first.stratum) >= target);
  auto range2 = shared::parse_number_range(directives(f, a.id, shared::kGrantNumbersDirective, before).at(0).dump());
  REQUIRE(range2.ok());
  CHECK(range2->range_id == 2);
  CHECK(range2->first == 101);

  // Nothing more is due right after a top-up.
  auto again = top_up_grants(f, a.id);
  CHECK(again.directives == 0);
}

TEST_CASE("a slot, number or kit the node does not own is kept and raises an alert") {
  HubFixture f;
  auto a = enroll(f, "101");
  auto b = enroll(f, "101");
  auto gb = shared::parse_grant_slots(directives(f, b.id, shared::kGrantSlotsDirective).at(0).dump());
  auto sb = shared::parse_shipment(directives(f, b.id, shared::kShipmentDirective).at(0).dump());
  REQUIRE((gb.ok() && sb.ok()));
  a.push(f, shared::kScreenedEvent, screened("101-150", {}));
  const auto& slot = gb->grants[0].slots[0];
  a.push(f, shared::kRandomizedEvent,
         from_slot("101-150", gb->grants[0], 0, {sb->kits[0].kit_number},
                   seal(f, shared::RandomizedSealed{slot.arm, {}, {}})));
  auto report = consume(f, a.id);
  CHECK(report.alerts == 3);
  auto kinds = alert_kinds(f);
  std::sort(kinds.begin(), kinds.end());
  CHECK(kinds == std::vector<std::string>{"kit.not_in_custody", "number.not_granted", "slot.not_owned"});
  // b's slot and kit are still b's.
  CHECK(f.hub->randomization()->slices().state(gb->grants[0].stratum, slot.slot) ==
        shared::SliceLedger::State::granted);
  CHECK(hub::find_kit(f.hub->db(), sb->kits[0].kit_number)->status == shared::KitStatus::shipped);
}

TEST_CASE("an event whose payload does not parse is kept and alerted, naming the event, its seq and the field") {
  HubFixture f;
  auto a = enroll(f, "101");
  auto g = shared::parse_grant_slots(directives(f, a.id, shared::kGrantSlotsDirective).at(0).dump());
  REQUIRE(g.ok());
  json factors_mistyped = screened("101-001", {{"site", "101"}});
  factors_mistyped["factors"] = json::array({"101"});
  a.push(f, shared::kScreenedEvent, factors_mistyped);                                  // seq 1
  a.push(f, shared::kKitDestroyedEvent, json{{"kit", "100001"}, {"reason", "broken"}});  // seq 2: no esignature
  a.push(f, shared::kKitReturnedEvent, json::array());                                  // seq 3: not an object
  // seq 4: a sealed part that opens but holds a malformed decision record.
  shared::OfflineDecisionRecord rec{1, 0, 16, 0, 0, false, {0.5, 1.5}};
  json sealed = shared::RandomizedSealed{g->grants[0].slots[0].arm, {}, rec};
  sealed["decision"]["stream_end"] = "sixteen";
  a.push(f, shared::kRandomizedEvent, from_slot("101-002", g->grants[0], 0, {}, seal(f, sealed)));
  a.push(f, shared::kScreenedEvent, screened("101-003", {{"site", "101"}, {"diabetes", "no"}}));  // seq 5: readable

  auto report = consume(f, a.id);
  CHECK(report.events == 5);
  CHECK(report.numbers == 1);  // only the readable screening counted
  CHECK(report.slots == 0);
  std::map<std::uint64_t, std::string> unreadable;
  for (const auto& al : f.hub->ledger().alerts(true)) {
    CHECK(al.kind == "event.unreadable");
    REQUIRE(al.seq.has_value());
    unreadable[*al.seq] = al.message;
  }
  REQUIRE(unreadable.size() == 4);
  CHECK(unreadable[1] == "participant.screened event 1 of node " + a.id +
                             " is unreadable (participant.screened.factors: must be an object of strings); the event "
                             "is kept. Check the node's version");
  CHECK(unreadable[2].find("kit.destroyed event 2 ") == 0);
  CHECK(unreadable[2].find("(kit.destroyed.esignature: is missing)") != std::string::npos);
  CHECK(unreadable[3].find("kit.returned event 3 ") == 0);
  CHECK(unreadable[3].find("(kit.returned: not a JSON object)") != std::string::npos);
  CHECK(unreadable[4].find("participant.randomized event 4 ") == 0);
  CHECK(unreadable[4].find("(participant.randomized sealed part.decision.stream_end: must be a whole number from 0)") !=
        std::string::npos);
  // The events stay in the ledger; the slot stays the node's, unused.
  CHECK(f.hub->ledger().records_after(a.id, 0, 100).size() == 5);
  CHECK(f.hub->randomization()->slices().state(g->grants[0].stratum, g->grants[0].slots[0].slot) ==
        shared::SliceLedger::State::granted);
  CHECK(consume(f, a.id).events == 0);
}

TEST_CASE("revocation voids the node's slots, numbers and kits, and none is granted again") {
  HubFixture f;
  auto a = enroll(f, "101");
  auto slots_a = granted_slots(f, a.id);
  auto range_a = shared::parse_number_range(directives(f, a.id, shared::kGrantNumbersDirective).at(0).dump());
  REQUIRE(range_a.ok());
  // Kits the hub released or rejected at the node are in its hands too.
  auto held = hub::kits_held_by(f.hub->db(), "node", a.id);
  REQUIRE(held.size() >= 2);
  hub::set_kit_status(f.hub->db(), held[0].number, shared::KitStatus::available, "tester", "released", kHubNow);
  hub::set_kit_status(f.hub->db(), held[1].number, shared::KitStatus::rejected, "tester", "rejected", kHubNow);
  auto voided = revoke(f, a.id);
  CHECK(voided.slots == slots_a.size());
  CHECK(voided.numbers == hub::kNumbersPerRange);
  CHECK(voided.kits == 12);
  for (const auto& [stratum, slot] : slots_a)
    CHECK(f.hub->randomization()->slices().state(stratum, slot) == shared::SliceLedger::State::voided);
  CHECK(hub::numbers_left(f.hub->db(), a.id) == 0);
  CHECK(count_where(f, "SELECT count(*) FROM hub_kits WHERE custody_id = ? AND status = 'lost_with_node'", a.id) == 12);
  bool audited = false;
  for (const auto& e : hub::audit_entries(f.hub->db())) audited = audited || e.action == "grant.slots_voided";
  CHECK(audited);
  // A revoked node gets no top-up.
  CHECK(top_up_grants(f, a.id).directives == 0);

  // The state survives a reopen of the hub (another process).
  auto dir = f.hub->paths().dir;
  f.hub.reset();
  auto reopened = hub::HubState::open(dir, test::kHubPassphrase);
  REQUIRE(reopened.ok());
  f.hub = std::move(reopened.value());

  auto b = enroll(f, "101");
  for (const auto& s : granted_slots(f, b.id)) CHECK_FALSE(slots_a.count(s));
  auto range_b = shared::parse_number_range(directives(f, b.id, shared::kGrantNumbersDirective).at(0).dump());
  REQUIRE(range_b.ok());
  CHECK(range_b->first > range_a->last);
  auto ship_b = shared::parse_shipment(directives(f, b.id, shared::kShipmentDirective).at(0).dump());
  REQUIRE(ship_b.ok());
  for (const auto& k : ship_b->kits) CHECK(hub::find_kit(f.hub->db(), k.kit_number)->custody_id == b.id);
}

TEST_CASE("a stratum cap bounds the slots granted across the strata it counts") {
  // study-blocks caps diabetes=yes at 60 participants over all sites: with
  // slots granted to many nodes, what is outstanding never exceeds the cap.
  HubFixture f;
  std::vector<TestNode> nodes;
  for (int i = 0; i < 20; ++i) nodes.push_back(enroll(f, i % 2 ? "101" : "201"));
  auto* store = f.hub->randomization();
  const auto& list = store->list();
  std::size_t yes = 0;
  for (std::uint32_t s = 0; s < list.strata.count(); ++s)
    if (list.strata.label(s).find("diabetes=yes") != std::string::npos) yes += store->slices().outstanding(s);
  // About five slots per node and stratum were wanted, 100 in all: the cap stops at 60.
  CHECK(yes == 60);
}

TEST_CASE("minimization: a stream per node at enrollment, decisions replayed at ingest, a forged one alerted") {
  HubFixture f(kMinimizationStudy);
  CHECK(f.hub->randomization() == nullptr);
  auto a = enroll(f, "301");
  auto streams = directives(f, a.id, shared::kGrantMinimizationStreamDirective);
  REQUIRE(streams.size() == 1);
  CHECK(directives(f, a.id, shared::kGrantSlotsDirective).empty());
  auto g = shared::parse_minimization_stream(streams[0].dump());
  REQUIRE(g.ok());
  CHECK(g->stream_id == 1);
  CHECK(g->allowance == shared::grant_target_slots(hub::kNodeForecastPerDay, 21));
  auto config = shared::minimization_config(f.hub->study());
  REQUIRE(config.ok());
  REQUIRE(g->baseline.size() == config->factors.size());

  // Two decisions as the node makes them, from the granted stream.
  auto seed = sync::parse_seed_hex(g->seed_hex);
  REQUIRE(seed);
  sync::SeededSource stream(*seed);
  shared::OfflineMinimizer node(*config);
  shared::MarginalTotals baseline(*config);  // the granted one: a share of nothing yet, and the lean
  for (std::size_t fi = 0; fi < g->baseline.size(); ++fi)
    for (std::size_t l = 0; l < g->baseline[fi].size(); ++l)
      for (std::size_t k = 0; k < g->baseline[fi][l].size(); ++k) baseline.add_cell(fi, l, k, g->baseline[fi][l][k]);
  node.on_sync(baseline, g->synced_participants);
  std::map<std::string, std::string> factors = {{"site", "301"}, {"country", "DE"}, {"age_group", "under_65"},
                                                {"hoehn_yahr", "2-2.5"}};
  auto levels = shared::minimization_levels(*config, factors);
  REQUIRE(levels.ok());
  std::vector<shared::OfflineDecisionRecord> decisions;
  for (int i = 1; i <= 3; ++i) {
    std::string number = "301-00" + std::to_string(i);
    a.push(f, shared::kScreenedEvent, screened(number, factors));
    auto rec = node.decide(*levels, stream);
    decisions.push_back(rec);
    if (i == 3) rec.arm = (rec.arm + 1) % config->allocation.size();  // forged: another arm than the stream gives
    shared::Randomized r;
    r.participant = number;
    r.randomization_number = shared::minimization_randomization_number(g->stream_id, rec.sequence);
    r.esignature = {"ana", "coordinator", kHubNow, "I confirm the randomization of participant " + number};
    r.stream_id = g->stream_id;
    r.decision_sequence = rec.sequence;
    r.sealed = seal(f, shared::RandomizedSealed{config->allocation.arms[rec.arm], {}, rec});
    a.push(f, shared::kRandomizedEvent, r);
  }
  auto report = consume(f, a.id);
  CHECK(report.decisions == 2);
  CHECK(alert_kinds(f) == std::vector<std::string>{"minimization.replay"});

  // Allocations changed the study-wide totals: the next pull brings a fresh stream with a baseline.
  auto before = f.hub->outbox().last_seq(a.id);
  CHECK(top_up_grants(f, a.id).streams == 1);
  auto next = shared::parse_minimization_stream(
      directives(f, a.id, shared::kGrantMinimizationStreamDirective, before).at(0).dump());
  REQUIRE(next.ok());
  CHECK(next->stream_id == 2);
  CHECK(next->synced_participants == 3);
  CHECK(next->seed_hex != g->seed_hex);
  double total = 0;
  for (const auto& level : next->baseline[0])
    for (double v : level) total += v;
  CHECK(total > 0);
  CHECK(top_up_grants(f, a.id).streams == 0);

  auto voided = revoke(f, a.id);
  CHECK(voided.streams == 2);
}

TEST_CASE("minimization: a ratio change in use is replayed under the version each decision was made under") {
  HubFixture f(kMinimizationStudy);
  const hub::Signature manager{"sm", "manager password 1"};
  REQUIRE(hub::add_user(*f.hub, {"sm", "study-manager", {}, manager.password}, crypto::kTest, "root", kHubNow).ok());
  auto a = enroll(f, "301");
  auto g = shared::parse_minimization_stream(directives(f, a.id, shared::kGrantMinimizationStreamDirective).at(0).dump());
  REQUIRE(g.ok());
  auto v1 = shared::minimization_config(f.hub->study());
  REQUIRE(v1.ok());
  // H:L:P 2:1:1 becomes 1:1:1, the minimization in use.
  auto doc = json::parse(f.hub->study_document());
  doc["version"] = 2;
  doc["arms"][0]["ratio"] = 1;
  auto amended = hub::amend(*f.hub, doc.dump(), "interim: equal allocation", manager, kHubNow + test::kHour);
  REQUIRE_MESSAGE(amended.ok(), amended.error().message);
  auto v2 = shared::minimization_config(f.hub->study());
  REQUIRE(v2.ok());
  REQUIRE(v2->allocation.ratio != v1->allocation.ratio);

  // The node decides as site_operations does: from its stream, under the version it holds.
  auto seed = sync::parse_seed_hex(g->seed_hex);
  REQUIRE(seed);
  sync::SeededSource stream(*seed);
  std::uint64_t position = 0;
  std::vector<shared::OwnAllocation> own;
  const std::map<std::string, std::string> factors = {{"site", "301"}, {"country", "DE"}, {"age_group", "under_65"},
                                                      {"hoehn_yahr", "2-2.5"}};
  auto decide_and_push = [&](int i, const shared::MinimizationConfig& config, int labelled_version) {
    const std::string number = (i < 10 ? "301-00" : "301-0") + std::to_string(i);
    a.push(f, shared::kScreenedEvent, screened(number, factors));
    auto levels = shared::minimization_levels(config, factors);
    REQUIRE(levels.ok());
    auto inputs = shared::offline_inputs(config, g->baseline, g->synced_participants, own, *levels);
    REQUIRE(inputs.ok());
    auto rec = shared::decide_offline(config, *inputs, stream, position, static_cast<std::uint64_t>(i));
    position = rec.stream_end;
    own.push_back({factors, config.allocation.arms[rec.arm]});
    shared::Randomized r;
    r.participant = number;
    r.randomization_number = shared::minimization_randomization_number(g->stream_id, rec.sequence);
    r.esignature = {"ana", "coordinator", kHubNow, "I confirm the randomization of participant " + number};
    r.stream_id = g->stream_id;
    r.decision_sequence = rec.sequence;
    r.sealed = seal(f, shared::RandomizedSealed{config.allocation.arms[rec.arm], {}, rec});
    json payload = r;
    payload[shared::kEventStudyVersionField] = labelled_version;
    a.push(f, shared::kRandomizedEvent, payload);
  };
  // Two decisions before the node applied version 2, three after.
  decide_and_push(1, *v1, 1);
  decide_and_push(2, *v1, 1);
  for (int i = 3; i <= 5; ++i) decide_and_push(i, *v2, 2);
  // Then one made under version 2 but labelled 1, whose replay under 1 fails.
  // The stream is drawn at random, and at some positions both versions pick
  // the same arm: those decisions go in correctly labelled, until one whose
  // arm differs, so that the test never depends on the draw.
  auto arm_under = [&](const shared::MinimizationConfig& config) {
    auto levels = shared::minimization_levels(config, factors);
    REQUIRE(levels.ok());
    auto inputs = shared::offline_inputs(config, g->baseline, g->synced_participants, own, *levels);
    REQUIRE(inputs.ok());
    sync::SeededSource peek(*seed);
    peek.seek(position);
    return shared::decide_offline(config, *inputs, peek, position, static_cast<std::uint64_t>(own.size() + 1)).arm;
  };
  int i = 6;
  for (; i < 40 && arm_under(*v1) == arm_under(*v2); ++i) decide_and_push(i, *v2, 2);
  REQUIRE_MESSAGE(i < 40, "no stream position where the two versions' decisions differ");
  decide_and_push(i, *v2, 1);
  auto report = consume(f, a.id);
  CHECK(report.decisions == static_cast<std::uint64_t>(i - 1));
  CHECK(alert_kinds(f) == std::vector<std::string>{"minimization.replay"});
}
