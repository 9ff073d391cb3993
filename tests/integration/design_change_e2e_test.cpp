// End to end: an arm closed by an amendment (a design change) while one node
// is online and another offline, with a real hub (irt-hub serve) and real
// irt-node syncs over loopback. The node that syncs after the change never
// allocates the closed arm again (its slots are skipped, the hub grants
// further blocks); the offline node keeps allocating from its slices under
// the old version until it syncs, and each of those randomizations raises an
// "old_design" deviation at the hub (never reassigned, naming no arm); then
// it stops too. `irt-hub design-changes` says which nodes applied the change,
// the list still regenerates from its seed (`randlist verify`) and
// `irt-hub verify` passes. An arm closed for some strata only is skipped
// there and allocated elsewhere. The same for minimization: the closed arm leaves
// the candidate set at the node and every decision replays at the hub; and a
// minimization ratio change (1:1 -> 2:1): the synced node minimizes under the
// new ratio, the offline one under the old until it syncs (each such
// decision a deviation), every decision replayed under its own version; and
// an arm added to a minimization in use: a new segment over the three arms.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "crypto/bytes.h"
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

const std::string kSitePassword = "site-coordinator-password";
const std::string kStudyManagerPassword = "study-manager-password";
const std::string kUnblindedManagerPassword = "unblinded-manager-password";

// Version 1 of an example, version 2 closing `arm`, and a version 3 that would reopen it.
// An example with kits enough for every test participant and an unblinded
// study manager (the example's is blinded) who approves amendments.
json example_document(const std::string& example) {
  auto doc = json::parse(test::read_file(test::source_path("packaging/examples/" + example)));
  for (auto& line : doc["supply"]["initial_shipment"]) line["count"] = 40;
  doc["roles"].push_back({{"id", "unblinded-manager"},
                          {"name", "Unblinded study manager"},
                          {"blinded", false},
                          {"permissions", {"manage_study", "view_unblinded"}}});
  return doc;
}

std::string write_document(const test::TempDir& dir, const std::string& name, const json& d) {
  auto path = (dir / name).string();
  test::write_file(path, d.dump(2));
  return path;
}

struct DesignFiles {
  test::TempDir dir;
  std::string v1, v2, v3_reopened;

  DesignFiles(const std::string& example, const std::string& arm) {
    auto doc = example_document(example);
    v1 = write("v1.json", doc);
    doc["version"] = 2;
    for (auto& a : doc["arms"])
      if (a["id"] == arm) a["closed"] = true;
    v2 = write("v2.json", doc);
    doc["version"] = 3;
    for (auto& a : doc["arms"])
      if (a["id"] == arm) a["closed"] = false;
    v3_reopened = write("v3.json", doc);
  }

 private:
  std::string write(const std::string& name, const json& d) { return write_document(dir, name, d); }
};

struct Allocated {
  std::string arm;
  int study_version = 0;
};

// One offline session at a node: randomizes until refused or `most` are
// done. A refusal must be the slots' or the arms' (exhausted: sync), naming no arm.
std::vector<Allocated> randomize_offline(NodeDir& n, const std::string& user, int most,
                                         const std::map<std::string, std::string>& factors,
                                         const std::string& cohort = "") {
  test::SiteSession session(n, user, kSitePassword);
  auto& s = *session.state;
  session.receive_all();
  std::vector<Allocated> out;
  for (int i = 0; i < most; ++i) {
    node::ScreenRequest req;
    req.factors = factors;
    req.eligibility.assign(s.domain().study()->eligibility.size(), "yes");
    req.cohort = cohort;
    auto screened = session.ops->screen(session.actor, req);
    REQUIRE_MESSAGE(screened.ok(), screened.error().message);
    auto r = session.ops->randomize(session.actor, screened->participant.number, session.password);
    if (!r) {
      MESSAGE("randomization refused: " << r.error().message);
      CHECK(r.error().code == shared::Errc::exhausted);
      for (const auto& a : s.domain().study()->arms) CHECK(r.error().message.find(a.name) == std::string::npos);
      break;
    }
    auto e = sync::parse_event(*s.log().record(r->event_seq));
    REQUIRE(e.ok());
    auto version = shared::parse_event_study_version(crypto::to_string(e->body.payload));
    REQUIRE(version.ok());
    out.push_back({r->participant.arm, version->value_or(0)});
  }
  return out;
}

std::size_t count_arm(const std::vector<Allocated>& v, const std::string& arm) {
  return static_cast<std::size_t>(std::count_if(v.begin(), v.end(), [&](const auto& a) { return a.arm == arm; }));
}

void amend_to(HubProcess& hub, const std::string& file, const std::string& reason) {
  auto done = hub.cli({"amend", "--study", file, "--user", "manager.sam", "--reason", reason},
                      kStudyManagerPassword + "\n");
  REQUIRE_MESSAGE(done.exit_code == 0, done.err);
}

json design_changes_read(HubProcess& hub) {
  auto r = hub.cli({"design-changes", "--reader", "manager.sam", "--json"}, kStudyManagerPassword + "\n");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return json::parse(r.out);
}


// The minimization example without its placebo arm: H and L, 1:1.
json two_arm_minimization() {
  auto doc = example_document("study-minimization.json");
  auto drop_placebo = [](json& list) {
    list.erase(std::remove_if(list.begin(), list.end(), [](const json& x) {
                 return x.value("arm", "") == "P" || x.value("id", "") == "P" || x.value("kit_type", "") == "NRVPBO";
               }),
               list.end());
  };
  drop_placebo(doc["arms"]);
  drop_placebo(doc["kit_types"]);
  drop_placebo(doc["supply"]["initial_shipment"]);
  for (auto& v : doc["visits"])
    if (v.contains("dispense")) drop_placebo(v["dispense"]);
  for (auto& a : doc["arms"]) a["ratio"] = 1;
  return doc;
}

// Participants of the four combinations of the example's two minimization factors (besides the site).
const std::vector<std::map<std::string, std::string>> kProfiles = {
    {{"age_group", "under_65"}, {"hoehn_yahr", "1-1.5"}},
    {{"age_group", "65_or_over"}, {"hoehn_yahr", "2-2.5"}},
    {{"age_group", "under_65"}, {"hoehn_yahr", "2-2.5"}},
    {{"age_group", "65_or_over"}, {"hoehn_yahr", "1-1.5"}}};

// The coordinators of the example's sites 301 and 302, and the blinded study manager who amends.
void add_minimization_users(HubProcess& hub) {
  hub.add_user("coordinator.ana", "coordinator", "301", kSitePassword);
  hub.add_user("coordinator.ben", "coordinator", "302", kSitePassword);
  hub.add_user("manager.sam", "study-manager", "", kStudyManagerPassword);
}
}  // namespace

TEST_CASE("an arm closed while one node is offline: the synced node never allocates it, the offline one does until it syncs, each such allocation a deviation") {
  DesignFiles files("study-blocks.json", "B");
  HubProcess hub(files.v1);
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "101", kSitePassword);
  hub.add_user("coordinator.ben", "coordinator", "102", kSitePassword);
  hub.add_user("manager.sam", "study-manager", "", kStudyManagerPassword);
  NodeDir a(hub, "101"), b(hub, "102");
  sync_ok(a);
  sync_ok(b);
  const std::map<std::string, std::string> no_diabetes = {{"diabetes", "no"}};
  auto before = randomize_offline(a, "coordinator.ana", 2, no_diabetes);
  REQUIRE(before.size() == 2);
  sync_ok(a);
  CHECK(design_changes_read(hub).empty());

  // The data monitoring committee drops arm B; a is online (syncs at once), b is offline.
  // The diff printed names the arm to the unblinded manager only, and a dry run changes nothing.
  hub.add_user("manager.una", "unblinded-manager", "", kUnblindedManagerPassword);
  const std::vector<std::string> dry_run = {"amend", "--study", files.v2, "--reason", "plan", "--dry-run", "--user"};
  auto as = [&](const std::string& user, const std::string& password) {
    auto args = dry_run;
    args.push_back(user);
    return hub.cli(args, password + "\n");
  };
  auto blinded_plan = as("manager.sam", kStudyManagerPassword);
  REQUIRE_MESSAGE(blinded_plan.exit_code == 0, blinded_plan.err);
  CHECK(blinded_plan.out.find("arms[") == std::string::npos);
  CHECK(blinded_plan.out.find("1 line about arms or kit types withheld from a blinded role") != std::string::npos);
  CHECK(blinded_plan.out.find("verdict: acceptable") != std::string::npos);
  auto unblinded_plan = as("manager.una", kUnblindedManagerPassword);
  REQUIRE_MESSAGE(unblinded_plan.exit_code == 0, unblinded_plan.err);
  CHECK(unblinded_plan.out.find("arms[B].closed: false -> true") != std::string::npos);
  CHECK(unblinded_plan.out.find("withheld") == std::string::npos);
  CHECK(as("manager.sam", "not the password").exit_code != 0);
  amend_to(hub, files.v2, "arm B dropped for futility (DMC recommendation 3)");
  sync_ok(a);
  std::vector<Allocated> at_a;
  for (int round = 0; round < 8 && at_a.size() < 16; ++round) {
    auto got = randomize_offline(a, "coordinator.ana", 4, round % 2 ? no_diabetes : std::map<std::string, std::string>{{"diabetes", "yes"}});
    at_a.insert(at_a.end(), got.begin(), got.end());
    sync_ok(a);  // slots of B are skipped; the hub counts only A's slots and grants further blocks
  }
  CHECK(at_a.size() >= 16);
  CHECK(count_arm(at_a, "B") == 0);
  for (const auto& x : at_a) CHECK(x.study_version == 2);

  // b never synced since the change: it allocates from its slices under version 1, B included.
  auto at_b_old = randomize_offline(b, "coordinator.ben", 12, no_diabetes);
  REQUIRE(at_b_old.size() >= 4);  // at least its first whole block
  const auto b_old_in_b = count_arm(at_b_old, "B");
  CHECK(b_old_in_b >= 1);
  for (const auto& x : at_b_old) CHECK(x.study_version == 1);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_deviations WHERE kind = 'old_design'") == 0);
  sync_ok(b);

  // Each randomization b made under version 1 after the change is a deviation, kept, naming no arm;
  // the unblinded part says which went to the closed arm.
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_deviations WHERE kind = 'old_design'") ==
        static_cast<std::int64_t>(at_b_old.size()));
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_deviations d JOIN hub_allocations x ON x.node_id = d.node_id AND "
                       "x.seq = d.seq WHERE d.kind = 'old_design' AND x.arm = 'B'") ==
        static_cast<std::int64_t>(b_old_in_b));
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_deviations WHERE kind = 'old_design' AND subject = 'version 2' AND "
                       "status = 'open'") == static_cast<std::int64_t>(at_b_old.size()));
  {
    auto db = hub.database();
    auto st = db.prepare("SELECT summary FROM hub_deviations WHERE kind = 'old_design'");
    while (st.step()) {
      const auto summary = st.text(0);
      CHECK(summary.find("under study version 1, after version 2 changed the design") != std::string::npos);
      CHECK(summary.find("arm") == std::string::npos);
      CHECK(summary.find("Placebo") == std::string::npos);
    }
  }
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_allocations WHERE arm = 'B'") ==
        static_cast<std::int64_t>(count_arm(before, "B") + b_old_in_b));

  // Synced, b stops allocating B too, and raises no more deviations.
  auto at_b_new = randomize_offline(b, "coordinator.ben", 6, no_diabetes);
  CHECK_FALSE(at_b_new.empty());
  CHECK(count_arm(at_b_new, "B") == 0);
  for (const auto& x : at_b_new) CHECK(x.study_version == 2);
  sync_ok(b);
  sync_ok(a);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_deviations WHERE kind = 'old_design'") ==
        static_cast<std::int64_t>(at_b_old.size()));

  // Which nodes applied the change; the blinded study manager sees no arm.
  auto changes = design_changes_read(hub);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0]["version"] == 2);
  CHECK(changes[0]["arms_closed"] == 1);
  CHECK_FALSE(changes[0].contains("closed_arms"));
  CHECK(changes[0]["reason"] == "arm B dropped for futility (DMC recommendation 3)");
  CHECK(changes[0]["old_design_randomizations"] == at_b_old.size());
  REQUIRE(changes[0]["nodes"].size() == 2);
  for (const auto& n : changes[0]["nodes"]) {
    CHECK(n["applied"] == true);
    CHECK(n["old_design_randomizations"] == (n["site_id"] == "102" ? at_b_old.size() : 0));
  }

  // A closed arm is not reopened by a later amendment; the refusal names the arm to unblinded readers only.
  auto reopen = hub.cli({"amend", "--study", files.v3_reopened, "--user", "manager.una", "--reason", "reopen",
                         "--dry-run"}, kUnblindedManagerPassword + "\n");
  CHECK(reopen.exit_code != 0);
  CHECK(reopen.err.find("arms[B].closed: the arm was closed by an earlier amendment and cannot be reopened") !=
        std::string::npos);
  auto reopen_blinded = hub.cli({"amend", "--study", files.v3_reopened, "--user", "manager.sam", "--reason",
                                 "reopen", "--dry-run"}, kStudyManagerPassword + "\n");
  CHECK(reopen_blinded.exit_code != 0);
  CHECK(reopen_blinded.err.find("arms[") == std::string::npos);
  CHECK(reopen_blinded.out.find("arms[") == std::string::npos);
  CHECK(reopen_blinded.err.find("withheld from a blinded role") != std::string::npos);

  // The list is unchanged (closed slots were skipped, not rewritten) and regenerates from its seed.
  {
    auto db = hub.database();
    auto st = db.prepare("SELECT seed, list_csv FROM hub_randomization_lists WHERE study_version = 1");
    REQUIRE(st.step());
    auto list = (files.dir / "list.csv").string();
    test::write_file(list, st.text(1));
    auto verified = test::run({IRT_HUB_BIN, "randlist", "verify", "--study", files.v1, "--seed",
                               crypto::to_hex(st.blob(0)), "--list", list, "--per-stratum", "500"});
    CHECK_MESSAGE(verified.exit_code == 0, (verified.out + verified.err));
  }
  CHECK(test::integrity_alerts(hub) == 0);
  auto verified = hub.cli({"verify"});
  CHECK_MESSAGE(verified.exit_code == 0, (verified.out + verified.err));
}

TEST_CASE("an arm closed by an amendment leaves the minimization candidates at the node, and every decision replays at the hub") {
  DesignFiles files("study-minimization.json", "P");
  HubProcess hub(files.v1);
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "301", kSitePassword);
  hub.add_user("manager.sam", "study-manager", "", kStudyManagerPassword);
  NodeDir a(hub, "301");
  sync_ok(a);
  const std::map<std::string, std::string> factors = {{"age_group", "under_65"}, {"hoehn_yahr", "1-1.5"}};
  auto before = randomize_offline(a, "coordinator.ana", 4, factors, "main");
  REQUIRE(before.size() == 4);
  sync_ok(a);
  amend_to(hub, files.v2, "arm P dropped (DMC)");
  sync_ok(a);
  std::vector<Allocated> after;
  for (int round = 0; round < 6 && after.size() < 12; ++round) {
    auto got = randomize_offline(a, "coordinator.ana", 4, factors, "main");
    after.insert(after.end(), got.begin(), got.end());
    sync_ok(a);
  }
  CHECK(after.size() >= 12);
  CHECK(count_arm(after, "P") == 0);
  CHECK(count_arm(after, "H") > 0);
  CHECK(count_arm(after, "L") > 0);
  // Every decision replayed with the node's open arms (no minimization.replay alert), and none deviates.
  CHECK(test::integrity_alerts(hub) == 0);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_deviations WHERE kind = 'old_design'") == 0);
  auto verified = hub.cli({"verify"});
  CHECK_MESSAGE(verified.exit_code == 0, (verified.out + verified.err));
}

TEST_CASE("a minimization ratio changed 1:1 -> 2:1 while one node is offline: the synced node minimizes under the new ratio, the offline one under the old until it syncs, each such decision a deviation, every decision replays") {
  // The example without its placebo arm: two arms H and L, 1:1, then 2:1.
  test::TempDir dir;
  auto doc = two_arm_minimization();
  const auto v1 = write_document(dir, "v1.json", doc);
  doc["version"] = 2;
  for (auto& a : doc["arms"])
    if (a["id"] == "H") a["ratio"] = 2;
  const auto v2 = write_document(dir, "v2.json", doc);

  HubProcess hub(v1);
  hub.start();
  add_minimization_users(hub);
  NodeDir a(hub, "301"), b(hub, "302");
  sync_ok(a);
  sync_ok(b);
  auto before = randomize_offline(a, "coordinator.ana", 4, kProfiles[0], "main");
  REQUIRE(before.size() == 4);
  sync_ok(a);

  // The interim changes H:L from 1:1 to 2:1; a is online (syncs at once), b is offline.
  amend_to(hub, v2, "ratio 2:1 after the interim (DMC recommendation 4)");
  sync_ok(a);
  std::vector<Allocated> at_a;
  for (int round = 0; round < 12 && at_a.size() < 36; ++round) {
    auto got =
        randomize_offline(a, "coordinator.ana", 3, kProfiles[static_cast<std::size_t>(round) % kProfiles.size()], "main");
    at_a.insert(at_a.end(), got.begin(), got.end());
    sync_ok(a);
  }
  REQUIRE(at_a.size() == 36);
  for (const auto& x : at_a) CHECK(x.study_version == 2);
  // About 2:1: the 36 decisions under 2:1 gave H 22 to 25 in six runs (2:1 is 24; 1:1 would keep H near 18).
  const auto h_at_a = count_arm(at_a, "H");
  MESSAGE("after the change, node 301 allocated H " << h_at_a << " of " << at_a.size());
  CHECK(h_at_a >= 20);
  CHECK(h_at_a <= 28);

  // b never synced since the change: it minimizes under version 1, each decision a deviation once pushed.
  auto at_b_old = randomize_offline(b, "coordinator.ben", 5, kProfiles[1], "main");
  REQUIRE(at_b_old.size() == 5);
  for (const auto& x : at_b_old) CHECK(x.study_version == 1);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_deviations WHERE kind = 'old_design'") == 0);
  sync_ok(b);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_deviations WHERE kind = 'old_design' AND subject = 'version 2' AND "
                       "status = 'open'") == static_cast<std::int64_t>(at_b_old.size()));

  // Synced, b minimizes under version 2 and raises no more deviations.
  auto at_b_new = randomize_offline(b, "coordinator.ben", 4, kProfiles[2], "main");
  REQUIRE(at_b_new.size() == 4);
  for (const auto& x : at_b_new) CHECK(x.study_version == 2);
  sync_ok(b);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_deviations WHERE kind = 'old_design'") ==
        static_cast<std::int64_t>(at_b_old.size()));
  auto changes = design_changes_read(hub);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0]["old_design_randomizations"] == at_b_old.size());
  CHECK(changes[0]["arms_closed"] == 0);

  // Every decision replayed under the version its event carries: no minimization.replay alert.
  CHECK(test::integrity_alerts(hub) == 0);
  auto verified = hub.cli({"verify"});
  CHECK_MESSAGE(verified.exit_code == 0, (verified.out + verified.err));
}

TEST_CASE("an arm added to a minimization in use while one node is offline: a new segment balances the three arms at the synced node, the offline one minimizes over the old arms until it syncs, each such decision a deviation, every decision replays") {
  // Version 1: the example without its placebo arm (H and L, 1:1); version 2 adds it back (1:1:1).
  test::TempDir dir;
  const auto v1 = write_document(dir, "v1.json", two_arm_minimization());
  auto added = example_document("study-minimization.json");
  added["version"] = 2;
  for (auto& a : added["arms"]) a["ratio"] = 1;
  const auto v2 = write_document(dir, "v2.json", added);

  HubProcess hub(v1);
  hub.start();
  add_minimization_users(hub);
  NodeDir a(hub, "301"), b(hub, "302");
  sync_ok(a);
  sync_ok(b);
  std::vector<Allocated> before;
  for (int round = 0; round < 4; ++round) {
    auto got = randomize_offline(a, "coordinator.ana", 4, kProfiles[static_cast<std::size_t>(round)], "main");
    before.insert(before.end(), got.begin(), got.end());
    sync_ok(a);
  }
  REQUIRE(before.size() == 16);

  // The platform adds the placebo arm; a is online (syncs at once), b is offline.
  amend_to(hub, v2, "placebo arm added (protocol amendment 3)");
  sync_ok(a);
  // a's new stream starts the segment: its baseline holds the three arms and counts no one allocated before.
  {
    auto db = hub.database();
    auto st = db.prepare("SELECT synced_participants, baseline FROM hub_minimization_streams ORDER BY issued_ms DESC "
                         "LIMIT 1");  // the stream a's sync brought, issued after b's last
    REQUIRE(st.step());
    CHECK(st.int64(0) == 0);
    for (const auto& factor : json::parse(st.text(1)))
      for (const auto& level : factor) {
        CHECK(level.size() == 3);
        for (const auto& cell : level) CHECK(cell.get<double>() < 1.0);  // a lean of 0.2 at most, no one counted
      }
  }
  // A round may stop short when the node runs out of the new arm's kits (a shortage, refused as
  // such); the resupply its sync brings lets the next round go on.
  std::vector<Allocated> at_a;
  for (int round = 0; round < 16 && at_a.size() < 36; ++round) {
    auto got = randomize_offline(a, "coordinator.ana", std::min(3, 36 - static_cast<int>(at_a.size())),
                                 kProfiles[static_cast<std::size_t>(round) % kProfiles.size()], "main");
    at_a.insert(at_a.end(), got.begin(), got.end());
    sync_ok(a);
  }
  REQUIRE(at_a.size() == 36);
  for (const auto& x : at_a) CHECK(x.study_version == 2);
  // Balanced within the segment, about 12 each (the first 12 random); counted over the whole study,
  // P would have been sent most of them until it caught up with H and L's 16.
  const auto p_at_a = count_arm(at_a, "P");
  MESSAGE("after the arm was added, node 301 allocated H " << count_arm(at_a, "H") << ", L " << count_arm(at_a, "L")
                                                            << ", P " << p_at_a << " of " << at_a.size());
  CHECK(p_at_a >= 8);
  CHECK(p_at_a <= 17);
  CHECK(count_arm(at_a, "H") >= 8);
  CHECK(count_arm(at_a, "L") >= 8);

  // b never synced since the change: it minimizes over H and L under version 1, each decision a deviation once pushed.
  auto at_b_old = randomize_offline(b, "coordinator.ben", 5, kProfiles[1], "main");
  REQUIRE(at_b_old.size() == 5);
  for (const auto& x : at_b_old) {
    CHECK(x.study_version == 1);
    CHECK(x.arm != "P");
  }
  sync_ok(b);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_deviations WHERE kind = 'old_design' AND subject = 'version 2' AND "
                       "status = 'open'") == static_cast<std::int64_t>(at_b_old.size()));

  // Synced, b holds a stream over the three arms and minimizes under version 2.
  std::vector<Allocated> at_b_new;
  for (int round = 0; round < 3; ++round) {
    auto got = randomize_offline(b, "coordinator.ben", 3, kProfiles[static_cast<std::size_t>(round)], "main");
    at_b_new.insert(at_b_new.end(), got.begin(), got.end());
    sync_ok(b);
  }
  REQUIRE(at_b_new.size() == 9);
  for (const auto& x : at_b_new) CHECK(x.study_version == 2);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_deviations WHERE kind = 'old_design'") ==
        static_cast<std::int64_t>(at_b_old.size()));
  auto changes = design_changes_read(hub);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0]["old_design_randomizations"] == at_b_old.size());
  CHECK_FALSE(changes[0].contains("added_arms"));  // the study manager is blinded

  // Every decision replayed under the version its event carries, with its own stream: no alert but a supply shortage.
  CHECK(test::integrity_alerts(hub) == 0);
  auto verified = hub.cli({"verify"});
  CHECK_MESSAGE(verified.exit_code == 0, (verified.out + verified.err));
}

TEST_CASE("an arm closed for some strata only: the node skips its slots there and allocates it elsewhere, the hub tops up per stratum, and everything verifies") {
  test::TempDir dir;
  auto doc = example_document("study-blocks.json");
  const auto v1 = write_document(dir, "v1.json", doc);
  doc["version"] = 2;
  doc["arms"][1]["closed"] = {{"strata", {{{"diabetes", "yes"}}}}};
  const auto v2 = write_document(dir, "v2.json", doc);
  HubProcess hub(v1);
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "101", kSitePassword);
  hub.add_user("manager.sam", "study-manager", "", kStudyManagerPassword);
  NodeDir a(hub, "101");
  sync_ok(a);
  amend_to(hub, v2, "arm B closed for diabetic participants (DMC recommendation 5)");
  sync_ok(a);
  const std::map<std::string, std::string> diabetic = {{"diabetes", "yes"}}, not_diabetic = {{"diabetes", "no"}};
  std::vector<Allocated> yes, no;
  for (int round = 0; round < 10 && yes.size() < 14; ++round) {
    auto got = randomize_offline(a, "coordinator.ana", 4, diabetic);
    yes.insert(yes.end(), got.begin(), got.end());
    sync_ok(a);  // the skipped B slots do not count: the hub grants further blocks in that stratum
  }
  for (int round = 0; round < 2; ++round) {
    auto got = randomize_offline(a, "coordinator.ana", 4, not_diabetic);
    no.insert(no.end(), got.begin(), got.end());
    sync_ok(a);
  }
  CHECK(yes.size() >= 14);
  CHECK(count_arm(yes, "B") == 0);
  CHECK(no.size() == 8);
  CHECK(count_arm(no, "B") >= 2);  // blocks of 4 or 6, 1:1, where the arm is open
  for (const auto& x : yes) CHECK(x.study_version == 2);
  CHECK(test::integrity_alerts(hub) == 0);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_deviations WHERE kind = 'old_design'") == 0);
  auto verified = hub.cli({"verify"});
  CHECK_MESSAGE(verified.exit_code == 0, (verified.out + verified.err));
}
