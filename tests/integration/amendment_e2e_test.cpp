// End to end: `irt-hub amend` against a running hub (real irt-hub serve and
// irt-node processes over loopback). Example 1 is amended to its version 2
// while a node of site 101 is offline; the site version 2 adds (103) is
// invited, its first node enrolled, and a participant screened, randomized
// and given kits there at once; the offline node keeps working under version
// 1 and moves to version 2 at its next sync. Every randomization event says
// which version it was made under, at the node and in the hub's ledger.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "node/node_state.h"
#include "node/site_operations.h"
#include "shared/event_payloads.h"
#include "storage/database.h"
#include "sync/event.h"
#include "tests/support/cluster.h"
#include "tests/support/site_session.h"

using namespace irt;
using nlohmann::json;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kPassword = "site-coordinator-password";
const std::string kManagerPassword = "study-manager-password";

// irt-hub study-versions read by the study manager (manage_study).
test::CommandResult versions_as(HubProcess& hub, std::vector<std::string> extra) {
  std::vector<std::string> args = {"study-versions", "--reader", "manager.sam"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = hub.cli(args, kManagerPassword + "\n");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return r;
}

std::unique_ptr<node::NodeState> open_node(NodeDir& n) {
  auto state = node::NodeState::open(n.data(), test::kNodePassphrase);
  REQUIRE_MESSAGE(state.ok(), state.error().message);
  return std::move(state.value());
}

int study_version(NodeDir& n) { return open_node(n)->domain().study()->version; }

struct Randomized {
  std::string number;
  json event;                    // participant.randomized
  std::vector<std::string> kits; // dispensed at randomization
};

// Receives what arrived, then screens and randomizes one participant (kits dispensed at V1), offline.
Randomized randomize_one(NodeDir& n, const std::string& user, const std::string& site) {
  test::SiteSession session(n, user, kPassword);
  auto& s = *session.state;
  session.receive_all();
  auto number = session.screen({{"diabetes", "no"}});
  CHECK(number.rfind(site + "-", 0) == 0);
  auto r = session.ops->randomize(session.actor, number, session.password);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  auto e = sync::parse_event(*s.log().record(r->event_seq));
  REQUIRE(e.ok());
  CHECK(e->body.type == "participant.randomized");
  return {number, json::parse(crypto::to_string(e->body.payload)), r->kits};
}

// The study version of each participant.randomized event the hub holds from a node, in order.
std::vector<int> hub_randomization_versions(HubProcess& hub, const std::string& node_id) {
  auto db = hub.database();
  auto st = db.prepare("SELECT record FROM ledger_events WHERE node_id = ? ORDER BY seq");
  st.bind(1, node_id);
  std::vector<int> out;
  while (st.step()) {
    auto e = sync::parse_event(st.blob(0));
    REQUIRE(e.ok());
    if (e->body.type != "participant.randomized") continue;
    auto v = shared::parse_event_study_version(crypto::to_string(e->body.payload));
    REQUIRE(v.ok());
    out.push_back(v->value_or(0));
  }
  return out;
}

}  // namespace

TEST_CASE("an amendment adds a site that randomizes at once, and an offline node moves to it at its next sync") {
  HubProcess hub;
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "101", kPassword);
  hub.add_user("manager.sam", "study-manager", "", kManagerPassword);
  NodeDir a(hub, "101");
  sync_ok(a);  // the roster with ana
  const std::string node_a = open_node(a)->enrollment().node_id;
  CHECK(randomize_one(a, "coordinator.ana", "101").event["study_version"] == 1);

  const std::string v2 = test::source_path("packaging/examples/study-blocks-v2.json");
  const std::vector<std::string> amend = {"amend", "--study", v2, "--user", "manager.sam", "--reason",
                                          "site 103 joins (protocol amendment 1)"};
  // Site 103 does not exist yet.
  CHECK(hub.cli({"invite", "--site", "103", "--user", test::kHubAdmin}, test::kHubAdminPassword + std::string("\n"))
            .exit_code != 0);
  // A dry run prints the diff and the verdict, and changes nothing.
  auto dry = amend;
  dry.push_back("--dry-run");
  auto planned = hub.cli(dry, kManagerPassword + "\n");
  REQUIRE_MESSAGE(planned.exit_code == 0, planned.err);
  CHECK(planned.out.find("sites: added 103 (Hôpital Nord, Marseille, FR)") != std::string::npos);
  CHECK(planned.out.find("visits[V3].window_after: 3 -> 5") != std::string::npos);
  CHECK(planned.out.find("verdict: acceptable") != std::string::npos);
  CHECK(versions_as(hub, {}).out.find("version 2") == std::string::npos);
  // A wrong password changes nothing either.
  auto unsigned_ = hub.cli(amend, "not the password\n");
  CHECK(unsigned_.exit_code != 0);
  CHECK(unsigned_.err.find("signature was refused") != std::string::npos);
  CHECK(versions_as(hub, {}).out.find("version 2") == std::string::npos);

  auto done = hub.cli(amend, kManagerPassword + "\n");
  REQUIRE_MESSAGE(done.exit_code == 0, done.err);
  CHECK(done.out.find("is now at version 2 (was 1), approved by manager.sam; study.config issued to 1 node") !=
        std::string::npos);
  auto versions = versions_as(hub, {});
  CHECK(versions.out.find("version 2 (current)") != std::string::npos);
  CHECK(versions.out.find("by manager.sam  reason: site 103 joins (protocol amendment 1)") != std::string::npos);
  CHECK(json::parse(versions_as(hub, {"--version", "2"}).out)["version"] == 2);

  // Node a has not synced: it keeps working under version 1.
  CHECK(study_version(a) == 1);
  CHECK(randomize_one(a, "coordinator.ana", "101").event["study_version"] == 1);

  // The new site is invited, its first node enrolled against the running hub, and it randomizes at once.
  hub.add_user("coordinator.cleo", "coordinator", "103", kPassword);
  NodeDir c(hub, "103");
  CHECK(study_version(c) == 2);
  auto first = randomize_one(c, "coordinator.cleo", "103");
  CHECK(first.number == "103-001");
  CHECK(first.event["study_version"] == 2);
  CHECK(first.event["stratum_label"] == "site=103;diabetes=no");
  CHECK(first.kits.size() == 1);  // V1 dispenses one kit
  sync_ok(c);

  // At its next sync node a moves to version 2; what it recorded offline stays under version 1.
  sync_ok(a);
  CHECK(study_version(a) == 2);
  CHECK(randomize_one(a, "coordinator.ana", "101").event["study_version"] == 2);
  sync_ok(a);
  CHECK(hub_randomization_versions(hub, node_a) == std::vector<int>{1, 1, 2});
  auto db = hub.database();
  auto alerts = db.prepare("SELECT count(*) FROM ledger_alerts");
  REQUIRE(alerts.step());
  CHECK(alerts.int64(0) == 0);
  auto allocated = db.prepare("SELECT count(*) FROM hub_allocations");
  REQUIRE(allocated.step());
  CHECK(allocated.int64(0) == 4);
}
