// A node frozen after an equivocation and unfrozen by a signed decision
// (hub/node_decisions.h, hub/ingest.h): the rosters of its site follow.
#include <doctest/doctest.h>

#include "hub/audit.h"
#include "hub/ingest.h"
#include "hub/node_decisions.h"
#include "hub/users.h"
#include "shared/slot_slice.h"  // tests/hub/test_node.h uses it
#include "tests/hub/test_node.h"

using namespace irt;
using test::HubFixture;
using test::kHubNow;
using test::TestNode;

namespace {

// The node ids of the site's nodes in `node_id`'s latest roster.
std::vector<std::string> roster_nodes_of(HubFixture& f, const std::string& node_id) {
  auto rosters = test::directives(f, node_id, "roster");
  REQUIRE_FALSE(rosters.empty());
  std::vector<std::string> out;
  for (const auto& n : rosters.back()["nodes"]) out.push_back(n["node_id"].get<std::string>());
  return out;
}

// A second, different event with the seq of the node's last one, appended with
// the hub's ingest observing, as the sync server does: refused, the node frozen.
void equivocate(HubFixture& f, TestNode& n) {
  n.push(f, shared::kSiteNoteEvent, test::json{{"text", "the fridge was checked"}});
  n.seq = 0;
  n.prev = {};
  auto fork = n.next_event(shared::kSiteNoteEvent, test::json{{"text", "another story"}});
  auto node = f.hub->ledger().find_node(n.id);
  REQUIRE(node);
  auto checked = f.hub->ledger().check_batch(*node, {fork.record});
  REQUIRE(checked.ok());
  hub::Ingest ingest(*f.hub);
  CHECK_FALSE(f.hub->ledger().append(*node, std::move(checked.value()), kHubNow, &ingest).ok());
  REQUIRE(f.hub->ledger().find_node(n.id)->status == sync::NodeStatus::frozen);
}

bool roster_audited(HubFixture& f, const std::string& to_node, const std::string& why) {
  for (const auto& e : hub::audit_entries(f.hub->db()))
    if (e.action == "directive.issued" && e.subject == to_node && e.reason.find(why) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("a node frozen after an equivocation leaves its site's roster and comes back when unfrozen") {
  HubFixture f("packaging/examples/study-minimization.json");  // site 402 has nurses' tablets
  auto site_node = test::enroll(f, "402");
  auto tablet = test::enroll(f, "402", "nurse");
  auto other_site = test::enroll(f, "401");
  CHECK(roster_nodes_of(f, site_node.id) == std::vector<std::string>{site_node.id, tablet.id});
  const auto other_before = f.hub->outbox().last_seq(other_site.id);

  // Frozen at the push that shows the equivocation: the site node no longer offers it for a handover.
  const auto before = f.hub->outbox().last_seq(site_node.id);
  equivocate(f, tablet);
  CHECK(f.hub->outbox().last_seq(site_node.id) == before + 1);
  CHECK(roster_nodes_of(f, site_node.id) == std::vector<std::string>{site_node.id});
  CHECK(roster_audited(f, site_node.id, "node " + tablet.id + " frozen (equivocation at seq 1)"));
  CHECK(f.hub->outbox().last_seq(other_site.id) == other_before);  // another site hears nothing

  // A refused unfreeze (no reason) changes nothing and issues no roster.
  REQUIRE(hub::add_user(*f.hub, {"kim", "admin", {}, "a long enough password"}, crypto::kTest, "admin", kHubNow).ok());
  const hub::Signature kim{"kim", "a long enough password"};
  CHECK_FALSE(hub::unfreeze_node(*f.hub, tablet.id, "", kim, kHubNow).ok());
  CHECK(f.hub->outbox().last_seq(site_node.id) == before + 1);
  CHECK(f.hub->ledger().find_node(tablet.id)->status == sync::NodeStatus::frozen);

  // Unfrozen by a signed decision: both nodes of the site list it again.
  auto unfrozen = hub::unfreeze_node(*f.hub, tablet.id, "evidence reviewed: a restored backup", kim, kHubNow);
  REQUIRE_MESSAGE(unfrozen.ok(), unfrozen.error().message);
  CHECK(roster_nodes_of(f, site_node.id) == std::vector<std::string>{site_node.id, tablet.id});
  CHECK(roster_nodes_of(f, tablet.id) == std::vector<std::string>{site_node.id, tablet.id});
  CHECK(roster_audited(f, site_node.id, "node " + tablet.id + " unfrozen"));
  CHECK(f.hub->outbox().last_seq(other_site.id) == other_before);
}
