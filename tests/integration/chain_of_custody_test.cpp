// The whole chain of custody in one scenario, with real hub and node processes
// over loopback, on both hub engines: a kit list imported into a new lot, the
// lot released in the site's country, the site activated by hand, the initial
// shipment received; participants randomized until the site's stock falls to
// the trigger, and the resupply arriving with the next sync; a temperature
// excursion, one kit released and one rejected at the hub; a nurse's tablet
// taking kits and handing them back; a participant's return, destructions
// with a witness; and `irt-hub reconcile` balanced to zero, the ledger
// verified.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "tests/support/cluster.h"
#include "tests/support/site_session.h"

using namespace irt;
using nlohmann::json;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kPassword = "chain-of-custody-password";

void cli_ok(HubProcess& hub, std::vector<std::string> args, const std::string& expect = "") {
  auto r = hub.cli(std::move(args), kPassword + "\n");
  REQUIRE_MESSAGE(r.exit_code == 0, (r.out + r.err));
  if (!expect.empty()) CHECK_MESSAGE(r.out.find(expect) != std::string::npos, r.out);
}

std::vector<std::string> with_status(test::SiteSession& s, shared::KitStatus status) {
  std::vector<std::string> out;
  for (const auto& [number, k] : s.state->domain().kits())
    if (k.status == status) out.push_back(number);
  return out;
}

// The study of the examples, its sites activated by hand, with a lot that is
// never released and two kits of it.
std::string manual_study(const test::TempDir& dir) {
  auto study = json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
  study["site_activation"] = "manual";
  for (auto& site : study["sites"])
    if (site["id"] == "101") site["node_kinds"] = {"site", "nurse_tablet"};  // a nurse's tablet serves its home visits
  test::write_file(dir / "chain.json", study.dump());
  test::write_file(dir / "chain.lots.csv", "lot,expiry,released_in\nL00,2030-03-31,\n");
  test::write_file(dir / "chain.kits.csv", "kit_number,kit_type,lot,depot\n700001,VLC25,L00,EU-01\n700002,PBO,L00,EU-01\n");
  return (dir / "chain.json").string();
}

}  // namespace

TEST_CASE("the chain of custody from import to destruction reconciles to zero") {
  test::TempDir files;
  HubProcess hub(manual_study(files));  // serving from here on
  hub.add_user("coordinator.ana", "coordinator", "101", kPassword);
  hub.add_user("pharm.paul", "pharmacist", "101", kPassword);
  hub.add_user("supply.sam", "supply-manager", "", kPassword);
  hub.add_user("supply.sue", "supply-manager", "", kPassword);
  hub.add_user("monitor.mo", "monitor", "101", kPassword);

  // Import: a new lot and its kit list from the packaging vendor, released in France.
  cli_ok(hub, {"lot", "add", "--lot", "L02", "--expiry", "2030-06-30", "--user", "supply.sam"});
  std::string csv = "kit_number,kit_type,lot,depot\n";
  for (int i = 1; i <= 40; ++i)
    csv += std::to_string(800000 + i) + "," + (i <= 20 ? "VLC25" : "PBO") + ",L02,EU-01\n";
  test::write_file(files / "vendor.csv", csv);
  cli_ok(hub, {"kits", "import", "--file", (files / "vendor.csv").string(), "--user", "supply.sam"}, "40 kits imported");
  cli_ok(hub, {"lot", "release", "--lot", "L02", "--countries", "FR", "--reason", "QP release", "--user", "supply.sam"});

  // Activation: no node before the site is activated; then the initial shipment, released stock only.
  CHECK_THROWS_AS(NodeDir(hub, "101"), std::runtime_error);
  cli_ok(hub, {"site", "activate", "--site", "101", "--user", "supply.sam"});
  NodeDir site(hub, "101");
  sync_ok(site);
  std::string site_id;
  std::size_t initial = 0;
  {
    test::SiteSession s(site, "coordinator.ana", kPassword);
    site_id = s.state->enrollment().node_id;
    REQUIRE(s.state->domain().shipments().size() == 1);
    for (const auto& [number, k] : s.state->domain().kits()) {
      CHECK(k.lot == "L02");  // L00 is released nowhere: never shipped
      ++initial;
    }
    CHECK(initial == 12);
    s.receive_all();
  }

  // Randomize until the stock reaches the trigger; the sync after brings the resupply.
  std::vector<std::string> participants;
  for (int round = 0; round < 10; ++round) {
    {
      test::SiteSession s(site, "coordinator.ana", kPassword);
      if (s.state->domain().shipments().size() > 1) break;
      auto number = s.screen({{"diabetes", participants.size() % 2 ? "yes" : "no"}});
      auto r = s.ops->randomize(s.actor, number, s.password);
      REQUIRE_MESSAGE(r.ok(), r.error().message);
      participants.push_back(number);
    }
    sync_ok(site);
  }
  REQUIRE(participants.size() >= 4);
  std::vector<std::string> dispensed;
  std::vector<std::string> excursion;
  {
    test::SiteSession s(site, "coordinator.ana", kPassword);
    REQUIRE_MESSAGE(s.state->domain().shipments().size() == 2, "no resupply after " << participants.size());
    const auto expected = with_status(s, shared::KitStatus::expected);
    CHECK(expected.size() >= 2);
    s.receive_all();
    dispensed = with_status(s, shared::KitStatus::dispensed);
    CHECK(dispensed.size() == participants.size());
    // Excursion: two kits in stock, quarantined at once, offline.
    auto stock = with_status(s, shared::KitStatus::available);
    REQUIRE(stock.size() >= 6);
    excursion = {stock[0], stock[1]};
    node::ExcursionReport report;
    report.kits = excursion;
    report.minimum_celsius = 6.5;
    report.maximum_celsius = 14.0;
    report.duration_minutes = 210;
    report.reason = "fridge door left ajar overnight";
    auto q = s.ops->report_excursion(s.actor, report);
    REQUIRE_MESSAGE(q.ok(), q.error().message);
  }
  sync_ok(site);

  // The hub decides: one released, one rejected, each signed.
  cli_ok(hub, {"quarantine", "release", "--kit", excursion[0], "--reason", "within the stability data", "--user",
               "supply.sam"},
         "kits.release");
  cli_ok(hub, {"quarantine", "reject", "--kit", excursion[1], "--reason", "above 12 C for over 3 h", "--user",
               "supply.sue"},
         "kits.reject");
  sync_ok(site);

  // A nurse's tablet takes two kits for home visits and hands them back.
  NodeDir tablet(hub, "101", "", "nurse");
  sync_ok(tablet);
  std::string tablet_id;
  std::vector<std::string> home_visit;
  {
    test::SiteSession s(site, "coordinator.ana", kPassword);
    CHECK(s.state->domain().find_kit(excursion[0])->status == shared::KitStatus::available);
    CHECK(s.state->domain().find_kit(excursion[1])->status == shared::KitStatus::rejected);
    test::SiteSession t(tablet, "coordinator.ana", kPassword);
    tablet_id = t.state->enrollment().node_id;
    CHECK(t.state->domain().kits().empty());  // no shipment of its own: kits come from the site node
    auto stock = with_status(s, shared::KitStatus::available);
    home_visit = {stock[2], stock[3]};
    REQUIRE(s.ops->hand_over_kits(s.actor, tablet_id, home_visit, "home visits this week").ok());
  }
  sync_ok(site);
  sync_ok(tablet);
  {
    test::SiteSession t(tablet, "coordinator.ana", kPassword);
    for (const auto& k : home_visit) CHECK(t.state->domain().find_kit(k)->status == shared::KitStatus::expected);
    t.receive_all();
    REQUIRE(t.ops->hand_over_kits(t.actor, site_id, home_visit, "visits done without them").ok());
  }
  sync_ok(tablet);
  sync_ok(site);

  // Back at the site; a participant brings a kit back; destructions with a witness.
  {
    test::SiteSession s(site, "coordinator.ana", kPassword);
    s.receive_all();
    for (const auto& k : home_visit) CHECK(s.state->domain().find_kit(k)->status == shared::KitStatus::available);
    auto returned = s.ops->return_kit(s.actor, dispensed[0], 0, "V2");
    REQUIRE_MESSAGE(returned.ok(), returned.error().message);
    auto unused = s.ops->return_kit(s.actor, excursion[1], 0);
    REQUIRE_MESSAGE(unused.ok(), unused.error().message);
  }
  {
    test::SiteSession p(site, "pharm.paul", kPassword);
    const auto witness = node::check_password(node::find_user(p.state->log(), "coordinator.ana"), "coordinator.ana",
                                              kPassword);
    auto refused = p.ops->destroy_kit(p.actor, dispensed[1], "spilled", p.password, witness);
    CHECK(refused.error().code == shared::Errc::conflict);  // a dispensed kit is never destroyed
    for (const auto& k : {dispensed[0], excursion[1]}) {
      auto destroyed = p.ops->destroy_kit(p.actor, k, "returned to the site, destroyed on site", p.password, witness);
      REQUIRE_MESSAGE(destroyed.ok(), destroyed.error().message);
    }
  }
  sync_ok(site);
  sync_ok(tablet);

  // Accountability: every custodian balanced, kit by kit.
  auto rec = hub.cli({"reconcile", "--json", "--reader", "monitor.mo"}, kPassword + "\n");
  REQUIRE_MESSAGE(rec.exit_code == 0, (rec.out + rec.err));
  auto all = json::parse(rec.out);
  std::map<std::string, json> by_id;
  for (const auto& r : all) {
    CHECK_MESSAGE(r["balanced"] == true, r.dump());
    CHECK(r["unaccounted"] == 0);
    by_id[r["id"].get<std::string>()] = r;
  }
  auto& s101 = by_id.at("101");
  CHECK(s101["accounted"]["destroyed"] == 2);
  CHECK(s101["accounted"]["dispensed"] == participants.size() - 1);
  CHECK_FALSE(s101["accounted"].contains("in_transit"));
  auto& depot = by_id.at("EU-01");
  CHECK(depot["placed"] == 42);
  CHECK(depot["accounted"]["shipped"] == s101["shipped"]);
  CHECK(rec.out.find("VLC25") == std::string::npos);  // a blinded monitor reads no kit type

  // A kit's whole chain, as the blinded monitor reads it: received, dispensed at
  // randomization, returned, destroyed.
  auto history = hub.cli({"kit", "history", dispensed[0], "--json", "--reader", "monitor.mo"}, kPassword + "\n");
  REQUIRE_MESSAGE(history.exit_code == 0, (history.out + history.err));
  const auto read = json::parse(history.out);
  std::set<std::string> actions;
  for (const auto& e : read["history"]) actions.insert(e["action"].get<std::string>());
  CHECK(actions.count("kits.imported") == 1);  // its vendor list, its lot withheld
  for (const std::string a : {"shipment.received", "participant.randomized", "kit.returned", "kit.destroyed"})
    CHECK_MESSAGE(actions.count(a) == 1, a);
  CHECK(history.out.find("VLC25") == std::string::npos);

  // The hub's ledger verifies.
  auto verified = hub.cli({"verify"});
  CHECK_MESSAGE(verified.exit_code == 0, (verified.out + verified.err));
}
