// irt-hub verify's checks of the hub's own tables (hub/verify_tables.h): the
// audit trail against its signed chain, and users, alerts and allocations
// rebuilt from the trail and the ledger. Each test edits one table the way an
// insider with database access would (dropping the audit trail's append-only
// triggers first) and checks that verify names the edit; an untouched hub
// after a realistic history verifies. The CLI's exit codes and its message
// for a blinded operator: tests/integration/hub_cli_test.cpp.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "hub/allocations.h"
#include "hub/audit.h"
#include "hub/deviations.h"
#include "hub/kit_decisions.h"
#include "hub/kit_inventory.h"
#include "hub/kit_lists.h"
#include "hub/verify_tables.h"
#include "sync/checkpoint.h"
#include "sync/protocol.h"
#include "tests/hub/hub_fixture.h"
#include "tests/hub/test_node.h"

using namespace irt;
using test::HubFixture;
using test::kHubNow;
using test::TestNode;

namespace {

// A hub with history: users added, disabled, moved; one node enrolled that
// screened and randomized three participants from its slots; an alert; a
// deviation.
struct VerifiedHub {
  HubFixture f;
  TestNode node = test::enroll(f, "101");
  std::vector<std::string> arms;  // of participants 101-001..003

  VerifiedHub() {
    f.add_user("admin.ann", "admin");
    f.add_user("coord.bob", "coordinator", {"101"});
    f.add_user("monitor.cy", "monitor", {"101"});
    REQUIRE(hub::set_user_disabled(*f.hub, "monitor.cy", true, "left the study", {"admin.ann", test::kUserPassword},
                                   kHubNow + 1)
                .ok());
    REQUIRE(hub::set_user_sites(*f.hub, "coord.bob", {"101", "102"}, {"admin.ann", test::kUserPassword}, kHubNow + 2)
                .ok());
    auto g = shared::parse_grant_slots(test::directives(f, node.id, shared::kGrantSlotsDirective).at(0).dump());
    REQUIRE(g.ok());
    const auto& grant = g->grants.at(0);
    for (std::size_t i = 0; i < 3; ++i) {
      const std::string number = "101-00" + std::to_string(i + 1);
      node.push(f, shared::kScreenedEvent, test::screened(number, {{"site", "101"}, {"diabetes", "yes"}}));
      node.push(f, shared::kRandomizedEvent,
                test::from_slot(number, grant, i, {},
                                test::seal(f, shared::RandomizedSealed{grant.slots[i].arm, {}, {}})));
      arms.push_back(grant.slots[i].arm);
    }
    test::consume(f, node.id);
    storage::Transaction tx(f.hub->db());
    f.hub->ledger().raise_node_alert(node.id, "supply.resupply_failed", std::nullopt, "no depot stock", kHubNow + 3);
    REQUIRE(hub::raise_deviation(*f.hub, {hub::deviation_kind::kSupplyShortage, node.id, 2, "", "supply.shortage",
                                          "site 101 could not dispense for want of kits", ""},
                                 kHubNow + 4));
    tx.commit();
  }

  storage::Database& db() { return f.hub->db(); }
  // What an insider does first: the trail's append-only triggers go.
  void drop_audit_triggers() {
    if (db().engine() == storage::Engine::postgresql)
      db().exec("DROP TRIGGER hub_audit_no_change ON hub_audit");
    else
      db().exec("DROP TRIGGER hub_audit_no_update; DROP TRIGGER hub_audit_no_delete");
  }
  std::int64_t audit_id(const std::string& action, const std::string& subject) {
    auto st = db().prepare("SELECT id FROM hub_audit WHERE action = ? AND subject = ? ORDER BY id LIMIT 1");
    st.bind_all(action, subject);
    REQUIRE(st.step());
    return st.int64(0);
  }
  std::vector<std::string> problems() {
    REQUIRE(f.hub->ledger().verify_all().ok());
    return hub::verify_tables(*f.hub).problems;
  }
};

// The one problem expected, containing every one of `parts`.
void check_named(const std::vector<std::string>& problems, const std::vector<std::string>& parts) {
  std::string all;
  for (const auto& p : problems) all += p + "\n";
  INFO(all);
  REQUIRE(!problems.empty());
  bool found = false;
  for (const auto& p : problems) {
    bool every = true;
    for (const auto& part : parts) every = every && p.find(part) != std::string::npos;
    found = found || every;
  }
  CHECK(found);
}

}  // namespace

TEST_CASE("verify passes on an untouched hub after a realistic history") {
  VerifiedHub h;
  auto report = hub::verify_tables(*h.f.hub);
  std::string all;
  for (const auto& p : report.problems) all += p + "\n";
  INFO(all);
  CHECK(report.problems.empty());
  CHECK(report.audit_entries > 10);
  CHECK(h.f.hub->ledger().alerts(false).size() == 1);
  CHECK(hub::allocated_participants(h.db()).size() == 3);
}

TEST_CASE("verify names an allocation whose arm was edited, without naming an arm") {
  VerifiedHub h;
  const std::string other = h.arms[1] == "A" ? "B" : "A";
  h.db().prepare("UPDATE hub_allocations SET arm = ? WHERE participant = '101-002'").bind(1, other).run();
  auto problems = h.problems();
  REQUIRE(problems.size() == 1);
  check_named(problems, {"hub_allocations", "101-002", "arm differs"});
  for (const auto& p : problems)
    for (const std::string arm : {"arm A", "arm B", "Velcardin", "Placebo", "'A'", "'B'"}) CHECK(p.find(arm) == std::string::npos);
}

TEST_CASE("verify names an allocation deleted or taken from another event") {
  VerifiedHub h;
  h.db().exec("DELETE FROM hub_allocations WHERE participant = '101-003'");
  check_named(h.problems(), {"hub_allocations", "101-003", "has no allocation"});
  h.db().exec("UPDATE hub_allocations SET seq = 1 WHERE participant = '101-001'");
  check_named(h.problems(), {"hub_allocations", "101-001", "not a randomization"});
}

TEST_CASE("verify names a user whose role, sites or status was edited") {
  VerifiedHub h;
  h.db().exec("UPDATE hub_users SET role = 'unblinded-statistician' WHERE name = 'coord.bob'");
  check_named(h.problems(), {"hub_users", "coord.bob", "role is unblinded-statistician", "says coordinator"});
  h.db().exec("UPDATE hub_users SET role = 'coordinator' WHERE name = 'coord.bob'");
  CHECK(h.problems().empty());
  h.db().exec("DELETE FROM hub_user_sites WHERE name = 'coord.bob' AND site_id = '102'");
  check_named(h.problems(), {"hub_user_sites", "coord.bob", "sites are 101", "says 101,102"});
  h.db().exec("UPDATE hub_users SET disabled_ms = NULL WHERE name = 'monitor.cy'");
  check_named(h.problems(), {"hub_users", "monitor.cy", "is enabled", "says disabled"});
}

TEST_CASE("verify names a user added by hand, with no audit entry") {
  VerifiedHub h;
  h.db().exec("INSERT INTO hub_users(name, role, password_hash, created_ms, created_by) "
              "VALUES ('mallory', 'admin', 'x', 0, 'nobody')");
  check_named(h.problems(), {"hub_users", "mallory", "no user.added audit entry"});
}

TEST_CASE("verify names a deleted or edited alert") {
  VerifiedHub h;
  h.db().exec("UPDATE ledger_alerts SET kind = 'note'");
  check_named(h.problems(), {"ledger_alerts", "stored as 'note'", "supply.resupply_failed"});
  h.db().exec("DELETE FROM ledger_alerts");
  check_named(h.problems(), {"ledger_alerts", "supply.resupply_failed", "is missing"});
}

TEST_CASE("verify names a deleted audit entry, with or without its seal") {
  VerifiedHub h;
  h.drop_audit_triggers();
  const auto id = h.audit_id("user.disabled", "monitor.cy");
  h.db().prepare("DELETE FROM hub_audit WHERE id = ?").bind(1, id).run();
  auto problems = h.problems();
  check_named(problems, {"audit entry " + std::to_string(id), "was deleted"});
  // The user's status rebuilt from what is left differs too.
  check_named(problems, {"hub_users", "monitor.cy", "is disabled"});
  h.db().prepare("DELETE FROM hub_audit_seals WHERE audit_id = ?").bind(1, id).run();
  check_named(h.problems(), {"missing before audit entry", "deleted with their seals"});
}

TEST_CASE("verify names an edited audit entry") {
  VerifiedHub h;
  h.drop_audit_triggers();
  const auto id = h.audit_id("user.added", "coord.bob");
  h.db().prepare("UPDATE hub_audit SET reason = 'nothing to see' WHERE id = ?").bind(1, id).run();
  check_named(h.problems(), {"audit entry " + std::to_string(id), "user.added coord.bob", "was changed"});
}

TEST_CASE("verify names audit entries swapped in place or inserted by hand") {
  VerifiedHub h;
  h.drop_audit_triggers();
  const auto a = h.audit_id("user.added", "coord.bob");
  const auto b = h.audit_id("user.added", "monitor.cy");
  h.db().prepare("UPDATE hub_audit SET id = -1 WHERE id = ?").bind(1, a).run();
  h.db().prepare("UPDATE hub_audit SET id = ? WHERE id = ?").bind_all(a, b).run();
  h.db().prepare("UPDATE hub_audit SET id = ? WHERE id = -1").bind(1, b).run();
  auto problems = h.problems();
  check_named(problems, {"audit entry " + std::to_string(a), "user.added monitor.cy", "was changed"});
  check_named(problems, {"audit entry " + std::to_string(b), "user.added coord.bob", "was changed"});
  hub::AuditEntry forged{kHubNow, "hub", "user.added", "mallory", "", "", "role admin, sites (none)", ""};
  h.db()
      .prepare("INSERT INTO hub_audit(at_ms, actor, action, subject, reason, old_value, new_value, signature) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .bind_all(forged.at_ms, forged.actor, forged.action, forged.subject, forged.reason, forged.old_value,
                forged.new_value, forged.signature)
      .run();
  check_named(h.problems(), {"user.added mallory", "has no seal"});
}

TEST_CASE("verify names the audit trail's tail cut, seals and all") {
  VerifiedHub h;
  h.drop_audit_triggers();
  auto last = h.db().prepare("SELECT MAX(id) FROM hub_audit");
  REQUIRE(last.step());
  const auto max_id = last.int64(0);
  h.db().prepare("DELETE FROM hub_audit WHERE id > ?").bind(1, max_id - 2).run();
  h.db().prepare("DELETE FROM hub_audit_seals WHERE audit_id > ?").bind(1, max_id - 2).run();
  check_named(h.problems(), {"the audit trail ends at position", "the last 2 were cut"});
}

TEST_CASE("verify names an audit trail re-chained and signed under another key") {
  VerifiedHub h;
  h.drop_audit_triggers();
  const auto id = h.audit_id("user.added", "coord.bob");
  h.db().prepare("UPDATE hub_audit SET reason = 'rewritten' WHERE id = ?").bind(1, id).run();
  // An insider without the hub's key re-chains everything from there with a key of their own.
  auto other = crypto::SigningKey::generate();
  h.db().exec("DELETE FROM hub_audit_seals");
  h.db().exec("UPDATE hub_audit_head SET entries = 0, hash = '', hub_signature = '', legacy_upto = 0");
  {
    std::vector<std::pair<std::int64_t, hub::AuditEntry>> rows;
    auto st = h.db().prepare(
        "SELECT id, at_ms, actor, action, subject, reason, old_value, new_value, signature FROM hub_audit ORDER BY id");
    while (st.step())
      rows.push_back({st.int64(0), {st.int64(1), st.text(2), st.text(3), st.text(4), st.text(5), st.text(6),
                                    st.text(7), st.text(8)}});
    h.db().exec("DELETE FROM hub_audit");
    hub::AuditSigner forger(h.db(), other);
    for (const auto& [row_id, e] : rows) hub::record_audit(h.db(), e);
  }
  check_named(h.problems(), {"not signed by this hub's key"});
}

TEST_CASE("entries written before the trail was chained are sealed once, when the hub opens with its key") {
  HubFixture f;
  f.add_user("admin.ann", "admin");
  auto& db = f.hub->db();
  // The trail as an earlier release left it: no seal, an unsigned head.
  db.exec("DELETE FROM hub_audit_seals");
  db.exec("UPDATE hub_audit_head SET entries = 0, hash = '', hub_signature = '', "
          "legacy_upto = (SELECT MAX(id) FROM hub_audit)");
  CHECK_FALSE(hub::verify_tables(*f.hub).problems.empty());
  f.hub.reset();
  auto reopened = hub::HubState::open(f.dir / "hub", test::kHubPassphrase);
  REQUIRE_MESSAGE(reopened.ok(), reopened.error().message);
  f.hub = std::move(reopened.value());
  auto report = hub::verify_tables(*f.hub);
  CHECK(report.problems.empty());
  CHECK(report.audit_entries >= 2);
  // An entry inserted by hand afterwards is never sealed by a later open.
  f.hub->db().exec("INSERT INTO hub_audit(at_ms, actor, action, subject, reason, old_value, new_value, signature) "
                   "VALUES (0, 'x', 'note', 'x', '', '', '', '')");
  f.hub.reset();
  auto again = hub::HubState::open(f.dir / "hub", test::kHubPassphrase);
  REQUIRE(again.ok());
  f.hub = std::move(again.value());
  check_named(hub::verify_tables(*f.hub).problems, {"note x", "has no seal"});
}

TEST_CASE("verify names a row of the randomization list edited, and a seed replaced") {
  VerifiedHub h;
  // The second slot's arm flipped in the stored list.
  auto st = h.db().prepare("SELECT list_csv FROM hub_randomization_lists WHERE study_version = 1");
  REQUIRE(st.step());
  auto csv = st.text(0);
  const auto line2 = csv.find('\n', csv.find('\n') + 1) + 1;  // the start of line 3
  const auto end = csv.find('\n', line2);
  REQUIRE((csv[end - 1] == 'A' || csv[end - 1] == 'B'));
  csv[end - 1] = csv[end - 1] == 'A' ? 'B' : 'A';
  h.db().prepare("UPDATE hub_randomization_lists SET list_csv = ? WHERE study_version = 1").bind(1, csv).run();
  auto problems = h.problems();
  REQUIRE(problems.size() == 1);
  check_named(problems, {"hub_randomization_lists", "study version 1", "line 3 of the stored list differs"});
  CHECK(problems[0].find("arm") == std::string::npos);

  auto seed = crypto::random_bytes(32);
  h.db().prepare("UPDATE hub_randomization_lists SET seed = ? WHERE study_version = 1").bind(1, storage::BlobView(seed)).run();
  problems = h.problems();
  check_named(problems, {"hub_randomization_lists", "study version 1", "stored list hash differs"});
  check_named(problems, {"hub_randomization_lists", "the audit trail recorded"});
}

TEST_CASE("verify names a deviation deleted, edited or acknowledged by hand") {
  VerifiedHub h;
  h.db().exec("UPDATE hub_deviations SET status = 'acknowledged', acknowledged_by = 'admin.ann'");
  check_named(h.problems(), {"hub_deviations", "status is 'acknowledged'", "says 'open'"});
  h.db().exec("UPDATE hub_deviations SET status = 'open', acknowledged_by = '', summary = 'nothing happened'");
  check_named(h.problems(), {"hub_deviations", "summary is 'nothing happened'"});
  h.db().exec("DELETE FROM hub_deviations");
  check_named(h.problems(), {"hub_deviations", "supply_shortage from event 2", "is missing"});
}

namespace {

// No problem line names a kit type or a lot (the operator may be blinded; a lot can name a type).
void check_no_type_or_lot(const std::vector<std::string>& problems) {
  for (const auto& p : problems)
    for (const std::string word : {"VLC25", "PBO", "Velcardin", "Placebo", "L01", "L02", "L03", "L-ALL"})
      CHECK_MESSAGE(p.find(word) == std::string::npos, p);
}

std::string some_kit(storage::Database& db, const std::string& where) {
  auto st = db.prepare("SELECT kit_number FROM hub_kits WHERE " + where + " ORDER BY kit_number LIMIT 1");
  REQUIRE(st.step());
  return st.text(0);
}

}  // namespace

TEST_CASE("verify names a kit whose type, lot, list or expiry was edited, never naming a type or a lot") {
  VerifiedHub h;
  const auto at_depot = some_kit(h.db(), "custody_kind = 'depot'");
  const auto at_node = some_kit(h.db(), "custody_kind = 'node'");
  h.db().prepare("UPDATE hub_kits SET kit_type = CASE WHEN kit_type = 'PBO' THEN 'VLC25' ELSE 'PBO' END "
                 "WHERE kit_number = ?").bind(1, at_node).run();
  auto problems = h.problems();
  REQUIRE(problems.size() == 1);
  check_named(problems, {"hub_kits", "kit " + at_node, "kit_type differs"});
  check_no_type_or_lot(problems);
  h.db().prepare("UPDATE hub_kits SET kit_type = CASE WHEN kit_type = 'PBO' THEN 'VLC25' ELSE 'PBO' END "
                 "WHERE kit_number = ?").bind(1, at_node).run();
  CHECK(h.problems().empty());

  h.db().prepare("UPDATE hub_kits SET lot = CASE WHEN lot = 'L01' THEN 'L02' ELSE 'L01' END WHERE kit_number = ?")
      .bind(1, at_depot).run();
  problems = h.problems();
  check_named(problems, {"hub_kits", "kit " + at_depot, "lot differs"});
  check_no_type_or_lot(problems);
  h.db().prepare("UPDATE hub_kits SET lot = CASE WHEN lot = 'L01' THEN 'L02' ELSE 'L01' END WHERE kit_number = ?")
      .bind(1, at_depot).run();

  h.db().prepare("UPDATE hub_kits SET expiry = '2099-12-31' WHERE kit_number = ?").bind(1, at_depot).run();
  check_named(h.problems(), {"hub_kits", "kit " + at_depot, "expiry differs from its lot's"});
}

TEST_CASE("verify names a kit added by hand or deleted, and a kit list whose kits were edited to match") {
  VerifiedHub h;
  const auto kit = some_kit(h.db(), "custody_kind = 'depot'");
  h.db().exec("INSERT INTO hub_kits(kit_number, list_id, kit_type, lot, expiry, custody_kind, custody_id, status) "
              "SELECT '99999999', list_id, kit_type, lot, expiry, custody_kind, custody_id, status FROM hub_kits "
              "WHERE kit_number = '" + kit + "'");
  check_named(h.problems(), {"hub_kits", "kit 99999999", "in no kit list"});
  h.db().exec("DELETE FROM hub_kits WHERE kit_number = '99999999'");
  h.db().prepare("DELETE FROM hub_kits WHERE kit_number = ?").bind(1, kit).run();
  check_named(h.problems(), {"hub_kits", "kit " + kit, "is missing"});
  // An insider who edits the kit list's copy as well is named by the hash the signed trail recorded.
  h.db().prepare("DELETE FROM hub_kit_list_kits WHERE kit_number = ?").bind(1, kit).run();
  auto problems = h.problems();
  REQUIRE(problems.size() == 1);
  check_named(problems, {"hub_kit_list_kits", "kit list 1", "no longer hash to what the audit trail recorded"});
}

TEST_CASE("an imported kit list verifies, and a kit's type edited in it and in its copy is named") {
  VerifiedHub h;
  const std::string csv = "kit_number,kit_type,lot,depot\n3001,VLC25,L01,EU-01\n3002,PBO,L01,EU-01\n";
  {
    storage::Transaction tx(h.db());
    auto r = hub::import_kit_list(h.db(), h.f.hub->study(), csv, "vendor.csv", "tester", kHubNow + 5);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    tx.commit();
  }
  CHECK(h.problems().empty());
  auto entries = hub::audit_entries(h.db(), {std::nullopt, "", "vendor.csv"});
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].new_value.find("kit list 2, kits hash ") != std::string::npos);
  h.db().exec("UPDATE hub_kits SET kit_type = 'PBO' WHERE kit_number = '3001'");
  h.db().exec("UPDATE hub_kit_list_kits SET kit_type = 'PBO' WHERE kit_number = '3001'");
  auto problems = h.problems();
  REQUIRE(problems.size() == 1);
  check_named(problems, {"hub_kit_list_kits", "kit list 2"});
  check_no_type_or_lot(problems);
}

namespace {

// Kits through a realistic life at node 101 of a VerifiedHub: its initial
// shipment received, one kit dispensed, one quarantined by an excursion and
// rejected by a signed decision, one handed over to a nurse's tablet, one
// dispensed and returned.
struct KitLives {
  VerifiedHub h;
  TestNode tablet = test::enroll(h.f, "101", "nurse");
  std::string dispensed, rejected, handed_over, returned, at_depot;

  KitLives() {
    auto kits = hub::kits_held_by(h.db(), "node", h.node.id);
    REQUIRE(kits.size() >= 4);
    dispensed = kits[0].number, rejected = kits[1].number, handed_over = kits[2].number, returned = kits[3].number;
    shared::ShipmentReceived r{kits[0].shipment_id, {}, {}, "FRIDGE-1"};
    for (const auto& k : kits) r.kits.push_back({k.number, shared::KitStatus::received});
    h.node.push(h.f, shared::kShipmentReceivedEvent, r);
    for (const auto& [kit, participant] : {std::pair{dispensed, "101-001"}, std::pair{returned, "101-002"}}) {
      shared::Dispensed d;
      d.participant = participant;
      d.visit = "V1";
      d.kits = {kit};
      d.sealed = test::seal(h.f, shared::KitTypesSealed{});
      h.node.push(h.f, shared::kDispensedEvent, d);
    }
    h.node.push(h.f, shared::kKitReturnedEvent, shared::KitReturned{returned, "101-002", 7, "V2"});
    h.node.push(h.f, shared::kTemperatureExcursionEvent,
                shared::TemperatureExcursion{{rejected}, "FRIDGE-1", 8.5, 27.25, 190, "power cut"});
    h.node.push(h.f, shared::kKitHandoverRequestedEvent,
                shared::KitHandoverRequested{tablet.id, {handed_over}, "home visits", "coordinator"});
    test::consume(h.f, h.node.id);
    h.f.add_user("supply.sam", "supply-manager");
    REQUIRE(hub::decide_kits(*h.f.hub, false, {rejected}, "out of stability", {"supply.sam", test::kUserPassword},
                             kHubNow + 10)
                .ok());
    at_depot = some_kit(h.db(), "custody_kind = 'depot'");
  }
  void set(const std::string& assignments, const std::string& kit) {
    h.db().prepare("UPDATE hub_kits SET " + assignments + " WHERE kit_number = ?").bind(1, kit).run();
  }
};

}  // namespace

TEST_CASE("verify passes on kits through a realistic life, each state change audited as kit.state") {
  KitLives k;
  auto problems = k.h.problems();
  std::string all;
  for (const auto& p : problems) all += p + "\n";
  INFO(all);
  CHECK(problems.empty());
  auto& db = k.h.db();
  CHECK(hub::find_kit(db, k.dispensed)->status == shared::KitStatus::dispensed);
  CHECK(hub::find_kit(db, k.rejected)->status == shared::KitStatus::rejected);
  CHECK(hub::find_kit(db, k.handed_over)->custody_id == k.tablet.id);
  CHECK(hub::find_kit(db, k.returned)->status == shared::KitStatus::returned);
  // The dispensed kit: shipped, received, dispensed; each entry names the kit, never its type or lot.
  auto entries = hub::audit_entries(db, {std::nullopt, "", k.dispensed});
  std::vector<std::string> states;
  for (const auto& e : entries)
    if (e.action == "kit.state") states.push_back(e.new_value);
  REQUIRE(states.size() == 3);
  CHECK(states[0] == "status shipped, custody node " + k.h.node.id);
  CHECK(states[1] == "status received, custody node " + k.h.node.id);
  CHECK(states[2] == "status dispensed, custody node " + k.h.node.id + ", participant 101-001");
  check_no_type_or_lot(states);
}

TEST_CASE("verify names a kit whose status or custody was edited, and a dispensed kit put back in stock") {
  KitLives k;
  const std::string says = ", the signed audit trail says ";
  // A rejected kit made dispensable again.
  k.set("status = 'received'", k.rejected);
  auto problems = k.h.problems();
  REQUIRE(problems.size() == 1);
  check_named(problems, {"hub_kits: kit " + k.rejected + ": status is received" + says + "rejected"});
  k.set("status = 'rejected'", k.rejected);
  CHECK(k.h.problems().empty());

  // A kit handed over to the tablet given back to the site node.
  k.set("custody_id = '" + k.h.node.id + "'", k.handed_over);
  problems = k.h.problems();
  REQUIRE(problems.size() == 1);
  check_named(problems, {"kit " + k.handed_over + ": custody is node " + k.h.node.id + says + "node " + k.tablet.id});
  k.set("custody_id = '" + k.tablet.id + "'", k.handed_over);

  // A dispensed kit put back in stock, its participant erased.
  k.set("status = 'received', participant = ''", k.dispensed);
  problems = k.h.problems();
  REQUIRE(problems.size() == 2);
  check_named(problems, {"kit " + k.dispensed + ": status is received" + says + "dispensed"});
  check_named(problems, {"kit " + k.dispensed + ": participant is none" + says + "101-001"});
  k.set("status = 'dispensed', participant = '101-001'", k.dispensed);
  CHECK(k.h.problems().empty());

  // A returned kit's status, and a depot's kit moved to a node with no shipment.
  k.set("status = 'destroyed'", k.returned);
  check_named(k.h.problems(), {"kit " + k.returned + ": status is destroyed" + says + "returned"});
  k.set("status = 'returned'", k.returned);
  k.set("custody_kind = 'node', custody_id = '" + k.h.node.id + "', status = 'received'", k.at_depot);
  problems = k.h.problems();
  REQUIRE(problems.size() == 2);
  check_named(problems, {"kit " + k.at_depot + ": custody is node " + k.h.node.id + says + "depot"});
  check_named(problems, {"kit " + k.at_depot + ": status is received" + says + "available"});
  check_no_type_or_lot(problems);
}

TEST_CASE("a kit's state edited and its kit.state entry edited to match is named by the audit trail's chain") {
  KitLives k;
  k.h.drop_audit_triggers();
  k.set("status = 'received', participant = ''", k.dispensed);
  k.h.db().prepare("UPDATE hub_audit SET new_value = ? WHERE action = 'kit.state' AND subject = ? "
                   "AND new_value LIKE 'status dispensed%'")
      .bind_all("status received, custody node " + k.h.node.id, k.dispensed)
      .run();
  REQUIRE(k.h.db().changes() == 1);
  // The kit now matches its (edited) newest entry; the entry's seal names the edit.
  check_named(k.h.problems(), {"kit.state " + k.dispensed, "was changed"});
}


TEST_CASE("a hub upgraded to kit state checks starts each kit moved before them from its state at the upgrade") {
  KitLives k;
  // A kit an earlier release moved, with no kit.state entry: named until the upgrade copies its state.
  k.set("custody_kind = 'node', custody_id = '" + k.h.node.id + "', status = 'received'", k.at_depot);
  check_named(k.h.problems(), {"kit " + k.at_depot + ": custody is node " + k.h.node.id});
  k.h.db().exec("DROP TABLE hub_kit_state_baseline");
  k.h.db().exec("UPDATE schema_version SET version = 4 WHERE component = 'hub.kits'");
  REQUIRE(hub::migrate_kit_inventory(k.h.db()).ok());
  CHECK(k.h.problems().empty());
  // The copy is where the kit starts: an edit after it is named.
  k.set("status = 'dispensed', participant = '101-003'", k.at_depot);
  check_named(k.h.problems(), {"kit " + k.at_depot + ": status is dispensed, the signed audit trail says received"});
}

TEST_CASE("verify names a lease deleted or extended by hand") {
  VerifiedHub h;
  auto count = h.db().prepare("SELECT count(*) FROM hub_leases WHERE node_id = ?");
  count.bind(1, h.node.id);
  REQUIRE(count.step());
  REQUIRE(count.int64(0) >= 1);
  h.db().prepare("UPDATE hub_leases SET until_ms = until_ms + 86400000 WHERE node_id = ? AND lease_id = 1")
      .bind(1, h.node.id).run();
  check_named(h.problems(), {"hub_leases", "node " + h.node.id + " lease 1", "its directive says"});
  h.db().prepare("DELETE FROM hub_leases WHERE node_id = ? AND lease_id = 1").bind(1, h.node.id).run();
  check_named(h.problems(), {"hub_leases", "node " + h.node.id + " lease 1", "is missing"});
}

TEST_CASE("verify names a number range moved or added by hand") {
  VerifiedHub h;
  h.db().prepare("UPDATE hub_number_ranges SET first = first + 5 WHERE node_id = ? AND range_id = 1")
      .bind(1, h.node.id).run();
  check_named(h.problems(), {"hub_number_ranges", "node " + h.node.id + " range 1", "its directive says"});
  h.db().prepare("UPDATE hub_number_ranges SET first = first - 5 WHERE node_id = ? AND range_id = 1")
      .bind(1, h.node.id).run();
  CHECK(h.problems().empty());
  h.db().prepare("INSERT INTO hub_number_ranges(node_id, range_id, site_id, first, last, digits, issued_ms) "
                 "VALUES (?, 99, '101', 900, 999, 3, 0)").bind(1, h.node.id).run();
  check_named(h.problems(), {"hub_number_ranges", "range 99", "added by hand"});
}

TEST_CASE("verify names a slot whose state or owner was edited, one added by hand, and one deleted") {
  VerifiedHub h;
  auto g = shared::parse_grant_slots(test::directives(h.f, h.node.id, shared::kGrantSlotsDirective).at(0).dump());
  REQUIRE(g.ok());
  const auto stratum = static_cast<std::int64_t>(g->grants.at(0).stratum);
  const auto used = static_cast<std::int64_t>(g->grants.at(0).slots.at(0).slot);  // 101-001's
  const auto free = static_cast<std::int64_t>(g->grants.at(0).slots.back().slot);  // one of 4, 3 used
  const std::string at = "stratum " + std::to_string(stratum) + " slot ";
  auto set = [&](const char* sql, std::int64_t slot) {
    h.db().prepare(sql).bind_all(stratum, slot).run();
  };
  // A used slot made free again, so that it could be granted twice.
  set("UPDATE hub_slice_slots SET state = 'granted' WHERE stratum = ? AND slot = ?", used);
  check_named(h.problems(), {"hub_slice_slots", at + std::to_string(used), "granted by node " + h.node.id,
                             "say used by node " + h.node.id});
  set("UPDATE hub_slice_slots SET state = 'used' WHERE stratum = ? AND slot = ?", used);
  CHECK(h.problems().empty());
  // A free slot given to another node.
  set("UPDATE hub_slice_slots SET node_id = '101-N9' WHERE stratum = ? AND slot = ?", free);
  check_named(h.problems(), {at + std::to_string(free), "granted by node 101-N9", "say granted by node " + h.node.id});
  // Deleted: the slot looks never granted, and could be granted again.
  set("DELETE FROM hub_slice_slots WHERE stratum = ? AND slot = ?", free);
  check_named(h.problems(), {at + std::to_string(free), "is missing"});
  // Added by hand.
  h.db().prepare("INSERT INTO hub_slice_slots(study_version, stratum, slot, state, node_id) "
                 "SELECT study_version, stratum, 9999, 'granted', node_id FROM hub_slice_slots WHERE stratum = ? AND slot = ?")
      .bind_all(stratum, used)
      .run();
  check_named(h.problems(), {at + "9999", "added by hand"});
}

TEST_CASE("verify names a directive edited or deleted in the outbox") {
  VerifiedHub h;
  auto st = h.db().prepare("SELECT max(seq) FROM hub_directives WHERE node_id = ?");
  st.bind(1, h.node.id);
  REQUIRE(st.step());
  const auto last = st.int64(0);
  REQUIRE(last > 2);
  h.db().prepare("UPDATE hub_directives SET type = 'note' WHERE node_id = ? AND seq = 2").bind(1, h.node.id).run();
  check_named(h.problems(), {"hub_directives", "node " + h.node.id + " directive 2", "differs from the signed record"});
  h.db().prepare("DELETE FROM hub_directives WHERE node_id = ? AND seq = 2").bind(1, h.node.id).run();
  check_named(h.problems(), {"hub_directives", "directive(s) 2 to 2 are missing"});
}

TEST_CASE("verify names an audit trail restored whole to an earlier copy, from the head a later checkpoint recorded") {
  VerifiedHub h;
  // The trail as a backup holds it: its head, signed by the hub.
  auto head = h.db().prepare("SELECT entries, hash, hub_signature FROM hub_audit_head WHERE id = 1");
  REQUIRE(head.step());
  const auto entries = head.int64(0);
  const std::string hash = head.text(1), signature = head.text(2);
  // Later: a user added, then a push whose checkpoint commits to the longer trail.
  h.f.add_user("extra.eve", "monitor", {"101"});
  h.node.push(h.f, shared::kScreenedEvent, test::screened("101-004", {{"site", "101"}, {"diabetes", "no"}}));
  auto cp = sync::open_checkpoint(h.f.hub->ledger().latest_checkpoint(), sync::kCheckpointKeyName,
                                  h.f.hub->signing_key().public_key());
  REQUIRE(cp);
  REQUIRE(cp->audit);
  CHECK(static_cast<std::int64_t>(cp->audit->entries) > entries);
  CHECK(h.problems().empty());
  // The insider puts the earlier trail back: entries, seals and signed head.
  h.drop_audit_triggers();
  h.db().prepare("DELETE FROM hub_audit WHERE id IN (SELECT audit_id FROM hub_audit_seals WHERE seq > ?)")
      .bind(1, entries).run();
  h.db().prepare("DELETE FROM hub_audit_seals WHERE seq > ?").bind(1, entries).run();
  h.db().prepare("UPDATE hub_audit_head SET entries = ?, hash = ?, hub_signature = ? WHERE id = 1")
      .bind_all(entries, hash, signature).run();
  std::uint64_t checked = 0;
  CHECK(hub::verify_audit(h.db(), h.f.hub->signing_key().public_key(), checked).empty());  // the chain alone holds
  check_named(h.problems(), {"the audit trail holds " + std::to_string(entries) + " entries",
                             "recorded " + std::to_string(cp->audit->entries), "restored from an earlier copy"});
}
