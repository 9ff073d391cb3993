// Amendments (hub/amendments.h): what may and may not change mid-study, the
// versions kept, the directive per node, the audit entry, and what a refused,
// unsigned or planned-only amendment leaves behind (nothing).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <map>

#include "hub/allocations.h"
#include "hub/amendments.h"
#include "hub/audit.h"
#include "hub/design_changes.h"
#include "hub/enrollment.h"
#include "hub/grants.h"
#include "hub/kit_inventory.h"
#include "hub/list_hash.h"
#include "hub/randomization_store.h"
#include "hub/users.h"
#include "sync/directive.h"
#include "sync/seeded_source.h"
#include "tests/hub/hub_fixture.h"

using namespace irt;
using nlohmann::json;
using test::HubFixture;
using test::kHour;
using test::kHubNow;

namespace {

const std::string kManagerPassword = "manager password 1";
const hub::Signature kStudyManager{"sm", kManagerPassword};

json example_study(const std::string& file = "packaging/examples/study-blocks.json") {
  return json::parse(test::read_file(test::source_path(file)));
}
json version2() { return example_study("packaging/examples/study-blocks-v2.json"); }

struct AmendmentsHub : HubFixture {
  AmendmentsHub() {
    auto sm = hub::add_user(*hub, {"sm", "study-manager", {}, kManagerPassword}, crypto::kTest, "root", kHubNow);
    REQUIRE_MESSAGE(sm.ok(), sm.error().message);
    auto admin = hub::add_user(*hub, {"ada", "admin", {}, "admin password 1"}, crypto::kTest, "root", kHubNow);
    REQUIRE(admin.ok());
  }
  std::string enroll(const std::string& site) {
    auto inv = hub::invite(*hub, site, "site", hub::kTokenValidityMs, "admin", kHubNow);
    REQUIRE_MESSAGE(inv.ok(), inv.error().message);
    auto key = crypto::SigningKey::generate();
    auto done = hub::enroll(*hub, {inv->token, key.public_key().hex(), ""}, kHubNow);
    REQUIRE_MESSAGE(done.ok(), done.refusal().message);
    test::remember_node_key(done->certificate.node_id, key);
    return done->certificate.node_id;
  }
  shared::Result<hub::Amended> amend(const json& doc, const hub::Signature& s = kStudyManager) {
    return hub::amend(*hub, doc.dump(), "site 103 joins", s, kHubNow + kHour);
  }
  std::vector<std::string> refusals(const json& doc) {
    auto plan = hub::plan_amendment(*hub, doc.dump());
    REQUIRE_MESSAGE(plan.errors.empty(), plan.errors.front());
    return plan.refusals;
  }
  // Everything an amendment writes, to show a refused one wrote nothing.
  std::string footprint() {
    std::string out;
    for (const char* q : {"SELECT count(*) FROM hub_study_versions", "SELECT count(*) FROM hub_directives",
                          "SELECT count(*) FROM hub_audit", "SELECT count(*) FROM hub_randomization_lists",
                          "SELECT count(*) FROM hub_kits", "SELECT count(*) FROM hub_slice_slots WHERE study_version = 1"}) {
      auto st = hub->db().prepare(q);
      REQUIRE(st.step());
      out += std::to_string(st.int64(0)) + " ";
    }
    return out;
  }
};

bool has(const std::vector<std::string>& lines, const std::string& start) {
  for (const auto& l : lines)
    if (l.rfind(start, 0) == 0) return true;
  return false;
}

// A participant screened and allocated at a site, as ingest records them.
void allocate(AmendmentsHub& h, const std::string& number, const std::string& site, const std::string& arm) {
  storage::Transaction tx(h.hub->db());
  hub::record_screening(h.hub->db(), {number, site + "-N1", site, "{}", shared::ParticipantStatus::randomized, 1});
  hub::Allocation a;
  a.participant = number;
  a.node_id = site + "-N1";
  a.seq = 2;
  a.randomization_number = "R-" + number;
  a.arm = arm;
  hub::record_allocation(h.hub->db(), a);
  tx.commit();
}

}  // namespace

TEST_CASE("an amendment stores the version with its reason, makes it current and every version stays readable") {
  AmendmentsHub h;
  auto done = h.amend(version2());
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(done->old_version == 1);
  CHECK(done->new_version == 2);
  CHECK(h.hub->study().version == 2);
  CHECK(h.hub->study().find_site("103") != nullptr);

  auto versions = hub::study_versions(h.hub->db(), true);
  REQUIRE(versions.size() == 2);
  CHECK(versions[0].version == 1);
  CHECK(json::parse(versions[0].document)["version"] == 1);
  CHECK(versions[1].version == 2);
  CHECK(versions[1].document == version2().dump());
  CHECK(versions[1].loaded_by == "sm");
  CHECK(versions[1].reason == "site 103 joins");
  CHECK(versions[1].loaded_ms == kHubNow + kHour);

  // Another process opening the hub runs on version 2.
  auto reopened = hub::HubState::open(h.hub->paths().dir, test::kHubPassphrase);
  REQUIRE_MESSAGE(reopened.ok(), reopened.error().message);
  CHECK((*reopened)->study().version == 2);
}

TEST_CASE("an amendment is one audit entry naming the versions, the reason and the signer, with no arm in it") {
  AmendmentsHub h;
  REQUIRE(h.amend(version2()).ok());
  auto entries = hub::audit_entries(h.hub->db(), {.subject = "VLC-301"});
  const hub::AuditEntry* amended = nullptr;
  for (const auto& e : entries)
    if (e.action == "study.amended") amended = &e;
  REQUIRE(amended != nullptr);
  CHECK(amended->actor == "sm");
  CHECK(amended->reason == "site 103 joins");
  CHECK(amended->old_value == "version 1");
  CHECK(amended->new_value == "version 2 (3 changes)");
  CHECK(amended->signature == "approved");
  CHECK(amended->at_ms == kHubNow + kHour);
  for (const auto& e : entries) {
    CHECK(e.new_value.find("Velcardin") == std::string::npos);
    CHECK(e.new_value.find("Placebo") == std::string::npos);
  }
}

TEST_CASE("an amendment issues a study.config directive with the new document to every node not revoked") {
  AmendmentsHub h;
  auto a = h.enroll("101");
  auto b = h.enroll("102");
  auto c = h.enroll("201");
  REQUIRE(h.hub->ledger().revoke(c, "tablet lost", "admin", kHubNow).ok());
  auto before_c = h.hub->outbox().last_seq(c);
  auto done = h.amend(version2());
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(done->directives == 2);
  CHECK(h.hub->outbox().last_seq(c) == before_c);
  for (const auto& node : {a, b}) {
    auto records = h.hub->outbox().after(node, 0, 100);
    auto d = sync::parse_directive(records.back());
    REQUIRE(d.ok());
    CHECK(d->body.type == "study.config");
    auto payload = json::parse(test::opened_payload(*d));
    CHECK(payload["version"] == 2);
    CHECK(payload["study_id"] == "VLC-301");
    CHECK(payload["document"] == version2().dump());
  }
}

TEST_CASE("a planned amendment (--dry-run) lists the changes and changes nothing") {
  AmendmentsHub h;
  h.enroll("101");
  auto before = h.footprint();
  auto plan = hub::plan_amendment(*h.hub, version2().dump());
  CHECK(plan.acceptable());
  CHECK(plan.changes.size() == 3);
  CHECK(has(plan.changes, "sites: added 103"));
  CHECK(has(plan.changes, "visits[V3].window_after: 3 -> 5"));
  CHECK(h.footprint() == before);
  CHECK(h.hub->study().version == 1);
}

TEST_CASE("a wrong signature, or a signer without manage_study, changes nothing") {
  AmendmentsHub h;
  h.enroll("101");
  auto before = h.footprint();
  auto wrong = h.amend(version2(), {"sm", "not the password"});
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().code == shared::Errc::unauthenticated);
  auto admin = h.amend(version2(), {"ada", "admin password 1"});
  REQUIRE_FALSE(admin.ok());
  CHECK(admin.error().code == shared::Errc::forbidden);
  CHECK(admin.error().message.find("manage_study") != std::string::npos);
  auto no_reason = hub::amend(*h.hub, version2().dump(), "  ", kStudyManager, kHubNow);
  REQUIRE_FALSE(no_reason.ok());
  CHECK(no_reason.error().code == shared::Errc::invalid_input);
  CHECK(h.footprint() == before);
  CHECK(h.hub->study().version == 1);
}

TEST_CASE("a document that does not load is refused with every problem and its path") {
  AmendmentsHub h;
  auto doc = version2();
  doc["arms"][0]["ratio"] = 0;
  doc["sites"][3]["country"] = "XX";
  auto plan = hub::plan_amendment(*h.hub, doc.dump());
  CHECK_FALSE(plan.study);
  CHECK(plan.errors.size() >= 2);
  CHECK(has(plan.errors, "arms[0].ratio"));
  auto done = h.amend(doc);
  REQUIRE_FALSE(done.ok());
  CHECK(done.error().code == shared::Errc::invalid_input);
}

TEST_CASE("another study id, or a version other than the next, is refused and changes nothing") {
  AmendmentsHub h;
  auto before = h.footprint();
  auto other = version2();
  other["id"] = "OTHER-1";
  CHECK(has(h.refusals(other), "id: this is study OTHER-1, the hub runs study VLC-301"));
  auto skip = version2();
  skip["version"] = 3;
  CHECK(has(h.refusals(skip), "version: must be 2 (the hub's current version is 1, got 3)"));
  auto same = example_study();
  CHECK(has(h.refusals(same), "version: must be 2"));
  auto done = h.amend(skip);
  REQUIRE_FALSE(done.ok());
  CHECK(done.error().code == shared::Errc::conflict);
  CHECK(h.footprint() == before);
}

TEST_CASE("an arm with allocations keeps its name, and no arm is removed once in use (a list takes a new ratio)") {
  AmendmentsHub h;
  allocate(h, "101-001", "101", "A");
  auto renamed = version2();
  renamed["arms"][0]["name"] = "Velcardin 50 mg";
  CHECK(has(h.refusals(renamed), "arms[A].name: changed, but participants are allocated to it"));
  auto ratio = version2();
  ratio["arms"][0]["ratio"] = 2;
  ratio["randomization"]["block_sizes"] = {3, 6};
  CHECK(h.refusals(ratio).empty());  // a list design continues with a segment
  // Arm B has no allocation of its own, but the randomization in use allocates to it.
  auto blinded_label = version2();
  blinded_label["arms"][1]["blinded_label"] = "Study treatment";
  CHECK(h.refusals(blinded_label).empty());
}

TEST_CASE("the method and strata of a list in use cannot change, strata only grow at the end") {
  AmendmentsHub h;
  h.enroll("101");  // slots granted: the list is in use
  auto method = version2();
  method["randomization"] = {{"method", "simple"}};
  CHECK(has(h.refusals(method), "randomization.method: changed from permuted_blocks to simple"));
  auto strata = version2();
  strata["randomization"]["strata"] = {"site"};
  CHECK(has(h.refusals(strata), "randomization.strata: changed from site, diabetes to site"));
  auto levels = version2();
  levels["factors"][0]["levels"] = {"yes", "no", "unknown"};
  CHECK(has(h.refusals(levels), "factors[diabetes].levels: the levels of stratification factor 'diabetes'"));
  // A site inserted before the existing ones would renumber their strata.
  auto inserted = version2();
  auto site103 = inserted["sites"][3];
  inserted["sites"].erase(3);
  inserted["sites"].insert(inserted["sites"].begin(), site103);
  CHECK(has(h.refusals(inserted), "sites: the levels of stratification factor 'site'"));
  // Before any grant the same changes are allowed: the version gets a new list.
  AmendmentsHub fresh;
  auto blocks = version2();
  blocks["randomization"]["block_sizes"] = {4};
  CHECK(fresh.refusals(blocks).empty());
  auto done = fresh.amend(blocks);
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(done->list == hub::ListChange::replaced);
  CHECK(fresh.hub->randomization()->list().study_version == 2);
}

TEST_CASE("a kit type with kits at sites is neither removed nor mapped to another arm") {
  // Version 1 with a second kit type for arm A that goes out in the initial shipment.
  auto v1 = example_study();
  v1["kit_types"].push_back(v1["kit_types"][0]);
  v1["kit_types"][2]["id"] = "VLC25S";
  v1["supply"]["initial_shipment"].push_back({{"kit_type", "VLC25S"}, {"count", 1}});
  test::TempDir tmp;
  test::write_file(tmp / "v1.json", v1.dump());
  HubFixture f((tmp / "v1.json").string());
  REQUIRE(hub::add_user(*f.hub, {"sm", "study-manager", {}, kManagerPassword}, crypto::kTest, "root", kHubNow).ok());
  auto inv = hub::invite(*f.hub, "101", "site", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE(hub::enroll(*f.hub, {inv->token, crypto::SigningKey::generate().public_key().hex(), ""}, kHubNow).ok());
  REQUIRE(hub::kits_at_nodes(f.hub->db(), "VLC25S") == 1);

  auto removed = v1;
  removed["version"] = 2;
  removed["kit_types"].erase(2);
  removed["supply"]["initial_shipment"].erase(2);
  auto plan = hub::plan_amendment(*f.hub, removed.dump());
  REQUIRE(plan.study);
  CHECK(has(plan.refusals, "kit_types[VLC25S]: removed, but kits of this type were shipped to sites"));

  auto remapped = v1;
  remapped["version"] = 2;
  remapped["kit_types"][2]["arm"] = "B";
  plan = hub::plan_amendment(*f.hub, remapped.dump());
  REQUIRE(plan.study);
  CHECK(has(plan.refusals, "kit_types[VLC25S].arm: changed"));
  auto done = hub::amend(*f.hub, remapped.dump(), "remap", kStudyManager, kHubNow);
  REQUIRE_FALSE(done.ok());
  CHECK(done.error().message.find("kit_types[VLC25S].arm") != std::string::npos);
}

TEST_CASE("a site or country holding nodes or participants is not removed nor moved") {
  AmendmentsHub h;
  h.enroll("201");
  allocate(h, "102-001", "102", "A");
  auto no_be = version2();
  no_be["sites"].erase(2);  // 201
  no_be["countries"] = json::array({no_be["countries"][0]});
  no_be["depots"][0]["countries"] = {"FR"};
  no_be["supply"]["lead_times"].erase(1);
  auto r = h.refusals(no_be);
  CHECK(has(r, "sites[201]: removed, but it holds nodes or participants; keep it and set \"active\": false"));
  CHECK(has(r, "countries[BE]: removed"));
  auto no_102 = version2();
  no_102["sites"].erase(1);
  CHECK(has(h.refusals(no_102), "sites[102]: removed"));
  auto moved = version2();
  moved["sites"][0]["country"] = "BE";  // 101 has neither nodes nor participants: it may move
  CHECK_FALSE(has(h.refusals(moved), "sites[101]"));
  moved["sites"][2]["country"] = "FR";
  CHECK(has(h.refusals(moved), "sites[201].country: changed from BE to FR"));
}

TEST_CASE("a site added by an amendment is invited and enrolled at once, with slots of its strata, numbers and kits") {
  AmendmentsHub h;
  auto a = h.enroll("101");
  auto& store = *h.hub->randomization();
  const auto strata_before = store.list().strata.count();
  std::size_t held_before = 0;
  for (std::uint32_t s = 0; s < strata_before; ++s) held_before += store.slices().free_slots(a, s);
  const auto hash_before = store.list_hash();

  CHECK_FALSE(hub::invite(*h.hub, "103", "site", hub::kTokenValidityMs, "admin", kHubNow).ok());
  auto done = h.amend(version2());
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(done->list == hub::ListChange::extended);
  CHECK(done->kits_made == 80);  // EU-01 serves a third FR site: 5 x max(6, 8) kits per type

  auto& list = h.hub->randomization()->list();
  CHECK(list.study_version == 2);
  REQUIRE(list.strata.count() == strata_before + 2);
  CHECK(list.strata.label(strata_before) == "site=103;diabetes=yes");
  // Node a keeps the slots it holds, under the same strata and numbers.
  std::size_t held_after = 0;
  for (std::uint32_t s = 0; s < strata_before; ++s) held_after += h.hub->randomization()->slices().free_slots(a, s);
  CHECK(held_after == held_before);
  CHECK_FALSE(h.hub->randomization()->list_hash() == hash_before);
  // The list of version 2 regenerates from its recorded seed (reopen checks its hash).
  REQUIRE(hub::HubState::open(h.hub->paths().dir, test::kHubPassphrase).ok());
  // Version 2's list is version 1's, byte for byte, then the new strata: both from the one recorded seed.
  auto seed_hex = hub::randomization_seed_hex(h.hub->db(), 2);
  REQUIRE(seed_hex.ok());
  CHECK(*seed_hex == *hub::randomization_seed_hex(h.hub->db(), 1));
  auto seed = sync::parse_seed_hex(*seed_hex);
  REQUIRE(seed);
  sync::SeededSource source(*seed);
  auto again = shared::generate_list(h.hub->study(), source, hub::kSlotsPerStratum);
  REQUIRE(again.ok());
  const auto csv = shared::encode_list_csv(*again);
  CHECK(hub::randomization_list_hash(csv) == h.hub->randomization()->list_hash());
  auto lists = h.hub->db().prepare("SELECT list_csv FROM hub_randomization_lists ORDER BY study_version");
  REQUIRE(lists.step());
  CHECK(csv.starts_with(lists.text(0)));
  REQUIRE(lists.step());
  CHECK(lists.text(0) == csv);
  bool audited = false;
  for (const auto& e : hub::audit_entries(h.hub->db(), {})) {
    audited = audited || e.action == "randomization.list_extended";
    CHECK(e.new_value.find(*seed_hex) == std::string::npos);
  }
  CHECK(audited);

  auto n103 = h.enroll("103");
  CHECK(n103 == "103-N1");
  auto& slices = h.hub->randomization()->slices();
  CHECK(slices.free_slots(n103, static_cast<std::uint32_t>(strata_before)) > 0);
  CHECK(slices.free_slots(n103, static_cast<std::uint32_t>(strata_before + 1)) > 0);
  CHECK(hub::kits_held_by(h.hub->db(), "node", n103).size() == 12);
  // Its first directive is version 2 of the study.
  auto first = sync::parse_directive(h.hub->outbox().after(n103, 0, 1).front());
  REQUIRE(first.ok());
  CHECK(json::parse(crypto::to_string(first->body.payload))["version"] == 2);
}

TEST_CASE("an amendment that leaves the list alone keeps it and its owners under the version it was made for") {
  AmendmentsHub h;
  auto a = h.enroll("101");
  auto doc = example_study();
  doc["version"] = 2;
  doc["visits"][3]["window_after"] = 5;
  auto done = h.amend(doc);
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(done->list == hub::ListChange::unchanged);
  CHECK(done->kits_made == 0);
  CHECK(h.hub->randomization()->list().study_version == 1);
  CHECK(h.hub->randomization()->slices().free_slots(a, 0) > 0);
  auto reopened = hub::HubState::open(h.hub->paths().dir, test::kHubPassphrase);
  REQUIRE_MESSAGE(reopened.ok(), reopened.error().message);
  CHECK((*reopened)->study().version == 2);
}

TEST_CASE("minimization: a site appended to a factor in use is accepted, and its first node gets a stream at once") {
  HubFixture f("packaging/examples/study-minimization.json");
  REQUIRE(hub::add_user(*f.hub, {"sm", "study-manager", {}, kManagerPassword}, crypto::kTest, "root", kHubNow).ok());
  auto enroll = [&](const std::string& site) {
    auto inv = hub::invite(*f.hub, site, "site", hub::kTokenValidityMs, "admin", kHubNow);
    REQUIRE_MESSAGE(inv.ok(), inv.error().message);
    auto done = hub::enroll(*f.hub, {inv->token, crypto::SigningKey::generate().public_key().hex(), ""}, kHubNow);
    REQUIRE_MESSAGE(done.ok(), done.refusal().message);
    return done->certificate.node_id;
  };
  enroll("301");  // a stream granted: minimization is in use
  auto doc = example_study("packaging/examples/study-minimization.json");
  doc["version"] = 2;
  doc["sites"].push_back({{"id", "303"}, {"name", "Klinikum Dresden"}, {"country", "DE"}});
  auto done = hub::amend(*f.hub, doc.dump(), "site 303 joins", kStudyManager, kHubNow);
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(done->list == hub::ListChange::unchanged);
  auto n303 = enroll("303");
  bool stream = false;
  for (const auto& record : f.hub->outbox().after(n303, 0, 100))
    stream = stream || sync::parse_directive(record)->body.type == "grant.minimization_stream";
  CHECK(stream);
  // Inserting a site before the others would renumber the levels recorded in the streams.
  auto inserted = example_study("packaging/examples/study-minimization.json");
  inserted["version"] = 3;
  inserted["sites"] = json::array({doc["sites"][4], doc["sites"][0], doc["sites"][1], doc["sites"][2], doc["sites"][3]});
  auto plan = hub::plan_amendment(*f.hub, inserted.dump());
  REQUIRE(plan.study);
  CHECK(has(plan.refusals, "sites: the levels of minimization factor 'site' change"));
}

TEST_CASE("a depot and a country added by an amendment hold kits at once and supply the new site's first node") {
  AmendmentsHub h;
  auto doc = version2();
  doc["countries"].push_back({{"code", "IT"}, {"name", "Italy"}});
  doc["depots"].push_back({{"id", "IT-01"}, {"name", "Milan depot"}, {"countries", {"IT"}}});
  doc["supply"]["lead_times"].push_back({{"depot", "IT-01"}, {"country", "IT"}, {"days", 2}});
  doc["sites"].push_back({{"id", "501"}, {"name", "Ospedale San Raffaele"}, {"country", "IT"}});
  auto done = h.amend(doc);
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(done->kits_made == 80 + 80);  // EU-01 for 103, IT-01 for 501: 5 x 8 kits per type each
  CHECK(hub::kits_held_by(h.hub->db(), "depot", "IT-01").size() == 80);
  auto n501 = h.enroll("501");
  auto kits = hub::kits_held_by(h.hub->db(), "node", n501);
  REQUIRE(kits.size() == 12);
  for (const auto& k : kits) CHECK(k.lot.rfind("V2-L", 0) == 0);  // made by the amendment
}

namespace {

// Version 2 of the example with arm A at ratio 2 (blocks of 3 and 6), and
// optionally an arm C with its kit type at ratio 1.
json ratio_change(bool add_arm) {
  auto doc = example_study();
  doc["version"] = 2;
  doc["arms"][0]["ratio"] = 2;
  doc["randomization"]["block_sizes"] = {3, 6};
  if (add_arm) {
    doc["arms"][0]["ratio"] = 1;
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
  }
  return doc;
}

// The arms of each whole block the node holds from the list segment of `version`.
std::map<std::pair<std::uint32_t, std::uint32_t>, std::map<std::string, int>> segment_blocks(AmendmentsHub& h,
                                                                                             const std::string& node,
                                                                                             int version) {
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::map<std::string, int>> out;
  const auto* store = h.hub->randomization();
  const auto& list = store->list();
  for (const auto& [stratum, n] : store->slices().free_slots_by_stratum(node))
    for (auto slot : store->slices().free_slot_numbers(node, stratum)) {
      if (store->segment_version(stratum, slot) != version) continue;
      const auto& s = list.slots[list.stratum_begin[stratum] + slot - 1];
      ++out[{stratum, s.block}][list.allocation.arms[s.arm]];
    }
  return out;
}

}  // namespace

TEST_CASE("a ratio change on a list in use continues it with a segment: blocks not started voided, new blocks 2:1") {
  AmendmentsHub h;
  auto node = h.enroll("101");
  auto* store = h.hub->randomization();
  const auto held = store->slices().free_slots_by_stratum(node);
  REQUIRE(held.size() == 2);
  const auto used_stratum = held.begin()->first;
  const auto first_slot = store->slices().free_slot_numbers(node, used_stratum).front();
  {
    storage::Transaction tx(h.hub->db());
    REQUIRE(store->slices().record_use(node, used_stratum, first_slot).ok());
    tx.commit();
  }
  const auto first_block = store->list().slots[store->list().stratum_begin[used_stratum]].block;
  const auto first_block_size = store->list().slots[store->list().stratum_begin[used_stratum]].block_size;
  const auto old_slots = store->list().slots.size();
  const auto hash_before = store->list_hash();

  auto done = h.amend(ratio_change(false));
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(done->list == hub::ListChange::segment);
  store = h.hub->randomization();
  CHECK(store->list().study_version == 2);
  CHECK(store->list().slots.size() > old_slots);
  CHECK_FALSE(store->list_hash() == hash_before);
  // The block partly used stays the node's to finish; every other block it held is voided.
  CHECK(store->slices().free_slots(node, used_stratum) == first_block_size - 1u);
  for (auto slot : store->slices().free_slot_numbers(node, used_stratum))
    CHECK(store->list().slots[store->list().stratum_begin[used_stratum] + slot - 1].block == first_block);
  const auto other_held = std::prev(held.end())->second;
  CHECK(done->slots_voided == held.at(used_stratum) - first_block_size + other_held);
  const std::size_t strata_voided = (held.at(used_stratum) > first_block_size) + (other_held > 0);
  // The node is told after the new version: study.config, then a grant.slots with only voids.
  auto records = h.hub->outbox().after(node, 0, 100);
  auto last = sync::parse_directive(records.back());
  REQUIRE(last.ok());
  CHECK(last->body.type == "grant.slots");
  auto voids = json::parse(test::opened_payload(*last));
  CHECK(voids["grants"].empty());
  CHECK(voids["voids"].size() == strata_voided);
  CHECK(sync::parse_directive(records[records.size() - 2])->body.type == "study.config");
  // Each void is audited, and no audit entry names an arm or a ratio.
  std::size_t void_entries = 0;
  for (const auto& e : hub::audit_entries(h.hub->db(), {})) {
    void_entries += e.action == "grant.slots_voided";
    CHECK(e.new_value.find("2:1") == std::string::npos);
    CHECK(e.new_value.find("Velcardin") == std::string::npos);
    CHECK(e.new_value.find("ratio") == std::string::npos);
  }
  CHECK(void_entries == strata_voided);
  // A design change: old_design deviations apply to randomizations that missed it.
  auto changes = hub::design_changes(*h.hub);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].version == 2);
  CHECK(changes[0].allocation_changed);
  CHECK(changes[0].closed_arms.empty());
  CHECK(changes[0].added_arms.empty());

  // The next top-up grants whole blocks of the segment, each 2:1.
  {
    storage::Transaction tx(h.hub->db());
    auto t = hub::top_up_grants(*h.hub, node, kHubNow + 2 * kHour);
    REQUIRE_MESSAGE(t.ok(), t.error().message);
    CHECK(t->slots > 0);
    tx.commit();
  }
  auto blocks = segment_blocks(h, node, 2);
  CHECK_FALSE(blocks.empty());
  for (const auto& [key, arms] : blocks) {
    CHECK(arms.at("A") == 2 * arms.at("B"));
    CHECK(arms.size() == 2);
  }
  // Another process regenerates the first list and the segment and finds the recorded hash.
  auto reopened = hub::HubState::open(h.hub->paths().dir, test::kHubPassphrase);
  REQUIRE_MESSAGE(reopened.ok(), reopened.error().message);
  CHECK((*reopened)->randomization()->list_hash() == h.hub->randomization()->list_hash());
  CHECK((*reopened)->randomization()->segment_version(used_stratum, first_slot) == 1);
}

TEST_CASE("an added arm on a list in use gets slots from the new segment, and its kit type kits") {
  AmendmentsHub h;
  auto node = h.enroll("101");
  auto done = h.amend(ratio_change(true));
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(done->list == hub::ListChange::segment);
  CHECK(done->kits_made > 0);
  auto changes = hub::design_changes(*h.hub);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].added_arms == std::vector<std::string>{"C"});
  {
    storage::Transaction tx(h.hub->db());
    auto t = hub::top_up_grants(*h.hub, node, kHubNow + 2 * kHour);
    REQUIRE_MESSAGE(t.ok(), t.error().message);
    tx.commit();
  }
  auto blocks = segment_blocks(h, node, 2);
  REQUIRE_FALSE(blocks.empty());
  for (const auto& [key, arms] : blocks) {
    CHECK(arms.size() == 3);
    CHECK(arms.at("C") == arms.at("A"));
    CHECK(arms.at("C") == arms.at("B"));
  }
  auto reopened = hub::HubState::open(h.hub->paths().dir, test::kHubPassphrase);
  REQUIRE_MESSAGE(reopened.ok(), reopened.error().message);
}

TEST_CASE("a ratio change together with added strata is refused, and so are strata added after a segment") {
  AmendmentsHub h;
  h.enroll("101");
  auto both = version2();  // adds site 103
  both["arms"][0]["ratio"] = 2;
  both["randomization"]["block_sizes"] = {3, 6};
  const auto before = h.footprint();
  auto refused = h.amend(both);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == shared::Errc::conflict);
  CHECK(refused.error().message.find("amend them in two versions") != std::string::npos);
  CHECK(h.footprint() == before);
  REQUIRE(h.amend(ratio_change(false)).ok());
  auto later = version2();
  later["version"] = 3;
  later["arms"][0]["ratio"] = 2;
  later["randomization"]["block_sizes"] = {3, 6};
  auto again = hub::amend(*h.hub, later.dump(), "site 103 joins", kStudyManager, kHubNow + 2 * kHour);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().message.find("strata cannot be added") != std::string::npos);
}
