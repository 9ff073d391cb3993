// Lots, kit lists, expiry windows at shipping, site activation and kit
// history at the hub (hub/lots.h, hub/kit_lists.h, hub/kit_inventory.h
// ship_initial, hub/site_activation.h, hub/kit_history.h): what each
// refuses, with nothing changed, and what each records.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "hub/audit.h"
#include "hub/enrollment.h"
#include "hub/kit_history.h"
#include "hub/kit_inventory.h"
#include "hub/kit_lists.h"
#include "hub/lots.h"
#include "hub/site_activation.h"
#include "hub/users.h"
#include "crypto/hash.h"
#include "shared/directive_payloads.h"
#include "tests/hub/hub_fixture.h"
#include "sync/directive.h"

using namespace irt;
using nlohmann::json;
using test::kHubNow;

namespace {

const std::string kSupplyPassword = "supply password 1";
const hub::Signature kSupply{"sam", kSupplyPassword};
const hub::Signature kBlindedManager{"max", "manager password 1"};  // study-manager: neither manage_supply nor release_quarantine

json blocks_study() { return json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json"))); }

// Lots L-BE (released in BE only) and L-ALL (FR and BE), two kits of each
// type in each, all at depot EU-01.
const char* kLots = "lot,expiry,released_in\nL-BE,2027-06-30,BE\nL-ALL,2027-12-31,FR BE\n";
const char* kKits =
    "kit_number,kit_type,lot,depot\n"
    "1001,VLC25,L-BE,EU-01\n1002,PBO,L-BE,EU-01\n1003,VLC25,L-BE,EU-01\n1004,PBO,L-BE,EU-01\n"
    "2001,VLC25,L-ALL,EU-01\n2002,PBO,L-ALL,EU-01\n2003,VLC25,L-ALL,EU-01\n2004,PBO,L-ALL,EU-01\n";

// A hub made by init from a study document and, when given, its lots and kit list.
struct LotsHub {
  test::TempDir dir;
  std::unique_ptr<test::PostgresSchema> pg = test::hub_postgres();
  std::unique_ptr<hub::HubState> hub;

  explicit LotsHub(const json& study = blocks_study(), const hub::InitialKits& kits = {}) {
    auto created = hub::HubState::create(dir / "hub", study.dump(), "tester", kHubNow, test::kHubPassphrase, crypto::kTest, pg ? pg->url() : "", kits);
    REQUIRE_MESSAGE(created.ok(), created.error().message);
    hub = std::move(created.value());
    REQUIRE(hub::add_user(*hub, {"sam", "supply-manager", {}, kSupplyPassword}, crypto::kTest, "root", kHubNow).ok());
    REQUIRE(hub::add_user(*hub, {"max", "study-manager", {}, "manager password 1"}, crypto::kTest, "root", kHubNow)
                .ok());
  }
  storage::Database& db() { return hub->db(); }
  std::size_t count(const std::string& sql) {
    auto st = db().prepare(sql);
    st.step();
    return static_cast<std::size_t>(st.int64(0));
  }
  std::size_t at_nodes() { return count("SELECT count(*) FROM hub_kits WHERE custody_kind = 'node'"); }
  std::size_t audited(const std::string& action) {
    std::size_t n = 0;
    for (const auto& e : hub::audit_entries(db()))
      if (e.action == action) ++n;
    return n;
  }
  std::vector<json> directives(const std::string& node, std::string_view type) {
    std::vector<json> out;
    for (const auto& r : hub->outbox().after(node, 0, 1000)) {
      auto d = sync::parse_directive(r);
      REQUIRE(d.ok());
      if (d->body.type == type) out.push_back(json::parse(test::opened_payload(*d)));
    }
    return out;
  }
  // Enrolls a node of `site` (its initial shipment included); returns its id.
  std::string enroll(const std::string& site) {
    auto inv = hub::invite(*hub, site, "site", hub::kTokenValidityMs, "admin", kHubNow);
    REQUIRE(inv.ok());
    auto key = crypto::SigningKey::generate();
    auto done = hub::enroll(*hub, {inv->token, key.public_key().hex(), ""}, kHubNow);
    REQUIRE_MESSAGE(done.ok(), done.refusal().message);
    test::remember_node_key(done->certificate.node_id, key);
    return done->certificate.node_id;
  }
  shared::Result<shared::Shipment> ship(const std::string& site, std::int64_t now = kHubNow) {
    storage::Transaction tx(db());
    auto s = hub::ship_initial(db(), hub->study(), "N-" + site, site, "tester", now);
    if (s) tx.commit();
    return s;
  }
};

hub::InitialKits example_kits(const std::string& kits = kKits) { return {kLots, "test.lots.csv", kits, "test.kits.csv"}; }

// The example study with one initial kit of each type per site.
json one_each() {
  auto s = blocks_study();
  s["supply"]["initial_shipment"] = json::array({{{"kit_type", "VLC25"}, {"count", 1}}, {{"kit_type", "PBO"}, {"count", 1}}});
  s["supply"]["trigger_level"] = 0;
  s["supply"]["max_level"] = 1;
  return s;
}

}  // namespace

TEST_CASE("init makes the lots of generated kits, released in every study country") {
  LotsHub h;
  auto lots = hub::list_lots(h.db());
  REQUIRE(lots.size() == 3);
  for (const auto& l : lots) {
    CHECK(l.released_in == std::vector<std::string>{"BE", "FR"});
    CHECK(l.kit_types == std::vector<std::string>{"PBO", "VLC25"});  // shared across kit types
    CHECK(l.kits > 0);
  }
  CHECK(h.count("SELECT count(*) FROM hub_kits WHERE lot NOT IN (SELECT lot_id FROM hub_lots)") == 0);
}

TEST_CASE("a kit ships only to a country where its lot is released, and a release opens it, signed and audited") {
  LotsHub h(one_each(), example_kits());
  // Site 101 is in France: only lot L-ALL may go there, whatever expires first.
  auto fr = h.ship("101");
  REQUIRE_MESSAGE(fr.ok(), fr.error().message);
  for (const auto& k : fr->kits) CHECK(k.lot == "L-ALL");
  // Belgium takes the earliest-expiring released lot.
  auto be = h.ship("201");
  REQUIRE(be.ok());
  for (const auto& k : be->kits) CHECK(k.lot == "L-BE");

  // The last L-ALL kits go to 102; then France has no released stock: refused, naming lot and country.
  REQUIRE(h.ship("102").ok());
  const auto before = h.at_nodes();
  // Site 101 again: the only stock left is lot L-BE, not released in France.
  auto again = h.ship("101");
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == shared::Errc::exhausted);
  CHECK(again.error().message.find("L-BE not released in FR") != std::string::npos);
  CHECK(again.error().message.find("VLC25") == std::string::npos);  // never the kit type
  CHECK(h.at_nodes() == before);

  // Releasing needs release_quarantine, a reason and a right password; each refusal changes nothing.
  CHECK(hub::release_lot(*h.hub, "L-BE", {"FR"}, "QP release", kBlindedManager, kHubNow).error().code ==
        shared::Errc::forbidden);
  CHECK(hub::release_lot(*h.hub, "L-BE", {"FR"}, "QP release", {"sam", "wrong"}, kHubNow).error().code ==
        shared::Errc::unauthenticated);
  CHECK(hub::release_lot(*h.hub, "L-BE", {"FR"}, "", kSupply, kHubNow).error().code == shared::Errc::invalid_input);
  CHECK(hub::release_lot(*h.hub, "L-BE", {"DE"}, "QP release", kSupply, kHubNow).error().code ==
        shared::Errc::invalid_input);
  CHECK(hub::release_lot(*h.hub, "L-NONE", {"FR"}, "QP release", kSupply, kHubNow).error().code ==
        shared::Errc::not_found);
  CHECK_FALSE(hub::lot_released(h.db(), "L-BE", "FR"));
  CHECK(h.audited("lot.released") == 2);  // the two lots as the lots file listed them

  auto ok = hub::release_lot(*h.hub, "L-BE", {"FR"}, "QP release", kSupply, kHubNow);
  REQUIRE_MESSAGE(ok.ok(), ok.error().message);
  CHECK(hub::lot_released(h.db(), "L-BE", "FR"));
  CHECK(hub::release_lot(*h.hub, "L-BE", {"FR"}, "again", kSupply, kHubNow).error().code == shared::Errc::conflict);
  auto entries = hub::audit_entries(h.db(), {std::nullopt, "sam", "L-BE"});
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].action == "lot.released");
  CHECK(entries[0].signature == "approved");
  CHECK(entries[0].new_value == "released in BE, FR");
  CHECK(h.ship("101").ok());
}

TEST_CASE("a kit inside its kit type's do-not-ship window in the site's country is never shipped") {
  auto study = one_each();
  // 2026-01-01 + 600 days = 2027-08-24: lot L-BE (2027-06-30) is inside the
  // window for PBO in Belgium, and lot L-ALL (2027-12-31) is not.
  study["kit_types"][1]["expiry_windows"] = {{"do_not_ship_days", 90},
                                             {"do_not_count_days", 80},
                                             {"do_not_dispense_days", 70},
                                             {"countries", {{"BE", {{"do_not_ship_days", 600}}}}}};
  study["kit_types"][0]["expiry_windows"] = study["kit_types"][1]["expiry_windows"];  // one label, one window
  LotsHub h(study, example_kits());
  CHECK(h.hub->study().expiry_windows("PBO", "BE").do_not_ship_days == 600);
  CHECK(h.hub->study().expiry_windows("PBO", "BE").do_not_dispense_days == 70);  // inherited from the kit type
  CHECK(h.hub->study().expiry_windows("PBO", "FR").do_not_ship_days == 90);
  auto be = h.ship("201");
  REQUIRE(be.ok());
  for (const auto& k : be->kits) CHECK(k.lot == "L-ALL");

  // Expired stock and stock inside the window: at 2027-10-01 every L-ALL kit is inside 600 days.
  const auto before = h.at_nodes();
  const std::int64_t later = kHubNow + std::int64_t{638} * 86400000;  // 2027-10-01
  auto refused = h.ship("201", later);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("inside the do-not-ship window") != std::string::npos);
  CHECK(refused.error().message.find("L-ALL") != std::string::npos);
  CHECK(h.at_nodes() == before);
  const std::int64_t expired = kHubNow + std::int64_t{800} * 86400000;  // 2028-03-11: every lot expired
  CHECK_FALSE(h.ship("101", expired).ok());
  CHECK(h.at_nodes() == before);
}

TEST_CASE("a relabel changes the lot's expiry and tells each node holding its kits, signed and audited") {
  LotsHub h(one_each(), example_kits());
  auto node = h.enroll("101");  // its initial shipment: one kit of each type from lot L-ALL
  CHECK(h.count("SELECT count(*) FROM hub_kits WHERE custody_id = '" + node + "' AND lot = 'L-ALL'") == 2);

  CHECK(hub::relabel_lot(*h.hub, "L-ALL", "2028-06-30", "stability data", kBlindedManager, kHubNow).error().code ==
        shared::Errc::forbidden);
  CHECK(hub::relabel_lot(*h.hub, "L-ALL", "2028-06-31", "stability data", kSupply, kHubNow).error().code ==
        shared::Errc::invalid_input);
  CHECK(hub::relabel_lot(*h.hub, "L-ALL", "2027-12-31", "stability data", kSupply, kHubNow).error().code ==
        shared::Errc::conflict);
  CHECK(h.directives(node, shared::kKitsRelabelDirective).empty());
  CHECK(h.count("SELECT count(*) FROM hub_kits WHERE expiry = '2027-12-31'") == 4);

  auto done = hub::relabel_lot(*h.hub, "L-ALL", "2028-06-30", "stability data", kSupply, kHubNow);
  REQUIRE_MESSAGE(done.ok(), done.error().message);
  CHECK(done->old_expiry == "2027-12-31");
  CHECK(done->kits == 4);
  CHECK(done->nodes == std::vector<std::string>{node});
  CHECK(hub::find_lot(h.db(), "L-ALL")->expiry == "2028-06-30");
  CHECK(h.count("SELECT count(*) FROM hub_kits WHERE lot = 'L-ALL' AND expiry = '2028-06-30'") == 4);
  // The record the outbox keeps, as an insider or the wire sees it: the lot
  // and its kits are sealed to the node (which kits share a lot can group
  // them by kit type), the new expiry is not.
  for (const auto& record : h.hub->outbox().after(node, 0, 1000)) {
    auto d = sync::parse_directive(record);
    REQUIRE(d.ok());
    if (d->body.type != shared::kKitsRelabelDirective) continue;
    auto stored = json::parse(crypto::to_string(d->body.payload));
    CHECK_FALSE(stored.contains("lot"));
    CHECK_FALSE(stored.contains("kits"));
    CHECK(stored.contains("sealed"));
    CHECK(stored["expiry"] == "2028-06-30");
    CHECK(crypto::to_string(d->body.payload).find("L-ALL") == std::string::npos);
  }
  auto sent = h.directives(node, shared::kKitsRelabelDirective);  // opened as the node opens it
  REQUIRE(sent.size() == 1);
  auto r = shared::parse_kit_relabel(sent[0].dump());
  REQUIRE(r.ok());
  CHECK(r->lot == "L-ALL");
  CHECK(r->expiry == "2028-06-30");
  CHECK(r->kits.size() == 2);
  auto entries = hub::audit_entries(h.db(), {std::nullopt, "sam", "L-ALL"});
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].action == "lot.relabelled");
  CHECK(entries[0].old_value == "expiry 2027-12-31");
  CHECK(entries[0].signature == "approved");
}

TEST_CASE("a kit list with bad lines is refused whole, each problem with its line number") {
  LotsHub h(one_each(), example_kits());
  const auto kits = h.count("SELECT count(*) FROM hub_kits");
  const std::string bad =
      "kit_number,kit_type,lot,depot\n"
      "3001,VLC25,L-ALL,EU-01\n"   // line 2: fine
      "3001,PBO,L-ALL,EU-01\n"     // 3: repeats 3001
      "1001,PBO,L-ALL,EU-01\n"     // 4: already at the hub
      "3002,ASPIRIN,L-ALL,EU-01\n" // 5: unknown kit type
      "3003,PBO,L-NONE,EU-01\n"    // 6: unknown lot
      "3004,PBO,L-ALL,US-01\n"     // 7: unknown depot
      "3005,PBO,L-ALL\n"           // 8: three fields
      "30x6,PBO,L-ALL,EU-01\n";    // 9: not a number
  storage::Transaction tx(h.db());
  auto r = hub::import_kit_list(h.db(), h.hub->study(), bad, "vendor.csv", "tester", kHubNow);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::invalid_input);
  const auto& m = r.error().message;
  CHECK(m.find("7 problem(s), nothing was imported") != std::string::npos);
  for (const char* line : {"vendor.csv line 3: kit 3001 appears twice", "vendor.csv line 4: kit 1001 is already at the hub",
                           "vendor.csv line 5: unknown kit type \"ASPIRIN\"", "vendor.csv line 6: unknown lot \"L-NONE\"",
                           "vendor.csv line 7: unknown depot \"US-01\"", "vendor.csv line 8: 4 fields expected",
                           "vendor.csv line 9: kit number must be 1 to 20 digits"})
    CHECK_MESSAGE(m.find(line) != std::string::npos, line);
  CHECK(m.find("line 2") == std::string::npos);
  auto header = hub::import_kit_list(h.db(), h.hub->study(), "number,type\n1,VLC25\n", "v.csv", "tester", kHubNow);
  CHECK(header.error().message.find("v.csv line 1: the header must be") != std::string::npos);
  tx.commit();
  CHECK(h.count("SELECT count(*) FROM hub_kits") == kits);
  CHECK(h.audited("kits.imported") == 1);  // init's own list only
}

TEST_CASE("a kit list is imported whole at its depots, with its lot's expiry, audited with the file's hash") {
  LotsHub h(one_each(), example_kits());
  const std::string csv = "kit_number,kit_type,lot,depot\n3001,VLC25,L-ALL,EU-01\n3002,PBO,L-ALL,EU-01\n";
  storage::Transaction tx(h.db());
  auto r = hub::import_kit_list(h.db(), h.hub->study(), csv, "vendor.csv", "tester", kHubNow);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  tx.commit();
  CHECK(r->kits == 2);
  CHECK(r->hash_hex == crypto::to_hex(crypto::blake2b(crypto::as_bytes(csv), 32)));
  auto k = hub::find_kit(h.db(), "3002");
  REQUIRE(k);
  CHECK(k->expiry == "2027-12-31");
  CHECK(k->custody_kind == "depot");
  CHECK(k->custody_id == "EU-01");
  CHECK(k->status == shared::KitStatus::available);
  auto entries = hub::audit_entries(h.db(), {std::nullopt, "", "vendor.csv"});
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].new_value.find(r->hash_hex) != std::string::npos);
  CHECK(entries[0].new_value.find("VLC25") == std::string::npos);  // no count per kit type
}

TEST_CASE("kits generate refuses a hub that holds kits, and numbers kits for one that has none") {
  LotsHub h(one_each(), example_kits());
  CHECK(hub::generate_kit_list(*h.hub, "tester", kHubNow).error().code == shared::Errc::conflict);
  h.db().prepare("DELETE FROM hub_kits").run();
  auto made = hub::generate_kit_list(*h.hub, "tester", kHubNow);
  REQUIRE_MESSAGE(made.ok(), made.error().message);
  CHECK(*made > 0);
  CHECK(h.count("SELECT count(*) FROM hub_kits") == *made);
}

TEST_CASE("a site is activated by its first node's enrollment, audited once") {
  LotsHub h;
  CHECK_FALSE(hub::site_active(h.db(), "101"));
  h.enroll("101");
  h.enroll("101");
  CHECK(hub::site_active(h.db(), "101"));
  CHECK(h.audited("site.activated") == 1);
}

TEST_CASE("a study that activates sites by hand refuses a node of an inactive site until it is activated, signed") {
  auto study = blocks_study();
  study["site_activation"] = "manual";
  LotsHub h(study);
  auto inv = hub::invite(*h.hub, "101", "site", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE(inv.ok());
  auto key = crypto::SigningKey::generate();
  auto refused = hub::enroll(*h.hub, {inv->token, key.public_key().hex(), ""}, kHubNow);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.refusal().message.find("site 101 is not activated yet") != std::string::npos);
  CHECK(h.hub->ledger().nodes().empty());
  CHECK(hub::activate_site(*h.hub, "101", "site initiation visit done", kBlindedManager, kHubNow).error().code ==
        shared::Errc::forbidden);
  CHECK(hub::activate_site(*h.hub, "999", "x", kSupply, kHubNow).error().code == shared::Errc::not_found);
  REQUIRE(hub::activate_site(*h.hub, "101", "site initiation visit done", kSupply, kHubNow).ok());
  CHECK(hub::activate_site(*h.hub, "101", "again", kSupply, kHubNow).error().code == shared::Errc::conflict);
  auto entries = hub::audit_entries(h.db(), {std::nullopt, "sam", "101"});
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].action == "site.activated");
  CHECK(entries[0].signature == "approved");
  auto ok = hub::enroll(*h.hub, {inv->token, key.public_key().hex(), ""}, kHubNow);
  CHECK_MESSAGE(ok.ok(), ok.refusal().message);
}

TEST_CASE("a kit's history runs from its list through its shipment, and a blinded reader sees neither type nor lot") {
  LotsHub h(one_each(), example_kits());
  auto node = h.enroll("101");
  REQUIRE(hub::relabel_lot(*h.hub, "L-ALL", "2028-06-30", "stability data", kSupply, kHubNow).ok());
  auto k = hub::find_kit(h.db(), "2001");
  REQUIRE(k);
  REQUIRE(k->custody_id == node);
  auto open = hub::kit_history(*h.hub, "2001", false);
  REQUIRE(open.ok());
  std::vector<std::string> actions;
  for (const auto& e : open->entries) actions.push_back(e.action);
  CHECK(actions == std::vector<std::string>{"lot.added", "lot.released", "kits.imported", "kit.state",
                                            "shipment.sent", "lot.relabelled"});
  CHECK(open->kit.kit_type == "VLC25");
  auto blinded = hub::kit_history(*h.hub, "2001", true);
  REQUIRE(blinded.ok());
  CHECK(blinded->entries.size() == open->entries.size());
  auto text = hub::to_json(*blinded, true).dump();
  for (const char* word : {"VLC25", "PBO", "L-ALL", "Velcardin", "Placebo"}) CHECK_MESSAGE(text.find(word) == std::string::npos, word);
  CHECK(hub::kit_history(*h.hub, "424242", true).error().code == shared::Errc::not_found);
}
