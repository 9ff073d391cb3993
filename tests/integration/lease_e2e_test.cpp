// End to end: randomization leases with a real hub and real irt-node syncs
// over loopback. Each node's lease ends offline_days after its last sync;
// past it (the node's clock, injected into its site operations) the node
// refuses to randomize and asks for a sync, while dispensing and the other
// site actions go on. `irt-hub lease shorten` makes every lease end sooner:
// the node that syncs takes the shorter lease at once, the offline one keeps
// its old lease until it syncs.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "hub/leases.h"
#include "node/node_state.h"
#include "node/site_operations.h"
#include "shared/civil_date.h"
#include "sync/hlc.h"
#include "tests/support/cluster.h"
#include "tests/support/site_session.h"

using namespace irt;
using nlohmann::json;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kPassword = "site-coordinator-password";
const std::string kManagerPassword = "study-manager-password";
constexpr std::int64_t kDay = 86400000;

std::int64_t lease_until(NodeDir& n) {
  auto state = node::NodeState::open(n.data(), test::kNodePassphrase);
  REQUIRE_MESSAGE(state.ok(), state.error().message);
  REQUIRE((*state)->domain().lease().has_value());
  return (*state)->domain().lease()->until_ms;
}

// A coordinator at an offline node whose clock reads `now`.
struct Staff {
  test::SiteSession session;
  std::int64_t now = sync::system_millis();
  Staff(NodeDir& n, const std::string& user) : session(n, user, kPassword) {
    session.ops = std::make_unique<node::SiteOperations>(*session.state, [this] { return now; });
    session.receive_all();
  }
  shared::Result<node::OperationOutcome> randomize() {
    auto number = session.screen({{"diabetes", "no"}});
    return session.ops->randomize(session.actor, number, session.password);
  }
};

}  // namespace

TEST_CASE("past its lease a node randomizes no more until it syncs, and a shortened lease reaches the nodes that sync") {
  HubProcess hub;
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "101", kPassword);
  hub.add_user("coordinator.ben", "coordinator", "102", kPassword);
  hub.add_user("manager.sam", "study-manager", "", kManagerPassword);
  const auto start = sync::system_millis();
  NodeDir a(hub, "101"), b(hub, "102");
  sync_ok(a);
  sync_ok(b);
  // The first lease: offline_days (14 in the example study) after enrollment, by the hub's clock.
  const auto lease_a = lease_until(a);
  CHECK(lease_a >= start + 14 * kDay);
  CHECK(lease_a <= sync::system_millis() + 14 * kDay);
  auto status = a.cli({"status"});
  REQUIRE_MESSAGE(status.exit_code == 0, status.err);
  CHECK(json::parse(status.out)["randomization_lease_until"] == shared::utc_text(lease_a));

  std::string randomized;
  {
    Staff ana(a, "coordinator.ana");
    auto r = ana.randomize();
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    randomized = r->participant.number;
    // 27 days later the lease has long ended: visit V2 is dispensed, the next participant waits for a sync.
    ana.now += 27 * kDay;
    auto refused = ana.randomize();
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == shared::Errc::exhausted);
    CHECK(refused.error().message.find("may not randomize until it syncs: its randomization lease ended at " +
                                       shared::utc_text(lease_a)) != std::string::npos);
    auto v2 = ana.session.ops->dispense(ana.session.actor, randomized, {"V2", "", "", "", "", {}});
    REQUIRE_MESSAGE(v2.ok(), v2.error().message);
    CHECK(v2->kits.size() == 1);
  }

  // An urgent change: every lease ends within two hours.
  const auto until_text = shared::utc_text((sync::system_millis() / 1000 + 2 * 3600) * 1000);
  const auto until = *shared::parse_utc(until_text);
  const std::vector<std::string> shorten = {"lease", "shorten", "--until", until_text, "--user", "manager.sam",
                                            "--reason", "arm B closed for harm (DMC)"};
  CHECK(hub.cli({"lease", "shorten", "--until", "tomorrow", "--user", "manager.sam", "--reason", "x"},
                kManagerPassword + "\n")
            .exit_code == 2);
  auto unsigned_ = hub.cli(shorten, "not the password\n");
  CHECK(unsigned_.exit_code != 0);
  auto done = hub.cli(shorten, kManagerPassword + "\n");
  REQUIRE_MESSAGE(done.exit_code == 0, done.err);
  CHECK(done.out.find("every randomization lease now ends by " + until_text + "; 2 node(s) given a shorter lease") !=
        std::string::npos);

  // b syncs and takes it at once; a stays offline with its old lease.
  sync_ok(b);
  CHECK(lease_until(b) == until);
  CHECK(lease_until(a) == lease_a);
  {
    Staff ben(b, "coordinator.ben");
    auto ok = ben.randomize();
    REQUIRE_MESSAGE(ok.ok(), ok.error().message);
    ben.now = until;
    CHECK(ben.randomize().error().code == shared::Errc::exhausted);
  }
  {
    Staff ana(a, "coordinator.ana");
    ana.now = until + 3 * 3600 * 1000;  // past the bound, inside its old lease
    auto ok = ana.randomize();
    REQUIRE_MESSAGE(ok.ok(), ok.error().message);
  }
  sync_ok(a);
  CHECK(lease_until(a) == until);

  auto audit = hub.read_as_admin({"audit", "--json"});
  REQUIRE_MESSAGE(audit.exit_code == 0, audit.err);
  CHECK(audit.out.find("lease.shortened") != std::string::npos);
  auto verified = hub.cli({"verify"});
  CHECK_MESSAGE(verified.exit_code == 0, (verified.out + verified.err));
}
