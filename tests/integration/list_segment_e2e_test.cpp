// End to end: a ratio change (1:1 -> 2:1) and an added arm on a list design,
// made by amendment while one node is online and another offline, with a
// real hub (irt-hub serve) and real irt-node syncs over loopback. The hub
// continues the list with a segment under the new version and voids each
// node's free slots in blocks not yet started (docs/randomization.md,
// "Design changes"). The online node finishes the block it had started, then
// allocates from the segment's blocks (whole blocks 2:1); the offline node
// allocates under version 1 until it syncs, each of those an "old_design"
// deviation. The first list and the segment regenerate from the recorded
// seed (`randlist verify`, with --after for the segment) and `irt-hub verify`
// passes.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <map>
#include <set>

#include "crypto/bytes.h"
#include "node/node_state.h"
#include "node/site_operations.h"
#include "shared/block_list.h"
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

const std::string kSegmentSitePassword = "site-coordinator-password";
const std::string kSegmentManagerPassword = "study-manager-password";

// Version 1 of the blocks example (kits enough for every participant) and a
// version 2 that changes the allocation: A at 2:1 (blocks of 3 and 6), or an
// arm C with its kit type at 1:1:1 (blocks of 3 and 6).
struct SegmentFiles {
  test::TempDir dir;
  std::string v1, v2;

  explicit SegmentFiles(bool add_arm) {
    auto doc = json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
    for (auto& line : doc["supply"]["initial_shipment"]) line["count"] = 40;
    // With an added arm, randomization dispenses nothing: the node holds no
    // kit of the new type until a resupply shipment is received.
    if (add_arm)
      for (auto& v : doc["visits"])
        if (v.value("randomization", false)) v.erase("dispense");
    v1 = write("v1.json", doc);
    doc["version"] = 2;
    doc["randomization"]["block_sizes"] = {3, 6};
    if (!add_arm) {
      doc["arms"][0]["ratio"] = 2;
    } else {
      auto c = doc["arms"][1];
      c["id"] = "C";
      c["name"] = "Velcardin 50 mg once daily";
      doc["arms"].push_back(c);
      auto kt = doc["kit_types"][0];
      kt["id"] = "VLC50";
      kt["name"] = "Velcardin 50 mg, 30 tablets";
      kt["arm"] = "C";
      doc["kit_types"].push_back(kt);
      for (auto& v : doc["visits"])
        if (v.contains("dispense") && !v["dispense"].empty()) {
          auto line = v["dispense"][0];
          line["arm"] = "C";
          line["kit_type"] = "VLC50";
          v["dispense"].push_back(line);
        }
      doc["supply"]["initial_shipment"].push_back({{"kit_type", "VLC50"}, {"count", 40}});
    }
    v2 = write("v2.json", doc);
  }

 private:
  std::string write(const std::string& name, const json& d) {
    auto path = (dir / name).string();
    test::write_file(path, d.dump(2));
    return path;
  }
};

struct SegmentAllocation {
  std::string participant;
  std::string arm;
  int study_version = 0;
};

// Randomizes up to `most` participants offline at a node (diabetes "no"),
// stopping at the first refusal, which must be exhausted and name no arm.
std::vector<SegmentAllocation> randomize_at(NodeDir& n, const std::string& user, int most) {
  test::SiteSession session(n, user, kSegmentSitePassword);
  auto& s = *session.state;
  session.receive_all();
  std::vector<SegmentAllocation> out;
  for (int i = 0; i < most; ++i) {
    node::ScreenRequest req;
    req.factors = {{"diabetes", "no"}};
    req.eligibility.assign(s.domain().study()->eligibility.size(), "yes");
    auto screened = session.ops->screen(session.actor, req);
    REQUIRE_MESSAGE(screened.ok(), screened.error().message);
    auto r = session.ops->randomize(session.actor, screened->participant.number, session.password);
    if (!r) {
      CHECK(r.error().code == shared::Errc::exhausted);
      for (const auto& a : s.domain().study()->arms) CHECK(r.error().message.find(a.name) == std::string::npos);
      break;
    }
    auto e = sync::parse_event(*s.log().record(r->event_seq));
    REQUIRE(e.ok());
    auto version = shared::parse_event_study_version(crypto::to_string(e->body.payload));
    REQUIRE(version.ok());
    out.push_back({screened->participant.number, r->participant.arm, version->value_or(0)});
  }
  return out;
}

// The hub's recorded list of a version: its seed (hex) and canonical CSV.
std::pair<std::string, std::string> recorded_list(HubProcess& hub, int version) {
  auto db = hub.database();
  auto st = db.prepare("SELECT seed, list_csv FROM hub_randomization_lists WHERE study_version = ?");
  st.bind(1, version);
  REQUIRE(st.step());
  return {crypto::to_hex(st.blob(0)), st.text(1)};
}

// (1-based stratum, slot) -> the row of a list file.
std::map<std::pair<std::uint32_t, std::uint32_t>, shared::ListRow> rows_by_slot(const std::string& csv) {
  auto rows = shared::parse_list_csv(csv);
  REQUIRE(rows.ok());
  std::map<std::pair<std::uint32_t, std::uint32_t>, shared::ListRow> out;
  for (const auto& r : *rows) out[{r.stratum, r.slot}] = r;
  return out;
}

// Where each of a node's allocations came from, by the hub's records:
// (1-based stratum, slot) -> arm.
std::map<std::pair<std::uint32_t, std::uint32_t>, std::string> site_slots(HubProcess& hub, const std::string& site) {
  auto db = hub.database();
  auto st = db.prepare(
      "SELECT a.stratum, a.slot, a.arm FROM hub_allocations a JOIN hub_participants p ON p.number = a.participant "
      "WHERE p.site_id = ? AND a.slot IS NOT NULL");
  st.bind(1, site);
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::string> out;
  while (st.step())
    out[{static_cast<std::uint32_t>(st.int64(0)) + 1, static_cast<std::uint32_t>(st.int64(1))}] = st.text(2);
  return out;
}

void amend_segment(HubProcess& hub, const std::string& file, const std::string& reason) {
  auto done = hub.cli({"amend", "--study", file, "--user", "manager.sam", "--reason", reason},
                      kSegmentManagerPassword + "\n");
  REQUIRE_MESSAGE(done.exit_code == 0, done.err);
  CHECK(done.out.find("randomization list continued with a segment") != std::string::npos);
  CHECK(done.out.find("ratio") == std::string::npos);
}

// The first list verifies from the seed, and the segment with --after it.
void check_lists_verify(HubProcess& hub, const SegmentFiles& files) {
  auto [seed, v1_csv] = recorded_list(hub, 1);
  auto [seed2, whole_csv] = recorded_list(hub, 2);
  CHECK(seed == seed2);
  const auto v1_rows = rows_by_slot(v1_csv);
  // The segment: the rows of the whole list past the first list, in file order.
  std::string segment = whole_csv.substr(0, whole_csv.find('\n') + 1);
  std::size_t at = segment.size();
  while (at < whole_csv.size()) {
    auto end = whole_csv.find('\n', at);
    auto line = whole_csv.substr(at, end - at + 1);
    auto parsed = shared::parse_list_csv(segment.substr(0, segment.find('\n') + 1) + line);
    REQUIRE(parsed.ok());
    if (!v1_rows.count({parsed->front().stratum, parsed->front().slot})) segment += line;
    at = end + 1;
  }
  CHECK(whole_csv.size() == v1_csv.size() + segment.size() - segment.find('\n') - 1);
  const auto first = (files.dir / "list-v1.csv").string(), second = (files.dir / "segment-v2.csv").string();
  test::write_file(first, v1_csv);
  test::write_file(second, segment);
  auto v1_ok = test::run({IRT_HUB_BIN, "randlist", "verify", "--study", files.v1, "--seed", seed, "--list", first});
  CHECK_MESSAGE(v1_ok.exit_code == 0, (v1_ok.out + v1_ok.err));
  auto v2_ok = test::run({IRT_HUB_BIN, "randlist", "verify", "--study", files.v2, "--seed", seed, "--list", second,
                          "--after", first});
  CHECK_MESSAGE(v2_ok.exit_code == 0, (v2_ok.out + v2_ok.err));
}

}  // namespace

TEST_CASE("a ratio change while one node is offline: the synced node allocates whole 2:1 blocks of the new segment, the offline one's allocations deviate") {
  SegmentFiles files(false);
  HubProcess hub(files.v1);
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "101", kSegmentSitePassword);
  hub.add_user("coordinator.ben", "coordinator", "102", kSegmentSitePassword);
  hub.add_user("manager.sam", "study-manager", "", kSegmentManagerPassword);
  NodeDir a(hub, "101"), b(hub, "102");
  sync_ok(a);
  sync_ok(b);
  auto before = randomize_at(a, "coordinator.ana", 2);
  REQUIRE(before.size() == 2);
  sync_ok(a);

  amend_segment(hub, files.v2, "interim analysis: allocation 2:1 (DMC recommendation 2)");
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_audit WHERE action = 'randomization.list_segment'") == 1);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_audit WHERE action = 'grant.slots_voided'") >= 2);
  sync_ok(a);
  std::vector<SegmentAllocation> at_a;
  for (int round = 0; round < 8 && at_a.size() < 16; ++round) {
    auto got = randomize_at(a, "coordinator.ana", 4);
    at_a.insert(at_a.end(), got.begin(), got.end());
    sync_ok(a);
  }
  CHECK(at_a.size() >= 16);
  for (const auto& x : at_a) CHECK(x.study_version == 2);

  // a finished the block it had started under version 1, then took the segment's blocks, each whole one 2:1.
  const auto v1_rows = rows_by_slot(recorded_list(hub, 1).second);
  const auto whole_rows = rows_by_slot(recorded_list(hub, 2).second);
  const auto a_slots = site_slots(hub, "101");
  std::size_t in_old = 0;
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::map<std::string, int>> segment_blocks;
  for (const auto& [key, arm] : a_slots) {
    const auto& row = whole_rows.at(key);
    if (v1_rows.count(key)) {
      ++in_old;
    } else {
      ++segment_blocks[{key.first, row.block}][arm];
    }
  }
  CHECK(in_old <= 6);  // the first block (4 or 6 slots), no other block of the old list
  std::size_t whole_blocks = 0;
  for (const auto& [block, arms] : segment_blocks) {
    int n = 0;
    for (const auto& [arm, k] : arms) n += k;
    std::uint32_t size = 0;
    for (const auto& [key, row] : whole_rows)
      if (key.first == block.first && row.block == block.second) size = row.block_size;
    if (static_cast<std::uint32_t>(n) != size) continue;
    ++whole_blocks;
    CHECK(arms.at("A") == 2 * arms.at("B"));
  }
  CHECK(whole_blocks >= 1);

  // b never synced since the change: it allocates under version 1 from the slots it held.
  auto at_b_old = randomize_at(b, "coordinator.ben", 4);
  REQUIRE(at_b_old.size() >= 4);
  for (const auto& x : at_b_old) CHECK(x.study_version == 1);
  sync_ok(b);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_deviations WHERE kind = 'old_design' AND subject = 'version 2'") ==
        static_cast<std::int64_t>(at_b_old.size()));
  // Its uses of slots the change voided are kept as facts: no alert but a supply shortage.
  CHECK(test::integrity_alerts(hub) == 0);
  auto at_b_new = randomize_at(b, "coordinator.ben", 3);
  CHECK_FALSE(at_b_new.empty());
  for (const auto& x : at_b_new) CHECK(x.study_version == 2);
  sync_ok(b);
  for (const auto& [key, arm] : site_slots(hub, "102"))
    if (!v1_rows.count(key)) CHECK(whole_rows.count(key) == 1);

  auto changes = hub.cli({"design-changes", "--reader", "manager.sam", "--json"}, kSegmentManagerPassword + "\n");
  REQUIRE_MESSAGE(changes.exit_code == 0, changes.err);
  auto report = json::parse(changes.out);
  REQUIRE(report.size() == 1);
  CHECK(report[0]["allocation_changed"] == true);
  CHECK_FALSE(report[0].contains("added_arms"));  // the study manager is blinded
  CHECK(report[0]["old_design_randomizations"] == at_b_old.size());

  // The export of randomizations names the segment each slot came from, to a blinded reader too.
  std::size_t from_segment = 0, from_first = 0;
  for (const auto& site : {"101", "102"})
    for (const auto& [key, arm] : site_slots(hub, site)) (v1_rows.count(key) ? from_first : from_segment) += 1;
  hub.add_user("auditor.al", "auditor", "", kSegmentManagerPassword);
  const auto exported = (files.dir / "randomizations.json").string();
  auto ex = hub.cli({"export", "--what", "randomizations", "--format", "json", "--out", exported, "--reader",
                     "auditor.al"},
                    kSegmentManagerPassword + "\n");
  REQUIRE_MESSAGE(ex.exit_code == 0, ex.err);
  std::size_t rows_2 = 0, rows_1 = 0;
  const auto export_doc = json::parse(test::read_file(exported));
  INFO(export_doc.dump().substr(0, 600));
  for (const auto& row : export_doc["rows"]) {
    rows_2 += row["list_segment"] == 2;
    rows_1 += row["list_segment"] == 1;
    CHECK_FALSE(row.contains("arm"));
  }
  CHECK(rows_2 == from_segment);
  CHECK(rows_1 == from_first);
  CHECK(from_segment > 0);

  check_lists_verify(hub, files);
  auto verified = hub.cli({"verify"});
  CHECK_MESSAGE(verified.exit_code == 0, (verified.out + verified.err));
}

TEST_CASE("an added arm: after its sync a node allocates the new arm from the segment, and the lists verify") {
  SegmentFiles files(true);
  HubProcess hub(files.v1);
  hub.start();
  hub.add_user("coordinator.ana", "coordinator", "101", kSegmentSitePassword);
  hub.add_user("manager.sam", "study-manager", "", kSegmentManagerPassword);
  NodeDir a(hub, "101");
  sync_ok(a);
  REQUIRE(randomize_at(a, "coordinator.ana", 2).size() == 2);
  sync_ok(a);
  amend_segment(hub, files.v2, "platform trial: arm C opens");
  sync_ok(a);
  std::vector<SegmentAllocation> after;
  for (int round = 0; round < 6 && after.size() < 12; ++round) {
    auto got = randomize_at(a, "coordinator.ana", 4);
    after.insert(after.end(), got.begin(), got.end());
    sync_ok(a);
  }
  CHECK(after.size() >= 12);
  CHECK(std::count_if(after.begin(), after.end(), [](const auto& x) { return x.arm == "C"; }) > 0);
  // Kits of the new kit type were made at the depot and are shipped to the site like any other.
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_kits WHERE kit_type = 'VLC50'") > 0);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_kits k JOIN hub_shipments s ON s.shipment_id = k.shipment_id "
                       "WHERE k.kit_type = 'VLC50' AND s.site_id = '101'") > 0);
  CHECK(test::integrity_alerts(hub) == 0);
  check_lists_verify(hub, files);
  auto verified = hub.cli({"verify"});
  CHECK_MESSAGE(verified.exit_code == 0, (verified.out + verified.err));
}
