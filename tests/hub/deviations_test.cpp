// Tests for hub/deviations.h (raised from real node events by ingest,
// idempotent, acknowledged by signature) and hub/node_overview.h (the numbers
// of the nodes view).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "hub/amendments.h"
#include "hub/audit.h"
#include "hub/deviations.h"
#include "hub/ingest.h"
#include "hub/kit_inventory.h"
#include "hub/node_decisions.h"
#include "hub/node_overview.h"
#include "hub/number_ranges.h"
#include "hub/randomization_store.h"
#include "hub/users.h"
#include "shared/directive_payloads.h"
#include "shared/event_payloads.h"
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

std::vector<hub::Deviation> of_kind(HubFixture& f, const std::string& kind, bool unblinded = false) {
  std::vector<hub::Deviation> out;
  for (auto& d : hub::deviations(*f.hub, false, unblinded))
    if (d.kind == kind) out.push_back(std::move(d));
  return out;
}

shared::Unblinded code_break(HubFixture& f, const std::string& participant, const std::string& arm) {
  return {participant, "anaphylaxis, treating physician needs the allocation",
          {"dr.lee", "investigator", kHubNow + 5000, "I confirm the code break"},
          seal(f, shared::ArmSealed{arm})};
}

shared::Dispensed dispensed(const std::string& participant, const std::string& visit, std::int64_t day,
                            std::vector<std::string> kits = {}) {
  shared::Dispensed d;
  d.participant = participant;
  d.visit = visit;
  d.kits = std::move(kits);
  d.day = day;
  d.window_from = 25;
  d.window_to = 31;
  return d;
}

// Forgets how far the hub read the node's events, as after a replay.
void replay_consumption(HubFixture& f, const std::string& node) {
  f.hub->db().prepare("DELETE FROM hub_consumption_cursor WHERE node_id = ?").bind_all(node).run();
  consume(f, node);
}

}  // namespace

TEST_CASE("a code break raises a deviation naming the event, its arm sealed for unblinded readers only") {
  HubFixture f;
  auto a = enroll(f, "101");
  a.push(f, shared::kUnblindedEvent, code_break(f, "101-001", "A"));
  consume(f, a.id);
  auto blinded = of_kind(f, hub::deviation_kind::kCodeBreak);
  REQUIRE(blinded.size() == 1);
  const auto& d = blinded[0];
  CHECK(d.node_id == a.id);
  CHECK(d.seq == 1);
  CHECK(d.site_id == "101");
  CHECK(d.event_type == shared::kUnblindedEvent);
  CHECK(d.status == "open");
  CHECK(d.summary.find("101-001") != std::string::npos);
  CHECK(d.summary.find("dr.lee") != std::string::npos);
  CHECK(d.summary.find("anaphylaxis") != std::string::npos);
  CHECK(d.summary.find("2026-01-01T00:00:05Z") != std::string::npos);
  CHECK(d.summary.find("Velcardin") == std::string::npos);
  CHECK(d.summary.find("arm") == std::string::npos);
  CHECK_FALSE(d.unblinded);
  // Stored sealed, not in the clear.
  auto st = f.hub->db().prepare("SELECT sealed FROM hub_deviations");
  REQUIRE(st.step());
  CHECK(st.text(0).find("Velcardin") == std::string::npos);

  auto unblinded = of_kind(f, hub::deviation_kind::kCodeBreak, true);
  REQUIRE(unblinded.at(0).unblinded);
  CHECK(unblinded[0].unblinded->find("Velcardin 25 mg") != std::string::npos);

  bool audited = false;
  for (const auto& e : hub::audit_entries(f.hub->db()))
    if (e.action == "deviation.raised") {
      audited = true;
      CHECK(e.actor == "hub");
      CHECK(e.new_value.find("event 1 of node " + a.id) != std::string::npos);
      CHECK(e.reason.find("Velcardin") == std::string::npos);
    }
  CHECK(audited);
}

TEST_CASE("an event read again, re-pushed or replayed, never raises a deviation twice") {
  HubFixture f;
  auto a = enroll(f, "101");
  a.push(f, shared::kUnblindedEvent, code_break(f, "101-001", "B"));
  consume(f, a.id);
  replay_consumption(f, a.id);
  consume(f, a.id);
  CHECK(hub::deviations(*f.hub, false, false).size() == 1);
  std::size_t raised = 0;
  for (const auto& e : hub::audit_entries(f.hub->db())) raised += e.action == "deviation.raised";
  CHECK(raised == 1);
}

TEST_CASE("a dispensing outside the study's visit window raises a deviation, one inside does not") {
  HubFixture f;
  auto a = enroll(f, "101");
  a.push(f, shared::kDispensedEvent, dispensed("101-001", "V2", 28));  // V2: day 28, 3 days either side
  a.push(f, shared::kDispensedEvent, dispensed("101-002", "V2", 40));
  consume(f, a.id);
  auto d = of_kind(f, hub::deviation_kind::kVisitWindow);
  REQUIRE(d.size() == 1);
  CHECK(d[0].seq == 2);
  CHECK(d[0].summary.find("101-002") != std::string::npos);
  CHECK(d[0].summary.find("day 40") != std::string::npos);
  CHECK(d[0].summary.find("days 25 to 31") != std::string::npos);
}

TEST_CASE("a dispensing is judged by the visit window of the study version the node acted under") {
  HubFixture f;
  f.add_user("sm", "study-manager");
  auto a = enroll(f, "101");
  auto v2 = json::parse(test::read_file(test::source_path("packaging/examples/study-blocks-v2.json")));
  for (auto& v : v2["visits"])
    if (v["id"] == "V2") v["window_after"] = 12;  // V2 now runs to day 40
  auto amended = hub::amend(*f.hub, v2.dump(), "wider week 4 window", {"sm", test::kUserPassword}, kHubNow);
  REQUIRE_MESSAGE(amended.ok(), amended.error().message);
  auto under = [](int version) {
    json j = dispensed("101-001", "V2", 40);
    j[shared::kEventStudyVersionField] = version;
    return j;
  };
  a.push(f, shared::kDispensedEvent, under(1));                        // offline, still on version 1
  a.push(f, shared::kDispensedEvent, under(2));                        // after its sync
  a.push(f, shared::kDispensedEvent, dispensed("101-002", "V2", 40));  // names no version: the current one
  consume(f, a.id);
  auto d = of_kind(f, hub::deviation_kind::kVisitWindow);
  REQUIRE(d.size() == 1);
  CHECK(d[0].seq == 1);
  CHECK(d[0].summary.find("days 25 to 31") != std::string::npos);
}

TEST_CASE("the hub counts the visit day from the participant's randomization when it holds it") {
  HubFixture f;
  auto a = enroll(f, "101");
  auto g = shared::parse_grant_slots(directives(f, a.id, shared::kGrantSlotsDirective).at(0).dump());
  REQUIRE(g.ok());
  a.push(f, shared::kScreenedEvent, screened("101-001", {{"site", "101"}, {"diabetes", "yes"}}));
  a.push(f, shared::kRandomizedEvent,
         from_slot("101-001", g->grants[0], 0, {}, seal(f, shared::RandomizedSealed{g->grants[0].slots[0].arm, {}, {}})));
  // The node says day 28, but its clock says the dispensing happened on the day of randomization.
  a.push(f, shared::kDispensedEvent, dispensed("101-001", "V2", 28));
  consume(f, a.id);
  auto d = of_kind(f, hub::deviation_kind::kVisitWindow);
  REQUIRE(d.size() == 1);
  CHECK(d[0].summary.find("day 0 ") != std::string::npos);
}

TEST_CASE("a kit dispensed after the hub rejected it is judged by the directive cursor the event carries") {
  HubFixture f;
  auto a = enroll(f, "101");
  auto kits = hub::kits_held_by(f.hub->db(), "node", a.id);
  REQUIRE(kits.size() >= 3);
  std::uint64_t reject = 0;
  {
    storage::Transaction tx(f.hub->db());
    json decision = shared::KitDecision{1, {kits[0].number, kits[1].number}, "temperature excursion"};
    reject = f.hub->outbox().issue(a.id, shared::kKitsRejectDirective, decision.dump(), kHubNow);
    tx.commit();
  }
  a.directive_seq = reject - 1;  // had not yet pulled the decision
  a.push(f, shared::kDispensedEvent, dispensed("101-001", "V2", 28, {kits[0].number}));
  a.directive_seq = reject;  // had applied it
  a.push(f, shared::kDispensedEvent, dispensed("101-002", "V2", 28, {kits[1].number}));
  a.push(f, shared::kDispensedEvent, dispensed("101-003", "V2", 28, {kits[2].number}));  // never decided on
  consume(f, a.id);
  auto d = of_kind(f, hub::deviation_kind::kKitAfterDecision);
  REQUIRE(d.size() == 2);
  CHECK(d[0].seq == 1);
  CHECK(d[0].summary.find(kits[0].number) != std::string::npos);
  CHECK(d[0].summary.find("had not yet received") != std::string::npos);
  CHECK(d[1].seq == 2);
  CHECK(d[1].summary.find("had already applied") != std::string::npos);
  for (const auto& x : d) CHECK(x.summary.find(kits[0].kit_type) == std::string::npos);
}

TEST_CASE("a kit standing quarantined at the hub and dispensed raises a deviation until a release was applied") {
  HubFixture f;
  auto a = enroll(f, "101");
  auto kits = hub::kits_held_by(f.hub->db(), "node", a.id);
  REQUIRE(kits.size() >= 2);
  a.push(f, shared::kKitQuarantinedEvent, shared::KitQuarantined{kits[0].number, "excursion", 31.0});
  a.push(f, shared::kKitQuarantinedEvent, shared::KitQuarantined{kits[1].number, "excursion", 31.0});
  consume(f, a.id);
  {
    storage::Transaction tx(f.hub->db());
    json decision = shared::KitDecision{1, {kits[1].number}, "within stability"};
    a.directive_seq = f.hub->outbox().issue(a.id, shared::kKitsReleaseDirective, decision.dump(), kHubNow);
    tx.commit();
  }
  a.push(f, shared::kDispensedEvent, dispensed("101-001", "V2", 28, {kits[0].number}));
  a.push(f, shared::kDispensedEvent, dispensed("101-002", "V2", 28, {kits[1].number}));
  consume(f, a.id);
  auto d = of_kind(f, hub::deviation_kind::kKitAfterDecision);
  REQUIRE(d.size() == 1);
  CHECK(d[0].seq == 3);
  CHECK(d[0].summary.find("quarantined") != std::string::npos);
}

TEST_CASE("a node that uses its last participant number or the last slot of a stratum raises a deviation") {
  HubFixture f;
  auto a = enroll(f, "101");
  auto g = shared::parse_grant_slots(directives(f, a.id, shared::kGrantSlotsDirective).at(0).dump());
  REQUIRE(g.ok());
  const auto& grant = g->grants[0];
  const auto numbers = hub::numbers_left(f.hub->db(), a.id);
  REQUIRE(numbers > grant.slots.size());
  for (std::uint64_t i = 1; i <= numbers; ++i) {
    char number[32];
    std::snprintf(number, sizeof number, "101-%03llu", static_cast<unsigned long long>(i));
    a.push(f, shared::kScreenedEvent, screened(number, {{"site", "101"}, {"diabetes", "yes"}}));
  }
  for (std::size_t i = 0; i < grant.slots.size(); ++i) {
    char number[32];
    std::snprintf(number, sizeof number, "101-%03zu", i + 1);
    a.push(f, shared::kRandomizedEvent,
           from_slot(number, grant, i, {}, seal(f, shared::RandomizedSealed{grant.slots[i].arm, {}, {}})));
  }
  consume(f, a.id);
  auto n = of_kind(f, hub::deviation_kind::kNumbersExhausted);
  REQUIRE(n.size() == 1);
  CHECK(n[0].seq == numbers);
  auto s = of_kind(f, hub::deviation_kind::kSliceExhausted);
  REQUIRE(s.size() == 1);
  CHECK(s[0].seq == numbers + grant.slots.size());
  CHECK(s[0].summary.find(grant.stratum_label) != std::string::npos);
}

TEST_CASE("a shortage, an unreadable payload, equivocation and a revoked node's push each raise a deviation") {
  HubFixture f;
  auto a = enroll(f, "101");
  shared::SupplyShortage shortage{"101-001", "V2", "dispense", "",
                                  seal(f, shared::ShortageSealed{{{"VLC25", 1, 0}}})};
  a.push(f, shared::kSupplyShortageEvent, shortage);
  a.push(f, shared::kDispensedEvent, json{{"participant", 7}});
  consume(f, a.id);
  auto short_ = of_kind(f, hub::deviation_kind::kSupplyShortage);
  REQUIRE(short_.size() == 1);
  CHECK(short_[0].summary.find("VLC25") == std::string::npos);
  auto opened = of_kind(f, hub::deviation_kind::kSupplyShortage, true);
  REQUIRE(opened.at(0).unblinded);
  CHECK(opened[0].unblinded->find("VLC25") != std::string::npos);
  auto unreadable = of_kind(f, hub::deviation_kind::kEventUnreadable);
  REQUIRE(unreadable.size() == 1);
  CHECK(unreadable[0].seq == 2);
  CHECK(unreadable[0].event_type == shared::kDispensedEvent);

  // Equivocation: a second, different event 2, caught in the append with the hub's ingest observing.
  hub::Ingest ingest(*f.hub);
  sync::EventBody b;
  b.node_id = a.id;
  b.seq = 2;
  b.prev_hash = sync::parse_event(f.hub->ledger().records_after(a.id, 0, 1).at(0))->hash;
  b.hlc = 99;
  b.device_time_ms = kHubNow;
  b.actor = "coordinator.ana";
  b.type = std::string(shared::kSiteNoteEvent);
  const std::string note = R"({"text":"another story"})";
  b.payload = crypto::Bytes(note.begin(), note.end());
  auto fork = sync::sign_event(std::move(b), a.key);
  auto node = f.hub->ledger().find_node(a.id);
  auto checked = f.hub->ledger().check_batch(*node, {fork.record});
  REQUIRE(checked.ok());
  auto refused = f.hub->ledger().append(*node, std::move(checked.value()), kHubNow, &ingest);
  CHECK_FALSE(refused.ok());
  auto eq = of_kind(f, hub::deviation_kind::kEquivocation);
  REQUIRE(eq.size() == 1);
  CHECK(eq[0].seq == 2);

  // A revoked node retrying its push raises one deviation, however often it retries.
  auto c = enroll(f, "102");
  REQUIRE(f.hub->ledger().revoke(c.id, "tablet lost", "admin", kHubNow).ok());
  sync::Refusal revoked{sync::wire_error::kRevoked, 403, "node was revoked"};
  ingest.push_refused(c.id, revoked, 4, kHubNow);
  ingest.push_refused(c.id, revoked, 4, kHubNow + 60000);
  auto r = of_kind(f, hub::deviation_kind::kRevokedNode);
  REQUIRE(r.size() == 1);
  CHECK(r[0].node_id == c.id);
  CHECK(r[0].seq == 4);
  CHECK(r[0].site_id == "102");
}

TEST_CASE("acknowledging a deviation takes a manage_study signature and a comment, once, audited") {
  HubFixture f;
  auto a = enroll(f, "101");
  a.push(f, shared::kUnblindedEvent, code_break(f, "101-001", "A"));
  consume(f, a.id);
  f.add_user("manager.ines", "study-manager");
  f.add_user("monitor.tom", "monitor");
  auto id = hub::deviations(*f.hub, true, false).at(0).id;

  auto wrong = hub::acknowledge_deviation(*f.hub, id, "reviewed", {"manager.ines", "not the password"}, kHubNow);
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().code == shared::Errc::unauthenticated);
  auto monitor = hub::acknowledge_deviation(*f.hub, id, "reviewed", {"monitor.tom", test::kUserPassword}, kHubNow);
  REQUIRE_FALSE(monitor.ok());
  CHECK(monitor.error().code == shared::Errc::forbidden);
  CHECK(monitor.error().message.find("manage_study") != std::string::npos);
  auto no_comment = hub::acknowledge_deviation(*f.hub, id, "", {"manager.ines", test::kUserPassword}, kHubNow);
  CHECK(no_comment.error().code == shared::Errc::invalid_input);
  auto unknown = hub::acknowledge_deviation(*f.hub, id + 100, "x", {"manager.ines", test::kUserPassword}, kHubNow);
  CHECK(unknown.error().code == shared::Errc::not_found);
  CHECK(hub::deviations(*f.hub, true, false).size() == 1);

  auto done = hub::acknowledge_deviation(*f.hub, id, "medical monitor informed; code break justified",
                                         {"manager.ines", test::kUserPassword}, kHubNow + 1000);
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(done->status == "acknowledged");
  CHECK(hub::deviations(*f.hub, true, false).empty());
  auto stored = hub::find_deviation(*f.hub, id, false);
  CHECK(stored->acknowledged_by == "manager.ines");
  CHECK(stored->comment == "medical monitor informed; code break justified");

  auto twice = hub::acknowledge_deviation(*f.hub, id, "again", {"manager.ines", test::kUserPassword}, kHubNow + 2000);
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error().code == shared::Errc::conflict);
  CHECK(twice.error().message.find("already acknowledged by manager.ines") != std::string::npos);

  std::size_t acks = 0;
  for (const auto& e : hub::audit_entries(f.hub->db()))
    if (e.action == "deviation.acknowledged") {
      ++acks;
      CHECK(e.actor == "manager.ines");
      CHECK(e.signature == "reviewed");
      CHECK(e.old_value == "open");
      CHECK(e.new_value == "acknowledged");
      CHECK(e.subject == "deviation " + std::to_string(id));
    }
  CHECK(acks == 1);
}

TEST_CASE("revoke and unfreeze take a manage_nodes signature that the audit entry keeps") {
  HubFixture f;
  auto a = enroll(f, "101");
  f.add_user("admin.kim", "admin");
  f.add_user("monitor.tom", "monitor");
  auto refused = hub::revoke_node(*f.hub, a.id, "tablet lost", {"monitor.tom", test::kUserPassword}, kHubNow);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == shared::Errc::forbidden);
  CHECK(f.hub->ledger().find_node(a.id)->status == sync::NodeStatus::active);
  CHECK_FALSE(hub::revoke_node(*f.hub, a.id, "tablet lost", {"admin.kim", "wrong"}, kHubNow).ok());
  auto done = hub::revoke_node(*f.hub, a.id, "tablet lost", {"admin.kim", test::kUserPassword}, kHubNow);
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(done->kits > 0);
  CHECK(f.hub->ledger().find_node(a.id)->status == sync::NodeStatus::revoked);
  bool audited = false;
  for (const auto& e : hub::audit_entries(f.hub->db()))
    if (e.action == "node.revoked") {
      audited = true;
      CHECK(e.actor == "admin.kim");
      CHECK(e.signature == "approved");
      CHECK(e.reason == "tablet lost");
    }
  CHECK(audited);
  auto not_frozen = hub::unfreeze_node(*f.hub, a.id, "reviewed", {"admin.kim", test::kUserPassword}, kHubNow);
  CHECK(not_frozen.error().code == shared::Errc::conflict);
  CHECK(hub::unfreeze_node(*f.hub, a.id, "reviewed", {"monitor.tom", test::kUserPassword}, kHubNow).error().code ==
        shared::Errc::forbidden);
}

TEST_CASE("the nodes view counts slots and numbers left, kits by status, contacts, skew and open alerts") {
  HubFixture f;
  auto a = enroll(f, "101");
  auto b = enroll(f, "102");
  auto g = shared::parse_grant_slots(directives(f, a.id, shared::kGrantSlotsDirective).at(0).dump());
  REQUIRE(g.ok());
  const auto granted_numbers = hub::numbers_left(f.hub->db(), a.id);
  const auto kits = hub::kits_held_by(f.hub->db(), "node", a.id);

  // One push through the append with the hub's ingest observing, as the sync server does.
  hub::Ingest ingest(*f.hub);
  a.push(f, shared::kScreenedEvent, screened("101-001", {{"site", "101"}, {"diabetes", "yes"}}));
  sync::EventBody body;
  body.node_id = a.id;
  body.seq = 2;
  body.prev_hash = a.prev;
  body.hlc = 2;
  body.device_time_ms = kHubNow;
  body.actor = "coordinator.ana";
  body.type = std::string(shared::kRandomizedEvent);
  json randomized = from_slot("101-001", g->grants[0], 0, {kits[0].number},
                              seal(f, shared::RandomizedSealed{g->grants[0].slots[0].arm, {}, {}}));
  auto text = randomized.dump();
  body.payload = crypto::Bytes(text.begin(), text.end());
  auto e = sync::sign_event(std::move(body), a.key);
  auto node = f.hub->ledger().find_node(a.id);
  auto checked = f.hub->ledger().check_batch(*node, {e.record});
  REQUIRE(checked.ok());
  REQUIRE(f.hub->ledger().append(*node, std::move(checked.value()), kHubNow + 1000, &ingest).ok());
  // A pull whose signed clock runs 90 s ahead of the hub's.
  sync::PullRequest pull{*f.hub->ledger().find_node(a.id), 3, 100, kHubNow + 2000 + 90000};
  ingest.before_pull(pull, kHubNow + 2000);
  {
    storage::Transaction tx(f.hub->db());
    f.hub->ledger().raise_alert(a.id, 2, "slot.mismatch", "test alert", kHubNow);
    tx.commit();
  }

  auto all = hub::node_overview(*f.hub);
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  const auto& o = all->at(0);
  CHECK(o.node.node_id == a.id);
  CHECK(o.node.acked_seq == 2);
  CHECK(o.last_push_ms == kHubNow + 1000);
  CHECK(o.last_pull_ms == kHubNow + 2000);
  CHECK(o.last_contact_ms == kHubNow + 2000);
  CHECK(o.receipt_seq == 2);
  CHECK(o.directives_pulled_after == 3);
  CHECK(o.skew_ms == 90000);
  CHECK(o.skew_seen_ms == kHubNow + 2000);
  CHECK(o.numbers_left + 1 >= granted_numbers);  // the pull may have topped up
  std::size_t free = 0;
  for (const auto& s : o.slots_left)
    if (s.stratum == g->grants[0].stratum) {
      free = s.slots;
      CHECK(s.label == g->grants[0].stratum_label);
    }
  CHECK(free == f.hub->randomization()->slices().free_slots(a.id, g->grants[0].stratum));
  CHECK(o.kits_by_status.at("dispensed") == 1);
  CHECK(o.kits_by_status.at("shipped") == kits.size() - 1);
  REQUIRE(o.open_alerts.size() == 1);
  CHECK(o.open_alerts[0].kind == "slot.mismatch");

  const auto& other = all->at(1);
  CHECK(other.node.node_id == b.id);
  CHECK_FALSE(other.last_contact_ms);
  CHECK_FALSE(other.skew_ms);
  CHECK(other.open_alerts.empty());

  auto j = hub::to_json(o);
  CHECK(j["last_contact"] == "2026-01-01T00:00:02Z");
  CHECK(j["clock_skew_ms"] == 90000);
  CHECK(j["kits_by_status"]["dispensed"] == 1);
  CHECK(j["last_receipt"]["seq"] == 2);
  CHECK(j["chain_head"] == o.node.acked_hash.hex());
  const auto dumped = j.dump();
  for (const auto& k : f.hub->study().kit_types) CHECK(dumped.find(k.id) == std::string::npos);

  auto one = hub::node_overview(*f.hub, b.id);
  REQUIRE(one.ok());
  CHECK(one->size() == 1);
  CHECK(hub::node_overview(*f.hub, "999-N9").error().code == shared::Errc::not_found);
}
