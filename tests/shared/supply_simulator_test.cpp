#include "shared/supply_simulator.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "crypto/deterministic_stream.h"
#include "crypto/hash.h"
#include "tests/support/test_support.h"

namespace sh = irt::shared;
using nlohmann::json;

namespace {

class StreamSource final : public sh::RandomSource {
 public:
  explicit StreamSource(irt::crypto::ByteView seed) : stream_(seed) {}
  void fill(std::span<std::uint8_t> out) override { stream_.fill(out); }

 private:
  irt::crypto::DeterministicStream stream_;
};

// Run i from BLAKE2b(seed || i), as the hub's command derives it.
class Runs final : public sh::RunSources {
 public:
  explicit Runs(std::uint8_t seed) : seed_(32, seed) {}
  std::unique_ptr<sh::RandomSource> for_run(std::size_t run) const override {
    irt::crypto::Bytes m = seed_;
    for (int i = 0; i < 8; ++i) m.push_back(static_cast<std::uint8_t>(run >> (8 * i)));
    return std::make_unique<StreamSource>(irt::crypto::blake2b(m, 32));
  }

 private:
  irt::crypto::Bytes seed_;
};

json reference_study() {
  return json::parse(irt::test::read_file(irt::test::source_path("packaging/examples/supply-reference.json")));
}

json reference_scenario() {
  return json::parse(irt::test::read_file(irt::test::source_path("packaging/examples/supply-reference-scenario.json")));
}

sh::Study study_of(const json& doc) {
  auto load = sh::load_study(doc.dump());
  INFO(json(load.errors).dump(2));
  REQUIRE(load.study);
  return *load.study;
}

sh::SupplyScenario scenario_of(const json& doc, const sh::Study& study) {
  auto load = sh::load_supply_scenario(doc.dump(), study);
  INFO(json(load.errors).dump(2));
  REQUIRE(load.scenario);
  return *load.scenario;
}

// The reference study cut down to its first `visits` dispensing visits, the
// end-of-study visit dropped.
json study_with_visits(std::size_t visits) {
  json doc = reference_study();
  json kept = json::array();
  for (std::size_t i = 0; i < visits; ++i) kept.push_back(doc["visits"][i]);
  doc["visits"] = kept;
  return doc;
}

double mean_of(const sh::SupplySimulation& s, std::size_t strategy, const std::string& metric) {
  const auto& names = sh::supply_metric_names();
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == metric) return s.strategies[strategy].metrics[i].mean;
  FAIL("no metric " << metric);
  return 0;
}

double sd_of(const sh::SupplySimulation& s, std::size_t strategy, const std::string& metric) {
  const auto& names = sh::supply_metric_names();
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == metric) return s.strategies[strategy].metrics[i].sd;
  FAIL("no metric " << metric);
  return 0;
}

sh::SupplySimulation simulate(const sh::Study& study, const sh::SupplyScenario& scenario, std::size_t runs,
                              std::uint8_t seed = 1, std::size_t threads = 0) {
  auto r = sh::simulate_supply(study, scenario, {.runs = runs, .threads = threads}, Runs(seed));
  REQUIRE(r);
  return *r;
}

}  // namespace

TEST_CASE("one site with regular arrivals gives the shipments and overage worked out by hand") {
  // Two arms 1:1 in blocks of 2, one kit (of the arm's kit type, both labelled
  // alike) at randomization only. Participants arrive on days 10, 20, 30, 40.
  // Min/max 1/2 per kit type, so the group orders at 2 kits and fills to 4:
  //   day 0   initial 2 + 2 (shipment 1)          held 4
  //   day 10  first participant                   held 3
  //   day 20  second, the other arm (its block)   held 2: one of each
  //   day 21  review: 2 <= 2, order 4 - 2 = 2, one of each (shipment 2), arrives day 24
  //   day 30  third                               held 3
  //   day 35  review: 3 > 2 and no kit type empty: nothing
  //   day 40  fourth, the other arm               held 2; all randomized, the run ends
  // Shipped 6, dispensed 4: overage 50 %, waste 33.3 %, 2 left at the site.
  json s = study_with_visits(1);
  s["randomization"]["block_sizes"] = {2};
  sh::Study study = study_of(s);
  json sc = {{"participants", 4},
             {"sites", {{{"activation_day", 0}, {"rate_per_day", 0.1}}}},
             {"arrivals", "regular"},
             {"allocation", "node_slices"},
             {"review_every_days", 7},
             {"lead_time_days", 3},
             {"strategy", {{"kind", "min_max"}, {"initial", 2}, {"trigger", 1}, {"up_to", 2}}},
             {"site_rule", "assigned_arm"},
             {"costs", {{"kit", 10}, {"shipment", 1}}}};
  auto result = simulate(study, scenario_of(sc, study), 3);
  CHECK(mean_of(result, 0, "kits_shipped") == 6);
  CHECK(mean_of(result, 0, "kits_dispensed") == 4);
  CHECK(mean_of(result, 0, "shipments") == 2);
  CHECK(mean_of(result, 0, "kits_left_at_sites") == 2);
  CHECK(mean_of(result, 0, "kits_expired") == 0);
  CHECK(mean_of(result, 0, "overage_percent") == doctest::Approx(50.0));
  CHECK(mean_of(result, 0, "waste_percent") == doctest::Approx(100.0 / 3));
  CHECK(mean_of(result, 0, "participants_lost_percent") == 0);
  CHECK(mean_of(result, 0, "stockouts_per_1000_visits") == 0);
  CHECK(mean_of(result, 0, "days_to_last_randomization") == 40);
  CHECK(mean_of(result, 0, "cost") == 62);
  CHECK(sd_of(result, 0, "kits_shipped") == 0);  // whichever arms the blocks drew
}

TEST_CASE("a site out of kits loses the arriving participant and counts a stockout at a later visit") {
  // Visits on days 0 and 28 (no window), blocks of 2, one arrival every 10 days
  // from day 10, min/max 0/1 per kit type (the group orders when it holds 0,
  // up to 2), lead time 3. Day 0: one of each. Days 10 and 20: the first two
  // participants (one per arm, by their block) take both kits.
  json s = study_with_visits(2);
  s["randomization"]["block_sizes"] = {2};
  s["visits"][1]["window_before"] = 0;
  s["visits"][1]["window_after"] = 0;
  sh::Study study = study_of(s);
  json sc = {{"participants", 2},
             {"sites", {{{"activation_day", 0}, {"rate_per_day", 0.1}}}},
             {"arrivals", "regular"},
             {"allocation", "node_slices"},
             {"review_every_days", 28},
             {"lead_time_days", 3},
             {"strategy", {{"kind", "min_max"}, {"initial", 1}, {"trigger", 0}, {"up_to", 1}}},
             {"site_rule", "assigned_arm"}};
  // Reviews every 28 days: day 28 orders one of each (arrives day 31), so the
  // day-28 visits (days 38 and 48) are served: 4 kits, no stockout.
  auto result = simulate(study, scenario_of(sc, study), 2);
  CHECK(mean_of(result, 0, "kits_dispensed") == 4);
  CHECK(mean_of(result, 0, "kits_shipped") == 4);
  CHECK(mean_of(result, 0, "stockouts_per_1000_visits") == 0);
  // Reviews every 56 days: the visits of days 38 and 48 find nothing, and the
  // run ends on day 48: 2 of 4 visits stocked out, 500 per 1,000.
  sc["review_every_days"] = 56;
  result = simulate(study, scenario_of(sc, study), 2);
  CHECK(mean_of(result, 0, "kits_dispensed") == 2);
  CHECK(mean_of(result, 0, "stockouts_per_1000_visits") == 500);
  // A third participant: the arrivals of days 30, 40 and 50 find the site empty
  // and are lost; day 56 orders one of each (day 59); day 60's arrival is
  // randomized: 3 lost of 6 arrivals.
  sc["participants"] = 3;
  result = simulate(study, scenario_of(sc, study), 2);
  CHECK(mean_of(result, 0, "participants_lost_percent") == doctest::Approx(50.0));
  CHECK(mean_of(result, 0, "days_to_last_randomization") == 60);
}

TEST_CASE("each kit type's own do-not-ship, do-not-count and do-not-dispense windows apply") {
  // One kit at randomization, blocks of 2, arrivals on days 10 and 20, both
  // lots expire on day 28; windows: do-not-ship 20, do-not-count 10,
  // do-not-dispense 5 (the study's supply.do_not_dispense_days, 30, is only
  // the default). Min/max 0/1 per kit type:
  //   day 0   28 - 0 > 20: the initial one of each is shipped
  //   day 10  first participant (28 - 10 > 5)     held: one kit of the other arm
  //   day 14  review: a kit type is empty, an order is due, but 28 - 14 <= 20: nothing shipped
  //   day 20  second participant, the other arm (28 - 20 > 5): dispensed; the run ends
  // Had every window been 30, nothing would ever ship; had do-not-ship been 5,
  // day 14 would ship two more kits.
  json s = study_with_visits(1);
  s["randomization"]["block_sizes"] = {2};
  for (auto& k : s["kit_types"])
    k["expiry_windows"] = {{"do_not_ship_days", 20}, {"do_not_count_days", 10}, {"do_not_dispense_days", 5}};
  sh::Study study = study_of(s);
  json sc = {{"participants", 2},
             {"sites", {{{"activation_day", 0}, {"rate_per_day", 0.1}}}},
             {"arrivals", "regular"},
             {"allocation", "node_slices"},
             {"review_every_days", 7},
             {"lead_time_days", 3},
             {"strategy", {{"kind", "min_max"}, {"initial", 1}, {"trigger", 0}, {"up_to", 1}}},
             {"site_rule", "assigned_arm"},
             {"lots", {{{"kit_type", "KA"}, {"expiry_day", 28}}, {{"kit_type", "KB"}, {"expiry_day", 28}}}}};
  auto result = simulate(study, scenario_of(sc, study), 2);
  CHECK(mean_of(result, 0, "kits_shipped") == 2);
  CHECK(mean_of(result, 0, "shipments") == 1);
  CHECK(mean_of(result, 0, "kits_dispensed") == 2);
  CHECK(mean_of(result, 0, "participants_lost_percent") == 0);
  CHECK(mean_of(result, 0, "stockouts_per_1000_visits") == 0);
}

TEST_CASE("dispensed kits under dropout match the sum over visits of the survival probability") {
  json sc = {{"participants", 60},
             {"sites", {{{"activation_day", 0}, {"rate_per_day", 2.0}}}},
             {"allocation", "central_list"},
             {"review_every_days", 7},
             {"lead_time_days", 3},
             {"strategy", {{"kind", "min_max"}, {"initial", 200}, {"trigger", 100}, {"up_to", 200}}},
             {"site_rule", "assigned_arm"},
             {"dropout", {{"fraction", 0.2}, {"by_day", 336}}}};
  sh::Study study = study_of(reference_study());
  const std::size_t runs = 20;
  auto result = simulate(study, scenario_of(sc, study), runs);
  const double lambda = -std::log(0.8) / 336;
  double expected = 0;
  for (int v = 0; v < 12; ++v) expected += std::exp(-lambda * 28 * v);
  expected *= 60;  // 60 participants, one kit per visit
  double mean = mean_of(result, 0, "kits_dispensed");
  double se = sd_of(result, 0, "kits_dispensed") / std::sqrt(static_cast<double>(runs));
  INFO("expected " << expected << ", simulated " << mean << " (se " << se << ")");
  CHECK(se > 0);
  CHECK(std::abs(mean - expected) < 4 * se);
  CHECK(mean_of(result, 0, "stockouts_per_1000_visits") == 0);
  // Without dropout every visit dispenses: 60 x 12 exactly.
  sc.erase("dropout");
  result = simulate(study, scenario_of(sc, study), 2);
  CHECK(mean_of(result, 0, "kits_dispensed") == 720);
}

TEST_CASE("the same seed gives the same numbers, whatever the number of threads") {
  sh::Study study = study_of(reference_study());
  json sc = reference_scenario();
  sc["participants"] = 60;
  sc["sites"]["count"] = 10;
  sc["strategy"] = {sc["strategy"][1], sc["strategy"][5]};
  auto scenario = scenario_of(sc, study);
  auto one = sh::to_json(simulate(study, scenario, 4, 7, 1));
  auto two = sh::to_json(simulate(study, scenario, 4, 7, 2));
  CHECK(one == two);
  CHECK(one["runs"] == 4);
  CHECK(one["strategies"].size() == 2);
  for (const auto& name : sh::supply_metric_names()) CHECK(one["strategies"][0]["metrics"].contains(name));
  auto other = sh::to_json(simulate(study, scenario, 4, 8, 2));
  CHECK(one != other);
}

TEST_CASE("a scenario with one visit and no expiry gives the same numbers in both of its equivalent spellings") {
  // In an open study each kit type is its own group. With one visit (nothing
  // scheduled after randomization) and windows of 0 days, predictive need is
  // min_buffer and its target max_buffer: min/max at trigger min_buffer - 1, up
  // to max_buffer. And one number for every kit type is the same as naming each.
  json s = study_with_visits(1);
  s["blinding"] = "open";
  s["kit_types"][1]["blinded_label"] = "Placebo, 28 tablets";
  sh::Study study = study_of(s);
  json sc = reference_scenario();
  sc["participants"] = 80;
  sc["sites"]["count"] = 12;
  sc.erase("lots");
  sc["strategy"] = {
      {{"kind", "predictive"}, {"trigger_window_days", 0}, {"resupply_window_days", 0}, {"min_buffer", 2}, {"max_buffer", 3}},
      {{"kind", "min_max"}, {"trigger", 1}, {"up_to", 3}},
      {{"kind", "min_max"}, {"trigger", {{"KA", 1}, {"KB", 1}}}, {"up_to", {{"KB", 3}, {"KA", 3}}}, {"initial", {{"KA", 3}, {"KB", 3}}}},
  };
  auto out = sh::to_json(simulate(study, scenario_of(sc, study), 3));
  const auto& list = out["strategies"];
  REQUIRE(list.size() == 3);
  CHECK(list[0]["metrics"] == list[1]["metrics"]);
  CHECK(list[1]["metrics"] == list[2]["metrics"]);
  CHECK(list[0]["metrics"]["kits_dispensed"]["mean"] == 80);
}

TEST_CASE("without a strategy the scenario simulates the study's own resupply settings") {
  sh::Study study = study_of(reference_study());
  json sc = reference_scenario();
  sc.erase("strategy");
  auto scenario = scenario_of(sc, study);
  REQUIRE(scenario.strategies.size() == 1);
  CHECK(scenario.strategies[0].parameters.strategy == sh::ResupplyStrategy::predictive);
  CHECK(scenario.strategies[0].name.rfind("the study's: predictive", 0) == 0);
}

TEST_CASE("scenario problems are reported with their paths") {
  sh::Study study = study_of(reference_study());
  auto errors_of = [&](const json& doc) {
    auto load = sh::load_supply_scenario(doc.dump(), study);
    CHECK_FALSE(load.scenario);
    return load.errors;
  };
  auto expect = [&](const json& doc, const std::string& error) {
    auto errors = errors_of(doc);
    INFO(json(errors).dump(2));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].rfind(error, 0) == 0);
  };
  json sc = reference_scenario();
  sc["participnts"] = 5;
  expect(sc, "participnts: unknown key; did you mean \"participants\"?");
  sc = reference_scenario();
  sc["sites"]["rate_per_day"]["gamma"]["shape"] = 0;
  expect(sc, "sites.rate_per_day.gamma.shape: must be a positive number (got 0)");
  sc = reference_scenario();
  sc["sites"]["activation_days"][2] = -4;
  expect(sc, "sites.activation_days[2]: must be a day number from 0");
  sc = reference_scenario();
  sc["strategy"][1]["trigger"] = {{"KA", 3}, {"KB", 6}};
  expect(sc, "strategy[1].trigger: must be below up_to for kit type \"KB\" (got 6, up_to 6)");
  sc = reference_scenario();
  sc["strategy"][0]["up_to"] = {{"KA", 4}};
  expect(sc, "strategy[0].up_to: no level for kit type \"KB\"");
  sc = reference_scenario();
  sc["strategy"][0]["up_to"] = {{"KA", 4}, {"KB", 4}, {"KC", 4}};
  expect(sc, "strategy[0].up_to.KC: unknown kit type \"KC\"; use one of: KA, KB");
  sc = reference_scenario();
  sc["strategy"][5]["max_buffer"] = 0;
  expect(sc, "strategy[5].max_buffer: must be at least min_buffer (got 0, min_buffer 2)");
  sc = reference_scenario();
  sc["strategy"][5]["up_to"] = 3;
  expect(sc, "strategy[5].up_to: belongs to the min_max kind");
  sc = reference_scenario();
  sc["allocation"] = "per_site";
  expect(sc, "allocation: must be one of node_slices, central_list (got string \"per_site\")");
  sc = reference_scenario();
  sc["dropout"]["fraction"] = 1;
  expect(sc, "dropout.fraction: must be a fraction from 0 up to (not including) 1 (got 1)");
  sc = reference_scenario();
  sc["lots"][1]["kit_type"] = "KA";
  expect(sc, "lots[1].kit_type: a second lot of kit type \"KA\"");
  sc = reference_scenario();
  sc["sites"] = {{{"activation_day", 3}, {"rate_per_day", -1}}};
  expect(sc, "sites[0].rate_per_day: must be a non-negative number of participants per day (got -1)");
}

TEST_CASE("a study randomized by minimization is refused with what to do") {
  json s = reference_study();
  s["randomization"] = {{"method", "minimization"}, {"minimization_factors", {{{"factor", "site"}}}}};
  sh::Study study = study_of(s);
  auto scenario = scenario_of(reference_scenario(), study);
  auto r = sh::simulate_supply(study, scenario, {.runs = 1}, Runs(1));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == sh::Errc::invalid_input);
  CHECK(r.error().message.find("permuted blocks") != std::string::npos);
}
