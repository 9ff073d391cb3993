// End to end, the lost tablet (docs/operations.md): a site node with a
// randomized participant is revoked; its participants are re-homed to a
// replacement node of the same site, which continues their visits from its own
// stock by their arm; the kits the lost node held stay lost_with_node (missing
// pending recovery); when the lost node comes back and pushes, its events are
// kept as evidence, never recorded, consume nothing, and raise one deviation.
// Real hub and node processes over loopback, on both hub engines.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "sync/hlc.h"
#include "tests/support/cluster.h"
#include "tests/support/site_session.h"

using namespace irt;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kLostTabletPassword = "lost-tablet-password";

}  // namespace

TEST_CASE("a lost tablet's participants are re-homed to its replacement, which continues their visits, and its late events are kept as evidence only") {
  HubProcess hub;
  hub.add_user("coordinator.ana", "coordinator", "101", kLostTabletPassword);
  hub.add_user("pharmacist.phil", "pharmacist", "101", kLostTabletPassword);
  hub.add_user("manager.ines", "study-manager", "", kLostTabletPassword);
  NodeDir lost(hub, "101");
  test::sync_ok(lost);

  std::string participant, v1_kit, lost_id;
  {
    test::SiteSession s(lost, "coordinator.ana", kLostTabletPassword);
    lost_id = s.state->enrollment().node_id;
    s.receive_all();
    participant = s.screen({{"diabetes", "yes"}});
    auto r = s.ops->randomize(s.actor, participant, s.password);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    const auto* p = s.state->domain().find_participant(participant);
    REQUIRE(p->visits.size() == 1);
    REQUIRE(p->visits[0].kits.size() == 1);
    v1_kit = p->visits[0].kits[0];
  }
  test::sync_ok(lost);
  const std::string lost_events = "FROM ledger_events WHERE node_id = '" + lost_id + "'";
  const auto lost_events_before = test::hub_count(hub, "SELECT count(*) " + lost_events);

  // The tablet is lost: a replacement is enrolled at the site, the old one revoked.
  NodeDir replacement(hub, "101");
  test::sync_ok(replacement);
  std::string replacement_id;
  {
    test::SiteSession t(replacement, "coordinator.ana", kLostTabletPassword);
    replacement_id = t.state->enrollment().node_id;
    t.receive_all();
  }
  test::sync_ok(replacement);
  const auto held_by_lost = test::hub_count(
      hub, "SELECT count(*) FROM hub_kits WHERE custody_id = '" + lost_id + "' AND status <> 'dispensed'");
  REQUIRE(held_by_lost > 0);
  auto early = hub.cli({"transfer", "rehome", "--from", lost_id, "--to", replacement_id, "--reason", "tablet lost",
                        "--user", "manager.ines"},
                       kLostTabletPassword + "\n");
  CHECK(early.exit_code == 1);  // not revoked yet: conflict
  CHECK(early.err.find("revoked node only") != std::string::npos);
  auto revoked = hub.cli({"revoke", "--node", lost_id, "--reason", "tablet lost on the ward", "--user", test::kHubAdmin},
                         std::string(test::kHubAdminPassword) + "\n");
  REQUIRE_MESSAGE(revoked.exit_code == 0, revoked.err);
  CHECK(test::hub_count(hub, "SELECT count(*) FROM hub_kits WHERE custody_id = '" + lost_id +
                                 "' AND status = 'lost_with_node'") == held_by_lost);

  auto rehomed = hub.cli({"transfer", "rehome", "--from", lost_id, "--to", replacement_id, "--reason",
                          "tablet lost on the ward", "--user", "manager.ines"},
                         kLostTabletPassword + "\n");
  REQUIRE_MESSAGE(rehomed.exit_code == 0, (rehomed.out + rehomed.err));
  CHECK(rehomed.out.find("1 participants of node " + lost_id + " re-homed") != std::string::npos);
  CHECK(test::hub_count(hub, "SELECT count(*) FROM hub_kits WHERE kit_number = '" + v1_kit + "' AND custody_id = '" +
                                 replacement_id + "' AND status = 'dispensed'") == 1);
  test::sync_ok(replacement);

  // The replacement serves the participant: its record, its V1 kit, and V2 from its own stock by the same arm.
  {
    test::SiteSession t(replacement, "pharmacist.phil", kLostTabletPassword);
    const auto* p = t.state->domain().find_participant(participant);
    REQUIRE(p);
    CHECK(p->status == shared::ParticipantStatus::randomized);
    REQUIRE(p->visits.size() == 1);
    const auto* k1 = t.state->domain().find_kit(v1_kit);
    REQUIRE(k1);
    CHECK(k1->status == shared::KitStatus::dispensed);
    node::SiteOperations later(*t.state, [] { return sync::system_millis() + 28LL * 86400000; });
    node::DispenseRequest d;
    d.visit = "V2";
    auto given = later.dispense(t.actor, participant, d);
    REQUIRE_MESSAGE(given.ok(), given.error().message);
    REQUIRE(given->kits.size() == 1);
    CHECK(t.state->domain().find_kit(given->kits[0])->kit_type == k1->kit_type);
  }
  test::sync_ok(replacement);

  // The lost tablet comes back and pushes what it recorded offline: kept as evidence, never recorded.
  {
    test::SiteSession s(lost, "coordinator.ana", kLostTabletPassword);
    auto screened = s.screen({{"diabetes", "no"}});
    CHECK_FALSE(screened.empty());
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto r = lost.sync();
    CHECK(r.exit_code != 0);
  }
  CHECK(test::hub_count(hub, "SELECT count(*) " + lost_events) == lost_events_before);
  CHECK(test::hub_count(hub, "SELECT count(*) FROM ledger_evidence WHERE node_id = '" + lost_id +
                                 "' AND reason = 'revoked_node'") >= 1);
  CHECK(test::hub_count(hub, "SELECT count(*) FROM hub_deviations WHERE kind = 'revoked_node' AND node_id = '" +
                                 lost_id + "'") == 1);
  auto verify = hub.cli({"verify"});
  CHECK_MESSAGE(verify.exit_code == 0, (verify.out + verify.err));
}
