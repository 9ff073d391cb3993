#include "shared/study.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tests/support/test_support.h"

using irt::shared::load_study;
using nlohmann::json;
namespace sh = irt::shared;

namespace {

json example(const std::string& name) {
  return json::parse(irt::test::read_file(irt::test::source_path("packaging/examples/" + name)));
}

json blocks() { return example("study-blocks.json"); }
json minimization() { return example("study-minimization.json"); }

std::vector<std::string> errors_of(const json& doc) {
  sh::StudyLoad load = load_study(doc.dump());
  CHECK_FALSE(load.study.has_value());
  return load.errors;
}

// The mutation must cause exactly one problem, reported at its path with the
// expected message; a second, unexpected error fails the test as well.
void expect_error(const json& doc, const std::string& expected) {
  auto errors = errors_of(doc);
  INFO("errors: " << json(errors).dump(2));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rfind(expected, 0) == 0);
}

}  // namespace

// ---- Valid documents -------------------------------------------------------

TEST_CASE("the permuted-blocks example loads with its arms, strata, sites and schedule") {
  sh::StudyLoad load = load_study(blocks().dump());
  INFO(json(load.errors).dump(2));
  REQUIRE(load.study.has_value());
  const sh::Study& s = *load.study;
  CHECK(s.id == "VLC-301");
  CHECK(s.version == 1);
  CHECK(s.blinding == sh::Blinding::double_blind);
  REQUIRE(s.arms.size() == 2);
  CHECK(s.arms[0].ratio == 1);
  CHECK(s.arms[0].blinded_label == s.arms[1].blinded_label);
  CHECK(s.randomization.method == sh::Method::permuted_blocks);
  CHECK(s.randomization.block_sizes == std::vector<int>{4, 6});
  CHECK(s.randomization.strata == std::vector<std::string>{"site", "diabetes"});
  CHECK(s.sites.size() == 3);
  CHECK(s.countries.size() == 2);
  CHECK(s.depots.size() == 1);
  REQUIRE(s.visits.size() == 6);
  const sh::Visit* v1 = s.find_visit("V1");
  REQUIRE(v1);
  CHECK(v1->randomization);
  CHECK(v1->dispense.size() == 2);
  CHECK(s.find_visit("V3")->window_after == 3);
  CHECK(s.supply.trigger_level < s.supply.max_level);
  CHECK(s.supply.initial_shipment.size() == 2);
  CHECK(s.roles.size() == 10);
  CHECK_FALSE(s.eligibility.empty());
}

TEST_CASE("the minimization example loads with three arms 2:1:1, three factors and a nurse-tablet site") {
  sh::StudyLoad load = load_study(minimization().dump());
  INFO(json(load.errors).dump(2));
  REQUIRE(load.study.has_value());
  const sh::Study& s = *load.study;
  REQUIRE(s.arms.size() == 3);
  CHECK(s.arms[0].ratio == 2);
  CHECK(s.arms[1].ratio == 1);
  CHECK(s.arms[2].ratio == 1);
  CHECK(s.randomization.method == sh::Method::minimization);
  REQUIRE(s.randomization.minimization_factors.size() == 3);
  CHECK(s.randomization.minimization_factors[2].factor == "hoehn_yahr");
  CHECK(s.randomization.minimization_factors[2].weight == 2.0);
  CHECK(s.randomization.preferred_probability == 0.8);
  CHECK(s.randomization.initial_random == 12);
  CHECK(s.sites.size() == 4);
  CHECK(s.depots.size() == 2);
  const sh::Site* tablet_site = s.find_site("402");
  REQUIRE(tablet_site);
  CHECK(tablet_site->node_kinds == std::vector<sh::NodeKind>{sh::NodeKind::site, sh::NodeKind::nurse});
  CHECK(s.find_site("301")->node_kinds == std::vector<sh::NodeKind>{sh::NodeKind::site});
  REQUIRE(s.caps.size() == 2);
  CHECK(s.caps[0].scope == sh::CapScope::cohort);
  CHECK(s.caps[1].stratum.at("site") == "402");
}

TEST_CASE("the amended example loads as version 2 with a fourth site") {
  sh::StudyLoad load = load_study(example("study-blocks-v2.json").dump());
  REQUIRE(load.study.has_value());
  CHECK(load.study->version == 2);
  CHECK(load.study->sites.size() == 4);
  CHECK(load.study->find_visit("V3")->window_after == 5);
}

TEST_CASE("the derived site and country factors take their levels from the sites and countries") {
  sh::StudyLoad load = load_study(blocks().dump());
  REQUIRE(load.study.has_value());
  const sh::Factor* site = load.study->find_factor("site");
  const sh::Factor* country = load.study->find_factor("country");
  REQUIRE(site);
  REQUIRE(country);
  CHECK(site->levels == std::vector<std::string>{"101", "102", "201"});
  CHECK(country->levels == std::vector<std::string>{"FR", "BE"});
  CHECK(load.study->find_factor("diabetes")->levels == std::vector<std::string>{"yes", "no"});
  CHECK(load.study->find_factor("sex") == nullptr);
}

TEST_CASE("roles carry their blinding and permissions") {
  sh::StudyLoad load = load_study(blocks().dump());
  REQUIRE(load.study.has_value());
  const sh::Role* investigator = load.study->find_role("investigator");
  const sh::Role* pharmacist = load.study->find_role("pharmacist");
  const sh::Role* statistician = load.study->find_role("unblinded-statistician");
  REQUIRE(investigator);
  REQUIRE(pharmacist);
  REQUIRE(statistician);
  CHECK(investigator->blinded);
  CHECK(investigator->can(sh::Permission::unblind));
  CHECK_FALSE(investigator->can(sh::Permission::view_unblinded));
  CHECK_FALSE(pharmacist->blinded);
  CHECK(pharmacist->can(sh::Permission::view_unblinded));
  CHECK_FALSE(statistician->blinded);
  CHECK(load.study->find_role("sponsor") == nullptr);
}

TEST_CASE("kit types keep their arm, units and storage") {
  sh::StudyLoad load = load_study(blocks().dump());
  REQUIRE(load.study.has_value());
  const sh::KitType* kit = load.study->find_kit_type("PBO");
  REQUIRE(kit);
  CHECK(kit->arm == "B");
  CHECK(kit->units_per_kit == 30);
  CHECK(kit->storage.min_celsius == 15);
  CHECK(kit->storage.max_celsius == 25);
  CHECK(load.study->find_arm(kit->arm)->name == "Placebo once daily");
}

TEST_CASE("simple randomization needs no parameters") {
  json doc = blocks();
  doc["randomization"] = {{"method", "simple"}};
  sh::StudyLoad load = load_study(doc.dump());
  INFO(json(load.errors).dump(2));
  REQUIRE(load.study.has_value());
  CHECK(load.study->randomization.method == sh::Method::simple);
}

TEST_CASE("a two-arm 1:1 study may use the biased coin with its probability") {
  json doc = blocks();
  doc["randomization"] = {{"method", "biased_coin"}, {"coin_probability", 0.75}};
  sh::StudyLoad load = load_study(doc.dump());
  INFO(json(load.errors).dump(2));
  REQUIRE(load.study.has_value());
  CHECK(load.study->randomization.coin_probability == 0.75);
}

TEST_CASE("optional fields take their documented defaults") {
  json doc = blocks();
  doc["supply"].erase("offline_days");
  doc["supply"].erase("predictive_horizon_days");
  doc.erase("format");
  doc["sites"][0]["active"] = false;
  sh::StudyLoad load = load_study(doc.dump());
  REQUIRE(load.study.has_value());
  CHECK(load.study->supply.offline_days == 14);
  CHECK(load.study->supply.predictive_horizon_days == 0);
  CHECK_FALSE(load.study->sites[0].active);
  CHECK(load.study->sites[1].active);
  CHECK(load.study->find_visit("SCR")->window_after == 0);
}

TEST_CASE("names of enum values read back as the document spells them") {
  CHECK(sh::to_string(sh::Method::permuted_blocks) == "permuted_blocks");
  CHECK(sh::to_string(sh::Method::max_tolerated_imbalance) == "max_tolerated_imbalance");
  CHECK(sh::to_string(sh::Blinding::double_blind) == "double");
  CHECK(sh::to_string(sh::Permission::view_unblinded) == "view_unblinded");
  CHECK(sh::to_string(sh::NodeKind::nurse) == "nurse_tablet");
  CHECK(sh::to_string(sh::ImbalanceMeasure::standard_deviation) == "standard_deviation");
  CHECK(sh::to_string(sh::CapScope::cohort) == "cohort");
}

// ---- Invalid documents: one fault each, reported at its path ---------------

TEST_CASE("a zero ratio names the arm's ratio") {
  json doc = blocks();
  doc["arms"][1]["ratio"] = 0;
  expect_error(doc, "arms[1].ratio: must be a positive integer (got 0)");
}

TEST_CASE("a ratio given as a string is a type error") {
  json doc = blocks();
  doc["arms"][1]["ratio"] = "1";
  expect_error(doc, "arms[1].ratio: must be a positive integer (got string \"1\")");
}

TEST_CASE("a misspelt key is named with the likely key and the known keys") {
  json doc = blocks();
  doc["arms"][0].erase("ratio");
  doc["arms"][0]["raito"] = 1;
  auto errors = errors_of(doc);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0] == "arms[0].raito: unknown key; did you mean \"ratio\"? (known keys: id, name, blinded_label, ratio, closed)");
  CHECK(errors[1].rfind("arms[0].ratio: missing; add a positive integer", 0) == 0);
}

TEST_CASE("an unknown top-level key is an error, not ignored") {
  json doc = blocks();
  doc["sponsor"] = "Velcardin Pharma";
  expect_error(doc, "sponsor: unknown key; remove it or use a known key: format, id, name");
}

TEST_CASE("a missing required field names the path and what to add") {
  json doc = blocks();
  doc["sites"][0].erase("name");
  expect_error(doc, "sites[0].name: missing; add a non-empty string");
}

TEST_CASE("a list given as an object is a type error") {
  json doc = blocks();
  doc["sites"] = json::object();
  expect_error(doc, "sites: must be an array of sites (got an object)");
}

TEST_CASE("a block size that cannot honour the ratio is refused") {
  json doc = blocks();
  doc["randomization"]["block_sizes"] = {4, 5};
  expect_error(doc, "randomization.block_sizes[1]: block size 5 cannot honour the ratio 1:1; use a multiple of 2");
}

TEST_CASE("a block size over the limit is refused, since a list stores sizes in 16 bits") {
  json doc = blocks();
  doc["randomization"]["block_sizes"] = {4, 65538};
  expect_error(doc, "randomization.block_sizes[1]: block size 65538 is more than 1000; blocks are a few times the "
                    "ratio total (2)");
}

TEST_CASE("a block size must be a multiple of an unequal ratio's total") {
  json doc = minimization();
  doc["randomization"] = {{"method", "permuted_blocks"}, {"block_sizes", {4, 6}}};
  expect_error(doc, "randomization.block_sizes[1]: block size 6 cannot honour the ratio 2:1:1; use a multiple of 4");
}

TEST_CASE("a kit type for an unknown arm is refused") {
  json doc = blocks();
  doc["kit_types"][1]["arm"] = "C";
  expect_error(doc, "kit_types[1].arm: unknown arm \"C\"; use one of: A, B");
}

TEST_CASE("a visit dispensing an unknown kit type is refused") {
  json doc = blocks();
  doc["visits"][2]["dispense"][1]["kit_type"] = "PBO-X";
  expect_error(doc, "visits[2].dispense[1].kit_type: unknown kit type \"PBO-X\"; use one of: VLC25, PBO");
}

TEST_CASE("a visit dispensing another arm's kit type is refused") {
  json doc = blocks();
  doc["visits"][2]["dispense"][1]["kit_type"] = "VLC25";
  expect_error(doc, "visits[2].dispense[1].kit_type: kit type \"VLC25\" treats arm \"A\", not \"B\"");
}

TEST_CASE("a duplicate site id names both places") {
  json doc = blocks();
  doc["sites"][1]["id"] = "101";
  expect_error(doc, "sites[1].id: duplicate site id \"101\" (first at sites[0].id)");
}

TEST_CASE("a duplicate visit id is refused") {
  json doc = blocks();
  doc["visits"][3]["id"] = "V2";
  expect_error(doc, "visits[3].id: duplicate visit id \"V2\" (first at visits[2].id)");
}

TEST_CASE("a stratum on an undefined factor is refused") {
  json doc = blocks();
  doc["randomization"]["strata"] = {"site", "sex"};
  expect_error(doc, "randomization.strata[1]: unknown factor \"sex\"; use one of: diabetes, site, country");
}

TEST_CASE("a minimization factor that does not exist is refused") {
  json doc = minimization();
  doc["randomization"]["minimization_factors"][1]["factor"] = "sex";
  expect_error(doc, "randomization.minimization_factors[1].factor: unknown factor \"sex\"");
}

TEST_CASE("a minimization probability of one half or less is refused") {
  json doc = minimization();
  doc["randomization"]["preferred_probability"] = 0.5;
  expect_error(doc, "randomization.preferred_probability: must be a number greater than 0.5 and at most 1 (got 0.5)");
}

TEST_CASE("a minimization probability above one is refused") {
  json doc = minimization();
  doc["randomization"]["preferred_probability"] = 1.2;
  expect_error(doc, "randomization.preferred_probability: must be a number greater than 0.5 and at most 1 (got 1.2)");
}

TEST_CASE("the biased coin with three arms is refused") {
  json doc = minimization();
  doc["randomization"] = {{"method", "biased_coin"}};
  expect_error(doc, "randomization.method: biased_coin needs exactly two arms (got 3)");
}

TEST_CASE("the big stick design with unequal ratios is refused") {
  json doc = blocks();
  doc["arms"][0]["ratio"] = 2;
  doc["randomization"] = {{"method", "max_tolerated_imbalance"}, {"max_tolerated_imbalance", 3}};
  expect_error(doc, "randomization.method: max_tolerated_imbalance needs a 1:1 ratio (got 2:1)");
}

TEST_CASE("a parameter of another method is refused rather than ignored") {
  json doc = blocks();
  doc["randomization"]["preferred_probability"] = 0.8;
  expect_error(doc, "randomization.preferred_probability: not used by method permuted_blocks; remove it");
}

TEST_CASE("an unknown method lists the methods") {
  json doc = blocks();
  doc["randomization"]["method"] = "blocks";
  expect_error(doc, "randomization.method: must be one of simple, permuted_blocks, minimization, biased_coin, "
                    "max_tolerated_imbalance (got string \"blocks\")");
}

TEST_CASE("a negative visit window is refused") {
  json doc = blocks();
  doc["visits"][2]["window_before"] = -1;
  expect_error(doc, "visits[2].window_before: must be a non-negative number of days (got -1)");
}

TEST_CASE("a schedule without a randomization visit is refused") {
  json doc = blocks();
  doc["visits"][1]["randomization"] = false;
  expect_error(doc, "visits: no visit has \"randomization\": true");
}

TEST_CASE("a second randomization visit is refused") {
  json doc = blocks();
  doc["visits"][2]["randomization"] = true;
  expect_error(doc, "visits[2].randomization: a second randomization visit (the first is visits[1])");
}

TEST_CASE("the randomization visit must be day 0") {
  json doc = blocks();
  doc["visits"][1]["day"] = 1;
  expect_error(doc, "visits[1].day: the randomization visit is day 0 by definition (got 1)");
}

TEST_CASE("visits out of schedule order are refused") {
  json doc = blocks();
  doc["visits"][3]["day"] = 20;
  expect_error(doc, "visits[3].day: must come after the previous visit's day 28 (got 20)");
}

TEST_CASE("a dispensing visit without an entry for one arm is refused") {
  json doc = blocks();
  doc["visits"][2]["dispense"].erase(1);
  expect_error(doc, "visits[2].dispense: no entry for arm \"B\"");
}

TEST_CASE("a blinded study dispensing unequal kit counts per arm is refused") {
  json doc = blocks();
  doc["visits"][2]["dispense"][1]["count"] = 2;
  expect_error(doc, "visits[2].dispense: arm \"A\" receives 1 kit(s) and arm \"B\" 2");
}

TEST_CASE("a visit before randomization cannot dispense") {
  json doc = blocks();
  doc["visits"][0]["dispense"] = {{{"arm", "A"}, {"kit_type", "VLC25"}, {"count", 1}},
                                  {{"arm", "B"}, {"kit_type", "PBO"}, {"count", 1}}};
  expect_error(doc, "visits[0].dispense: a visit before randomization cannot dispense by arm");
}

TEST_CASE("a blinded role holding view_unblinded is refused") {
  json doc = blocks();
  doc["roles"][4]["permissions"].push_back("view_unblinded");
  expect_error(doc, "roles[4].permissions: a blinded role cannot hold view_unblinded");
}

TEST_CASE("a blinded unblinded-statistician is refused") {
  json doc = blocks();
  doc["roles"][7]["blinded"] = true;
  doc["roles"][7]["permissions"] = {"view_participants", "export_data"};
  expect_error(doc, "roles[7].blinded: the unblinded-statistician role is unblinded by definition");
}

TEST_CASE("a missing mandatory role is named") {
  json doc = blocks();
  doc["roles"].erase(9);
  expect_error(doc, "roles: missing mandatory role \"auditor\"");
}

TEST_CASE("an unknown permission lists the permissions") {
  json doc = blocks();
  doc["roles"][0]["permissions"].push_back("fly");
  expect_error(doc, "roles[0].permissions[7]: must be one of screen, randomize,");
}

TEST_CASE("a cap on an unknown level is refused") {
  json doc = blocks();
  doc["caps"][0]["stratum"]["diabetes"] = "maybe";
  expect_error(doc, "caps[0].stratum.diabetes: unknown level \"maybe\" of factor \"diabetes\"; use one of: yes, no");
}

TEST_CASE("a cap on an unknown site is refused through the derived site factor") {
  json doc = blocks();
  doc["caps"][0]["stratum"] = {{"site", "999"}};
  expect_error(doc, "caps[0].stratum.site: unknown level \"999\" of factor \"site\"; use one of: 101, 102, 201");
}

TEST_CASE("a cap on an unknown arm is refused") {
  json doc = blocks();
  doc["caps"][0] = {{"scope", "arm"}, {"arm", "Z"}, {"limit", 50}};
  expect_error(doc, "caps[0].arm: unknown arm \"Z\"; use one of: A, B");
}

TEST_CASE("a cap on an unknown cohort is refused") {
  json doc = minimization();
  doc["caps"][0]["cohort"] = "pd";
  expect_error(doc, "caps[0].cohort: unknown cohort \"pd\"; use one of: main, pk");
}

// Dose escalation: "pk" opens by decision after "main" is closed (docs/study-config.md, "cohorts").
json escalation() {
  json doc = minimization();
  doc["cohorts"][0]["opens"] = "by_decision";
  doc["cohorts"][1]["opens"] = "by_decision";
  doc["cohorts"][1]["after"] = "main";
  doc["caps"].push_back({{"scope", "cohort"}, {"cohort", "main"}, {"limit", 12}});
  return doc;
}

TEST_CASE("cohorts opened by decision load with the cohort they wait for") {
  sh::StudyLoad load = load_study(escalation().dump());
  INFO(json(load.errors).dump(2));
  REQUIRE(load.study.has_value());
  CHECK(load.study->cohorts[0].opens_by_decision);
  CHECK(load.study->cohorts[0].after.empty());
  CHECK(load.study->cohorts[1].opens_by_decision);
  CHECK(load.study->cohorts[1].after == "main");
  // Without "opens", a cohort is open from the start, as before.
  sh::StudyLoad plain = load_study(minimization().dump());
  REQUIRE(plain.study.has_value());
  CHECK_FALSE(plain.study->cohorts[1].opens_by_decision);
}

TEST_CASE("a cohort's opens is at_start or by_decision") {
  json doc = escalation();
  doc["cohorts"][1].erase("after");
  doc["cohorts"][1]["opens"] = "later";
  expect_error(doc, "cohorts[1].opens: must be one of at_start, by_decision");
}

TEST_CASE("a cohort opened by decision without a cap is refused, naming the cap to add") {
  json doc = escalation();
  doc["caps"].erase(doc["caps"].size() - 1);
  expect_error(doc, "cohorts[0].opens: cohort 'main' opens by decision and needs a cap: add {\"scope\": \"cohort\", "
                    "\"cohort\": \"main\", \"limit\": N}");
}

TEST_CASE("a cohort's after names an earlier cohort that opens by decision") {
  json doc = escalation();
  doc["cohorts"][1]["after"] = "pk";
  expect_error(doc, "cohorts[1].after: 'pk' is not a cohort listed before this one");
  doc = escalation();
  doc["cohorts"][0].erase("opens");
  doc["caps"].erase(doc["caps"].size() - 1);
  expect_error(doc, "cohorts[1].after: cohort 'main' is open from the start and is never closed by a decision");
  doc = escalation();
  doc["cohorts"][1].erase("opens");
  expect_error(doc, "cohorts[1].after: only a cohort that opens by decision waits for another");
}

TEST_CASE("a site in an unknown country is refused") {
  json doc = blocks();
  doc["sites"][0]["country"] = "DE";
  expect_error(doc, "sites[0].country: unknown country \"DE\"; use one of: FR, BE");
}

TEST_CASE("a depot serving an unknown country is refused") {
  json doc = blocks();
  doc["depots"][0]["countries"].push_back("US");
  expect_error(doc, "depots[0].countries[2]: unknown country \"US\"");
}

TEST_CASE("a country with sites but no depot serving it is refused") {
  json doc = minimization();
  doc["depots"][0]["countries"] = {"AT"};
  doc["supply"]["lead_times"].erase(0);
  expect_error(doc, "depots: no depot serves country \"DE\", where site \"301\" is");
}

TEST_CASE("a lead time from an unknown depot is refused") {
  json doc = blocks();
  doc["supply"]["lead_times"][0]["depot"] = "EU-02";
  expect_error(doc, "supply.lead_times[0].depot: unknown depot \"EU-02\"; use one of: EU-01");
}

TEST_CASE("a lead time to an unknown country is refused") {
  json doc = blocks();
  doc["supply"]["lead_times"][1]["country"] = "NL";
  expect_error(doc, "supply.lead_times[1].country: unknown country \"NL\"; use one of: FR, BE");
}

TEST_CASE("a country with sites but no lead time is refused") {
  json doc = blocks();
  doc["supply"]["lead_times"].erase(1);
  expect_error(doc, "supply.lead_times: no lead time to \"BE\" (site \"201\")");
}

TEST_CASE("an initial shipment of an unknown kit type is refused") {
  json doc = blocks();
  doc["supply"]["initial_shipment"][0]["kit_type"] = "VLC50";
  expect_error(doc, "supply.initial_shipment[0].kit_type: unknown kit type \"VLC50\"; use one of: VLC25, PBO");
}

TEST_CASE("a trigger level above the maximum level is refused") {
  json doc = blocks();
  doc["supply"]["trigger_level"] = 9;
  expect_error(doc, "supply.trigger_level: must be below max_level (got 9, max_level 8)");
}

TEST_CASE("invalid JSON is reported with its line and column") {
  std::string text = "{\n  \"id\": \"X\",\n  \"name\": \"y\"\n  \"version\": 1\n}\n";
  sh::StudyLoad load = load_study(text);
  CHECK_FALSE(load.study.has_value());
  REQUIRE(load.errors.size() == 1);
  CHECK(load.errors[0].rfind("document: invalid JSON at line 4, column ", 0) == 0);
}

TEST_CASE("a number too large for any type is reported as invalid JSON") {
  std::string text = blocks().dump();
  auto at = text.find("\"version\":1");
  REQUIRE(at != std::string::npos);
  text.replace(at, 11, "\"version\":1e999");
  sh::StudyLoad load = load_study(text);
  CHECK_FALSE(load.study.has_value());
  REQUIRE(load.errors.size() == 1);
  CHECK(load.errors[0].rfind("document: invalid JSON: number overflow", 0) == 0);
}

TEST_CASE("an unknown key with a line break is quoted in the path") {
  json doc = blocks();
  doc["supply"]["max\nlevel"] = 8;
  expect_error(doc, "supply.\"max\\nlevel\": unknown key;");
}

TEST_CASE("a key repeated in one object is refused, not silently overwritten") {
  std::string text = blocks().dump();
  auto at = text.find("\"ratio\":1");
  REQUIRE(at != std::string::npos);
  text.insert(at, "\"ratio\":3,");
  sh::StudyLoad load = load_study(text);
  CHECK_FALSE(load.study.has_value());
  REQUIRE(load.errors.size() == 1);
  CHECK(load.errors[0].rfind("arms[0].ratio: duplicate key", 0) == 0);
}

TEST_CASE("a factor named site is refused as reserved") {
  json doc = blocks();
  doc["factors"].push_back({{"id", "site"}, {"name", "Site"}, {"levels", {"101", "102"}}});
  expect_error(doc, "factors[1].id: \"site\" is reserved: its levels come from the sites list");
}

TEST_CASE("arms with different blinded labels in a blinded study are refused") {
  json doc = blocks();
  doc["arms"][1]["blinded_label"] = "Placebo";
  expect_error(doc, "arms[1].blinded_label: differs from arms[0].blinded_label");
}

TEST_CASE("a storage range with its minimum above its maximum is refused") {
  json doc = blocks();
  doc["kit_types"][0]["storage"]["min_celsius"] = 30;
  expect_error(doc, "kit_types[0].storage.min_celsius: is above max_celsius");
}

TEST_CASE("an unknown node kind lists the node kinds") {
  json doc = minimization();
  doc["sites"][3]["node_kinds"] = {"site", "tablet"};
  expect_error(doc, "sites[3].node_kinds[1]: must be one of site, nurse_tablet (got string \"tablet\")");
}

TEST_CASE("a document in another format version is refused") {
  json doc = blocks();
  doc["format"] = 2;
  expect_error(doc, "format: this hub reads format 1 (got 2)");
}

TEST_CASE("an id with spaces is refused") {
  json doc = blocks();
  doc["id"] = "VLC 301";
  expect_error(doc, "id: must be an id: 1 to 64 letters, digits");
}

TEST_CASE("a document that is not an object is refused") {
  expect_error(json::array({1, 2}), "document: must be an object (got an array)");
}

// ---- Collecting every problem ---------------------------------------------

TEST_CASE("every problem is reported, not only the first") {
  json doc = blocks();
  doc["arms"][1]["ratio"] = 0;
  doc["sites"][2]["country"] = "NL";
  doc["supply"]["trigger_level"] = 10;
  auto errors = errors_of(doc);
  INFO(json(errors).dump(2));
  REQUIRE(errors.size() == 3);
  CHECK(errors[0].rfind("arms[1].ratio:", 0) == 0);
  CHECK(errors[1].rfind("sites[2].country:", 0) == 0);
  CHECK(errors[2].rfind("supply.trigger_level:", 0) == 0);
}

TEST_CASE("a long value is quoted shortened so a message stays one readable line") {
  json doc = blocks();
  doc["kit_types"][1]["arm"] = std::string(500, 'Z') + "\n";
  auto errors = errors_of(doc);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].size() < 250);
  CHECK(errors[0].find('\n') == std::string::npos);
}

TEST_CASE("a missing file is an error naming the path") {
  sh::StudyLoad load = sh::load_study_file("/nonexistent/study.json");
  CHECK_FALSE(load.study.has_value());
  REQUIRE(load.errors.size() == 1);
  CHECK(load.errors[0] == "/nonexistent/study.json: no such file; check the path");
}

TEST_CASE("a file is loaded the same as its text") {
  sh::StudyLoad load = sh::load_study_file(irt::test::source_path("packaging/examples/study-minimization.json"));
  REQUIRE(load.study.has_value());
  CHECK(load.study->id == "NRV-210");
}

// ---- Resupply settings -------------------------------------------------------

namespace {

json with_resupply(json resupply) {
  json doc = blocks();
  doc["supply"].erase("trigger_level");
  doc["supply"].erase("max_level");
  doc["supply"].erase("predictive_horizon_days");
  doc["supply"]["resupply"] = std::move(resupply);
  return doc;
}

json min_max_levels() {
  return {{"strategy", "min_max"},
          {"levels", {{{"kit_type", "VLC25"}, {"trigger", 2}, {"up_to", 5}}, {{"kit_type", "PBO"}, {"trigger", 3}, {"up_to", 7}}}}};
}

}  // namespace

TEST_CASE("the old study-wide levels become min/max levels for every kit type") {
  sh::StudyLoad load = load_study(blocks().dump());
  REQUIRE(load.study.has_value());
  const auto& r = load.study->supply.resupply;
  CHECK(r.strategy == sh::ResupplyStrategy::min_max);
  CHECK(r.shipment_minimum == 1);
  REQUIRE(r.levels.size() == 2);
  CHECK(r.levels[0].kit_type == "VLC25");
  CHECK(r.levels[0].initial == 6);
  CHECK(r.levels[0].trigger == 3);
  CHECK(r.levels[0].up_to == 8);
  CHECK(r.levels[1].kit_type == "PBO");
  CHECK(r.levels[1].trigger == 3);
}

TEST_CASE("min/max levels per kit type load with the initial shipment as initial level") {
  json doc = with_resupply(min_max_levels());
  doc["supply"]["resupply"]["shipment_minimum"] = 2;
  sh::StudyLoad load = load_study(doc.dump());
  INFO(json(load.errors).dump(2));
  REQUIRE(load.study.has_value());
  const auto& s = load.study->supply;
  REQUIRE(s.resupply.levels.size() == 2);
  CHECK(s.resupply.levels[1].kit_type == "PBO");
  CHECK(s.resupply.levels[1].initial == 6);
  CHECK(s.resupply.levels[1].trigger == 3);
  CHECK(s.resupply.levels[1].up_to == 7);
  CHECK(s.resupply.shipment_minimum == 2);
  CHECK(s.max_level == 7);  // the largest level, for those who size depots by it
}

TEST_CASE("predictive resupply settings load") {
  json doc = with_resupply({{"strategy", "predictive"}, {"trigger_window_days", 14}, {"resupply_window_days", 42},
                            {"min_buffer", 1}, {"max_buffer", 3}});
  sh::StudyLoad load = load_study(doc.dump());
  INFO(json(load.errors).dump(2));
  REQUIRE(load.study.has_value());
  const auto& r = load.study->supply.resupply;
  CHECK(r.strategy == sh::ResupplyStrategy::predictive);
  CHECK(r.predictive.trigger_window_days == 14);
  CHECK(r.predictive.resupply_window_days == 42);
  CHECK(r.predictive.min_buffer == 1);
  CHECK(r.predictive.max_buffer == 3);
  CHECK(r.levels.size() == 2);
}

TEST_CASE("the old levels beside supply.resupply are refused") {
  json doc = with_resupply(min_max_levels());
  doc["supply"]["trigger_level"] = 3;
  expect_error(doc, "supply.trigger_level: cannot be given with supply.resupply; remove it");
}

TEST_CASE("without supply.resupply the old levels are required") {
  json doc = blocks();
  doc["supply"].erase("max_level");
  expect_error(doc, "supply.max_level: missing; add a positive number of kits (or supply.resupply)");
}

TEST_CASE("a min/max trigger at or above its up_to level is refused with its path") {
  json doc = with_resupply(min_max_levels());
  doc["supply"]["resupply"]["levels"][1]["trigger"] = 7;
  expect_error(doc, "supply.resupply.levels[1].trigger: must be below up_to (got 7, up_to 7)");
}

TEST_CASE("min/max levels must cover every kit type once, and only known ones") {
  json doc = with_resupply(min_max_levels());
  doc["supply"]["resupply"]["levels"].erase(1);
  expect_error(doc, "supply.resupply.levels: no levels for kit type \"PBO\"; add");
  doc = with_resupply(min_max_levels());
  doc["supply"]["resupply"]["levels"][1]["kit_type"] = "VLC50";
  auto errors = errors_of(doc);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].rfind("supply.resupply.levels[1].kit_type: unknown kit type \"VLC50\"", 0) == 0);
  CHECK(errors[1].rfind("supply.resupply.levels: no levels for kit type \"PBO\"", 0) == 0);
  doc = with_resupply(min_max_levels());
  doc["supply"]["resupply"]["levels"][1]["kit_type"] = "VLC25";
  errors = errors_of(doc);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].rfind("supply.resupply.levels[1].kit_type: duplicate kit type in levels \"VLC25\"", 0) == 0);
}

TEST_CASE("predictive windows and buffers are checked with their paths") {
  json base = with_resupply({{"strategy", "predictive"}, {"trigger_window_days", 14}, {"resupply_window_days", 42},
                             {"min_buffer", 1}, {"max_buffer", 3}});
  json doc = base;
  doc["supply"]["resupply"]["resupply_window_days"] = 7;
  expect_error(doc, "supply.resupply.resupply_window_days: must be at least trigger_window_days (got 7, trigger_window_days 14)");
  doc = base;
  doc["supply"]["resupply"]["max_buffer"] = 0;
  expect_error(doc, "supply.resupply.max_buffer: must be at least min_buffer (got 0, min_buffer 1)");
  doc = base;
  doc["supply"]["resupply"]["min_buffer"] = -1;
  expect_error(doc, "supply.resupply.min_buffer: must be a non-negative number of kits (got -1)");
  doc = base;
  doc["supply"]["resupply"].erase("trigger_window_days");
  expect_error(doc, "supply.resupply.trigger_window_days: missing");
  doc = base;
  doc["supply"]["resupply"]["levels"] = json::array();
  expect_error(doc, "supply.resupply.levels: belongs to the min_max strategy");
  doc = with_resupply(min_max_levels());
  doc["supply"]["resupply"]["min_buffer"] = 1;
  expect_error(doc, "supply.resupply.min_buffer: belongs to the predictive strategy");
  doc = with_resupply(min_max_levels());
  doc["supply"]["resupply"]["strategy"] = "just_in_time";
  expect_error(doc, "supply.resupply.strategy: must be one of min_max, predictive (got string \"just_in_time\")");
}

// ---- Expiry windows and site activation --------------------------------------

namespace {
json windows(int ship, int count, int dispense) {
  return {{"do_not_ship_days", ship}, {"do_not_count_days", count}, {"do_not_dispense_days", dispense}};
}
}  // namespace

TEST_CASE("without expiry windows every kit type takes supply.do_not_dispense_days for all three") {
  auto load = load_study(blocks().dump());
  REQUIRE(load.study);
  const auto w = load.study->expiry_windows("PBO", "FR");
  CHECK(w.do_not_ship_days == 70);
  CHECK(w.do_not_count_days == 70);
  CHECK(w.do_not_dispense_days == 70);
  CHECK_FALSE(load.study->manual_site_activation);
}

TEST_CASE("expiry windows per kit type with a country exception that inherits what it leaves out") {
  auto doc = blocks();
  for (std::size_t i : {0u, 1u}) {
    doc["kit_types"][i]["expiry_windows"] = windows(120, 90, 60);
    doc["kit_types"][i]["expiry_windows"]["countries"] = {{"BE", {{"do_not_ship_days", 150}}}};
  }
  doc["site_activation"] = "manual";
  auto load = load_study(doc.dump());
  INFO(json(load.errors).dump(2));
  REQUIRE(load.study);
  const auto& s = *load.study;
  CHECK(s.expiry_windows("VLC25", "FR") == sh::ExpiryWindows{120, 90, 60});
  CHECK(s.expiry_windows("VLC25", "BE") == sh::ExpiryWindows{150, 90, 60});
  CHECK(s.manual_site_activation);
}

TEST_CASE("do-not-ship below do-not-count is refused at its path") {
  auto doc = blocks();
  for (std::size_t i : {0u, 1u}) doc["kit_types"][i]["expiry_windows"] = windows(30, 60, 10);
  auto errors = errors_of(doc);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].rfind("kit_types[0].expiry_windows.do_not_ship_days: must be at least do_not_count_days (got 30 < 60)",
                        0) == 0);
  CHECK(errors[1].rfind("kit_types[1].expiry_windows.do_not_ship_days:", 0) == 0);
}

TEST_CASE("do-not-count below do-not-dispense in a country exception is refused at its path") {
  auto doc = blocks();
  for (std::size_t i : {0u, 1u}) {
    doc["kit_types"][i]["expiry_windows"] = windows(90, 60, 30);
    doc["kit_types"][i]["expiry_windows"]["countries"] = {{"FR", {{"do_not_dispense_days", 75}}}};
  }
  auto errors = errors_of(doc);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0] == "kit_types[0].expiry_windows.countries.FR.do_not_count_days: must be at least "
                     "do_not_dispense_days (got 60 < 75); a kit that can no longer be dispensed must not count as "
                     "stock");
}

TEST_CASE("an expiry exception for a country the study does not have is refused") {
  auto doc = blocks();
  for (std::size_t i : {0u, 1u}) doc["kit_types"][i]["expiry_windows"] = {{"countries", {{"DE", windows(1, 1, 1)}}}};
  auto errors = errors_of(doc);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].rfind("kit_types[0].expiry_windows.countries.DE: unknown country", 0) == 0);
}

TEST_CASE("in a blinded study kit types that share a label must share their expiry windows") {
  auto doc = blocks();
  doc["kit_types"][0]["expiry_windows"] = windows(90, 60, 30);
  expect_error(doc, "kit_types[1].expiry_windows: differ from those of kit type \"VLC25\"");
}

TEST_CASE("site_activation takes at_first_enrollment or manual") {
  auto doc = blocks();
  doc["site_activation"] = "by_fax";
  expect_error(doc, "site_activation:");
}

// ---- Expected enrollment ----------------------------------------------------

TEST_CASE("expected enrollment: a site's own rate and date win over its country's, the country's over the study's") {
  auto doc = blocks();
  doc["enrollment"] = {{"target_participants", 120}, {"expected_rate_per_day", 0.02}, {"prior_weight_days", 14}};
  doc["countries"][0]["expected_rate_per_day"] = 0.05;  // FR
  doc["countries"][0]["activation_date"] = "2026-03-01";
  doc["sites"][0]["expected_rate_per_day"] = 0.1;       // 101, in FR
  doc["sites"][1]["activation_date"] = "2026-02-01";    // 102, in FR
  auto load = load_study(doc.dump());
  INFO(json(load.errors).dump(2));
  REQUIRE(load.study.has_value());
  const auto& s = *load.study;
  CHECK(s.enrollment.target_participants == 120);
  CHECK(s.enrollment.prior_weight_days == 14);
  auto e101 = s.expected_enrollment("101");
  CHECK(*e101.rate_per_day == 0.1);
  CHECK(*e101.activation_date == *sh::parse_date("2026-03-01"));
  auto e102 = s.expected_enrollment("102");
  CHECK(*e102.rate_per_day == 0.05);
  CHECK(*e102.activation_date == *sh::parse_date("2026-02-01"));
  auto e201 = s.expected_enrollment("201");  // BE states nothing
  CHECK(*e201.rate_per_day == 0.02);
  CHECK_FALSE(e201.activation_date.has_value());
}

TEST_CASE("expected enrollment is optional: without it no rate, no target and a prior weight of 28 days") {
  auto doc = blocks();
  doc.erase("enrollment");
  auto load = load_study(doc.dump());
  REQUIRE(load.study.has_value());
  CHECK_FALSE(load.study->expected_enrollment("101").rate_per_day.has_value());
  CHECK(load.study->enrollment.target_participants == 0);
  CHECK(load.study->enrollment.prior_weight_days == 28);
}

TEST_CASE("expected enrollment values out of range are named by their path") {
  auto doc = blocks();
  doc["sites"][1]["expected_rate_per_day"] = 0;
  expect_error(doc, "sites[1].expected_rate_per_day: must be a positive number of participants per day, at most 1000 (got 0)");
  doc = blocks();
  doc["countries"][1]["activation_date"] = "2026-02-30";
  expect_error(doc, "countries[1].activation_date: must be a date \"YYYY-MM-DD\" (the planned activation) (got string \"2026-02-30\")");
  doc = blocks();
  doc["enrollment"] = {{"prior_weight_days", 0}};
  expect_error(doc, "enrollment.prior_weight_days: must be a number of days above 0, at most 3650 (got 0)");
  doc = blocks();
  doc["enrollment"] = {{"target_participants", -3}};
  expect_error(doc, "enrollment.target_participants: must be a positive number of participants (got -3)");
  doc = blocks();
  doc["enrollment"] = {{"target", 3}};
  expect_error(doc, "enrollment.target: unknown key");
}

// ---- An arm closed for some strata or from a date (docs/study-config.md, "arms")

TEST_CASE("an arm's closed: true, or from a date, or for some strata, or both, and bad values name the fix") {
  json doc = blocks();
  doc["arms"][1]["closed"] = {{"from", "2027-03-01"}, {"strata", {{{"diabetes", "yes"}}, {{"site", "101"}}}}};
  auto load = load_study(doc.dump());
  REQUIRE_MESSAGE(load.study, json(load.errors).dump());
  const auto& b = load.study->arms[1];
  CHECK(b.closed);
  CHECK(b.closure.from == sh::parse_date("2027-03-01"));
  REQUIRE(b.closure.strata.size() == 2);
  CHECK(b.closure.text() == R"({"from":"2027-03-01","strata":[{"diabetes":"yes"},{"site":"101"}]})");
  const auto day = *sh::parse_date("2027-03-01");
  CHECK(load.study->arm_closed_for("B", {{"site", "102"}, {"diabetes", "yes"}}, day));
  CHECK(load.study->arm_closed_for("B", {{"site", "101"}, {"diabetes", "no"}}, day));
  CHECK_FALSE(load.study->arm_closed_for("B", {{"site", "102"}, {"diabetes", "no"}}, day));
  CHECK_FALSE(load.study->arm_closed_for("B", {{"site", "101"}, {"diabetes", "yes"}}, day - 1));
  CHECK_FALSE(load.study->arm_closed_everywhere("B", day + 1000));
  CHECK_FALSE(load.study->arm_closed_for("A", {{"site", "101"}, {"diabetes", "yes"}}, day));
  // A closure is never loosened: a wider one covers a narrower one, not the reverse.
  sh::ArmClosure all, later, yes;
  later.from = day + 1;
  yes.strata = {{{"diabetes", "yes"}}};
  CHECK(all.covers(b.closure));
  CHECK_FALSE(b.closure.covers(all));
  CHECK_FALSE(later.covers(b.closure));
  CHECK(b.closure.covers(sh::ArmClosure{day + 1, {{{"diabetes", "yes"}, {"site", "102"}}}}));
  CHECK_FALSE(yes.covers(b.closure));

  auto with = [](const json& closed) {
    json d = blocks();
    d["arms"][1]["closed"] = closed;
    return d;
  };
  expect_error(with({{"from", "2027-02-30"}}), "arms[1].closed.from: must be a date \"YYYY-MM-DD\"");
  expect_error(with({{"strata", {{{"diabetes", "maybe"}}}}}),
               "arms[1].closed.strata[0].diabetes: unknown level \"maybe\" of factor \"diabetes\"");
  expect_error(with({{"strata", {{{"diabtes", "yes"}}}}}), "arms[1].closed.strata[0].diabtes: unknown factor");
  expect_error(with({{"strata", json::array()}}), "arms[1].closed.strata: must be a non-empty list");
  expect_error(with({{"until", "2027-03-01"}}), "arms[1].closed.until: unknown key");
  expect_error(with("yes"), "arms[1].closed: must be true, false, or an object");
  // A list design closes by stratum: only its stratification factors.
  json m = minimization();
  m["arms"][2]["closed"] = {{"strata", {{{"age_group", "65_or_over"}}}}};
  CHECK(load_study(m.dump()).study);
  json nonstrat = blocks();
  nonstrat["factors"].push_back({{"id", "sex"}, {"name", "Sex"}, {"levels", {"F", "M"}}});
  nonstrat["arms"][1]["closed"] = {{"strata", {{{"sex", "F"}}}}};
  expect_error(nonstrat, "arms[1].closed.strata[0].sex: factor \"sex\" is not a stratification factor");
  // Closed for some strata, every arm is still open somewhere.
  json both = blocks();
  both["arms"][0]["closed"] = {{"strata", {{{"diabetes", "yes"}}}}};
  both["arms"][1]["closed"] = {{"strata", {{{"diabetes", "no"}}}}};
  CHECK(load_study(both.dump()).study);
}
