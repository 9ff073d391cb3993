// Tests for hub/cap_allowances.h: the allowance arithmetic, the allowances
// granted at enrollment and topped up after use, their return at revocation,
// and the alert when ingested randomizations exceed a cap.
#include "hub/cap_allowances.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "crypto/seal.h"
#include "hub/audit.h"
#include "hub/consumption.h"
#include "hub/enrollment.h"
#include "hub/grants.h"
#include "hub/randomization_store.h"
#include "shared/directive_payloads.h"
#include "shared/event_payloads.h"
#include "shared/numbering.h"
#include "sync/directive.h"
#include "sync/event.h"
#include "tests/hub/hub_fixture.h"

using namespace irt;
using nlohmann::json;
using shared::CapScope;
using test::kHubNow;

namespace {

// study-blocks with arm B capped at 5 and two cohorts, "pk" capped at 4.
struct CappedHub {
  test::TempDir files;
  std::string study_path;
  std::unique_ptr<test::HubFixture> f;

  CappedHub(int arm_limit = 5, int cohort_limit = 4) {
    auto doc = json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
    doc["cohorts"] = {{{"id", "main"}, {"name", "Main study"}}, {{"id", "pk"}, {"name", "PK sub-study"}}};
    doc["caps"].push_back({{"scope", "arm"}, {"arm", "B"}, {"limit", arm_limit}});
    doc["caps"].push_back({{"scope", "cohort"}, {"cohort", "pk"}, {"limit", cohort_limit}});
    study_path = (files / "study.json").string();
    test::write_file(study_path, doc.dump(2));
    f = std::make_unique<test::HubFixture>(study_path);
  }
  hub::HubState& hub() { return *f->hub; }
};

struct Node {
  std::string id;
  crypto::SigningKey key = crypto::SigningKey::generate();
  crypto::Bytes certificate;
  std::uint64_t seq = 0;
  crypto::Hash prev;
  shared::NumberRangeGrant numbers;  // the node's first range
  std::uint32_t used = 0;
  std::set<std::uint32_t> taken;     // slots used by events not yet taken into account

  // A free slot of `arm` in the node's diabetes=no stratum, granting it another block when it holds none.
  std::pair<std::uint32_t, std::uint32_t> slot_of(hub::HubState& h, const std::string& arm) {
    auto* store = h.randomization();
    const auto& list = store->list();
    auto stratum = static_cast<std::uint32_t>(*list.strata.index_of({{"site", numbers.prefix}, {"diabetes", "no"}}));
    for (int blocks = 0; blocks < 20; ++blocks) {
      for (auto slot : store->slices().free_slot_numbers(id, stratum))
        if (!taken.count(slot) && list.allocation.arms[list.slots[list.stratum_begin[stratum] + slot - 1].arm] == arm) {
          taken.insert(slot);
          return {stratum, slot};
        }
      storage::Transaction tx(h.db());
      REQUIRE(store->slices().grant(id, stratum, 1).ok());
      tx.commit();
    }
    FAIL("no slot of the arm");
    return {};
  }

  void push(hub::HubState& h, const std::string& type, const json& payload) {
    sync::EventBody b;
    b.node_id = id;
    b.seq = ++seq;
    b.prev_hash = prev;
    b.hlc = seq;
    b.device_time_ms = kHubNow;
    b.actor = "coordinator.ana";
    b.type = type;
    auto text = payload.dump();
    b.payload = crypto::Bytes(text.begin(), text.end());
    auto e = sync::sign_event(std::move(b), key);
    prev = e.hash;
    auto ack = h.ledger().ingest(certificate, {e.record}, kHubNow);
    REQUIRE_MESSAGE(ack.ok(), ack.refusal().message);
  }

  // A participant screened into `cohort` and randomized to `arm`, from a slot of that arm.
  void randomize(hub::HubState& h, const std::string& arm, const std::string& cohort = "main") {
    std::string number = shared::format_participant_number(numbers.prefix, numbers.digits, numbers.first + used++);
    shared::Screened screened{number, shared::ParticipantStatus::screened, {{"site", numbers.prefix}, {"diabetes", "no"}},
                              {"yes"}, "coordinator", "", cohort};
    push(h, std::string(shared::kScreenedEvent), json(screened));
    auto sealed = json(shared::RandomizedSealed{arm, {}, std::nullopt}).dump();
    shared::Randomized r;
    r.participant = number;
    r.randomization_number = "R-" + number;
    auto [stratum, slot] = slot_of(h, arm);
    r.stratum = stratum;
    r.slot = slot;
    r.esignature = {"ana", "coordinator", kHubNow, "I confirm the randomization of participant " + number};
    r.sealed = crypto::to_base64(crypto::seal_to(h.unblinding_key().public_key(), crypto::as_bytes(sealed)));
    push(h, std::string(shared::kRandomizedEvent), json(r));
  }
};

Node enroll_capped(hub::HubState& h, const std::string& site) {
  auto inv = hub::invite(h, site, "site", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE(inv.ok());
  Node n;
  auto done = hub::enroll(h, {inv->token, n.key.public_key().hex(), ""}, kHubNow);
  REQUIRE_MESSAGE(done.ok(), done.refusal().message);
  n.id = done->certificate.node_id;
  n.certificate = done->certificate.record;
  test::remember_node_key(n.id, n.key);
  for (const auto& r : h.outbox().after(n.id, 0, 1000)) {
    auto d = sync::parse_directive(r);
    REQUIRE(d.ok());
    if (d->body.type == shared::kGrantNumbersDirective)
      n.numbers = shared::parse_number_range(crypto::to_string(d->body.payload)).value();
  }
  return n;
}

void sync_node(hub::HubState& h, const std::string& node) {
  storage::Transaction tx(h.db());
  auto r = hub::record_consumption(h, node, kHubNow);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  auto t = hub::top_up_grants(h, node, kHubNow);
  REQUIRE_MESSAGE(t.ok(), t.error().message);
  tx.commit();
}

// The node's latest total granted for a cap, from its grant.cap_allowance directives.
std::uint64_t granted(hub::HubState& h, const std::string& node, CapScope scope, const std::string& id) {
  std::uint64_t total = 0;
  for (const auto& r : h.outbox().after(node, 0, 1000)) {
    auto d = sync::parse_directive(r);
    REQUIRE(d.ok());
    if (d->body.type != shared::kGrantCapAllowanceDirective) continue;
    auto g = shared::parse_cap_allowance(test::opened_payload(*d));
    REQUIRE(g.ok());
    for (const auto& a : g->allowances)
      if (a.scope == scope && a.id == id) total = a.granted;
  }
  return total;
}

// used + outstanding <= limit for every capped arm and cohort.
void check_invariant(hub::HubState& h) {
  for (const auto& c : hub::cap_standing(h)) {
    INFO(shared::to_string(c.scope) << " " << c.id << ": used " << c.used << ", outstanding " << c.outstanding);
    CHECK(c.used + c.outstanding <= c.limit);
  }
}

hub::CapStanding standing(hub::HubState& h, CapScope scope, const std::string& id) {
  for (const auto& c : hub::cap_standing(h))
    if (c.scope == scope && c.id == id) return c;
  FAIL("no such cap");
  return {};
}

std::vector<std::string> open_alert_kinds(hub::HubState& h) {
  std::vector<std::string> out;
  for (const auto& a : h.ledger().alerts(true)) out.push_back(a.kind);
  return out;
}

}  // namespace

TEST_CASE("an allowance increment brings the node up to its fair share of the room, never past the room") {
  // Room 10, nothing elsewhere: a node with share 1/2 holds 5 of a target of 7.
  CHECK(hub::allowance_increment({10, 0, 0}, 7, 0.5) == 5);
  // The target bounds it; what the node holds is counted.
  CHECK(hub::allowance_increment({10, 0, 0}, 4, 1.0) == 4);
  CHECK(hub::allowance_increment({10, 0, 3}, 7, 1.0) == 4);
  // Room held elsewhere is not the node's: 10 - 8 = 2 left for it, of which it holds 1.
  CHECK(hub::allowance_increment({10, 8, 1}, 7, 1.0) == 1);
  CHECK(hub::allowance_increment({10, 8, 2}, 7, 1.0) == 0);
  // A share rounds up, so the last place is granted; 3 x 1/3 does not round to 2.
  CHECK(hub::allowance_increment({1, 0, 0}, 7, 0.1) == 1);
  CHECK(hub::allowance_increment({3, 0, 0}, 7, 1.0 / 3.0) == 1);
  // A cap reached or exceeded grants nothing.
  CHECK(hub::allowance_increment({0, 0, 0}, 7, 1.0) == 0);
  CHECK(hub::allowance_increment({-2, 0, 0}, 7, 1.0) == 0);
  CHECK(hub::allowance_increment({5, 7, 0}, 7, 1.0) == 0);
  // Over many cases: never past limit - used - outstanding elsewhere - held, never past the target.
  for (long remaining = -2; remaining <= 12; ++remaining)
    for (long elsewhere = 0; elsewhere <= 12; ++elsewhere)
      for (long held = 0; held <= 12; ++held)
        for (double share : {0.05, 1.0 / 3.0, 0.5, 1.0}) {
          if (elsewhere + held > std::max(remaining, 0L)) continue;  // the invariant the hub keeps
          auto more = static_cast<long>(hub::allowance_increment({remaining, elsewhere, held}, 7, share));
          CHECK(more <= std::max(0L, remaining - elsewhere - held));
          CHECK((more == 0 || held + more <= 7));
        }
}

TEST_CASE("enrollment grants each node an allowance per capped arm and cohort, all within the caps") {
  CappedHub c;
  auto& h = c.hub();
  std::vector<Node> nodes;
  for (const char* site : {"101", "102", "201", "101"}) nodes.push_back(enroll_capped(h, site));
  std::uint64_t arm_total = 0, cohort_total = 0;
  for (const auto& n : nodes) {
    arm_total += granted(h, n.id, CapScope::arm, "B");
    cohort_total += granted(h, n.id, CapScope::cohort, "pk");
  }
  // Room for the first node: its site's share (1/3 of 5, rounded up); the others share what is left.
  CHECK(granted(h, nodes[0].id, CapScope::arm, "B") == 2);
  CHECK(arm_total <= 5);
  CHECK(cohort_total <= 4);
  CHECK(granted(h, nodes[0].id, CapScope::cohort, "main") == 0);  // an uncapped cohort needs none
  CHECK(standing(h, CapScope::arm, "B").outstanding == static_cast<long>(arm_total));
  check_invariant(h);
  // The audit trail counts arm allowances and names no arm.
  for (const auto& e : hub::audit_entries(h.db()))
    if (e.action == "grant.cap_allowance") CHECK(e.new_value.find("B") == std::string::npos);
}

TEST_CASE("top-ups after use never take used and outstanding past a cap, and the cap is reached") {
  CappedHub c;
  auto& h = c.hub();
  auto a = enroll_capped(h, "101");
  auto b = enroll_capped(h, "102");
  // Each node randomizes into B what it holds, then syncs; rounds until the cap is reached.
  for (int round = 0; round < 10; ++round) {
    for (auto* n : {&a, &b}) {
      const long arm_left = hub::allowance_left(h, n->id, CapScope::arm, "B");
      for (long i = 0; i < arm_left; ++i) n->randomize(h, "B");
      const long cohort_left = hub::allowance_left(h, n->id, CapScope::cohort, "pk");
      for (long i = 0; i < cohort_left; ++i) n->randomize(h, "A", "pk");
    }
    for (auto* n : {&a, &b}) {
      sync_node(h, n->id);
      check_invariant(h);
    }
  }
  CHECK(standing(h, CapScope::arm, "B").used == 5);
  CHECK(standing(h, CapScope::cohort, "pk").used == 4);
  CHECK(standing(h, CapScope::arm, "B").outstanding == 0);
  CHECK(hub::allowance_left(h, a.id, CapScope::arm, "B") == 0);
  CHECK(open_alert_kinds(h).empty());
}

TEST_CASE("revocation voids a node's unused allowance, which returns to the other nodes") {
  CappedHub c(6, 100);
  auto& h = c.hub();
  auto a = enroll_capped(h, "101");
  auto b = enroll_capped(h, "102");
  const long held_by_b = hub::allowance_left(h, b.id, CapScope::arm, "B");
  REQUIRE(held_by_b > 0);
  const long before = standing(h, CapScope::arm, "B").outstanding;
  hub::GrantsVoided voided;
  REQUIRE(h.ledger()
              .revoke(b.id, "tablet lost", "admin", kHubNow, [&] { voided = hub::void_node_grants(h, b.id, "admin", kHubNow); })
              .ok());
  CHECK(voided.cap_places >= static_cast<std::uint64_t>(held_by_b));
  CHECK(hub::allowance_left(h, b.id, CapScope::arm, "B") == 0);
  CHECK(standing(h, CapScope::arm, "B").outstanding == before - held_by_b);
  // Node a uses what it holds; its top-up may now take what b held.
  const long held_by_a = hub::allowance_left(h, a.id, CapScope::arm, "B");
  for (long i = 0; i < held_by_a; ++i) a.randomize(h, "B");
  for (int round = 0; round < 6; ++round) {
    sync_node(h, a.id);
    check_invariant(h);
    const long left = hub::allowance_left(h, a.id, CapScope::arm, "B");
    for (long i = 0; i < left; ++i) a.randomize(h, "B");
  }
  sync_node(h, a.id);
  CHECK(standing(h, CapScope::arm, "B").used == 6);
}

TEST_CASE("randomizations that exceed a cap raise one alert naming the cohort and no arm") {
  CappedHub c(2, 2);
  auto& h = c.hub();
  auto a = enroll_capped(h, "101");
  // Events of a node that ignored its allowances: three B participants in pk.
  for (int i = 0; i < 3; ++i) a.randomize(h, "B", "pk");
  sync_node(h, a.id);
  auto alerts = h.ledger().alerts(true);
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].kind == "cap.exceeded");
  CHECK(alerts[0].message.find("cohort 'pk' has 3 randomized participants for a cap of 2") != std::string::npos);
  CHECK(alerts[0].message.find("1 arm cap(s) exceeded (not named") != std::string::npos);
  CHECK(alerts[0].message.find("'B'") == std::string::npos);
  CHECK(alerts[0].message.find(a.numbers.prefix + "-0") == std::string::npos);  // no participant either
  CHECK(standing(h, CapScope::arm, "B").outstanding == 0);
}
