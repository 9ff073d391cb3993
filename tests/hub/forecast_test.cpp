// Tests for hub/forecast.h and its use by hub/grants.h: a site's rate starts
// at the study's expected rate and follows its enrollment; grants follow the
// estimate (a fast site gets more than a slow one, the prior sizes the first
// grant); the forecast's numbers on a small hub with known enrollment, worked
// by hand; and a blinded reader's view names no kit type.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "hub/forecast.h"
#include "hub/grants.h"
#include "hub/kit_inventory.h"
#include "shared/civil_date.h"
#include "shared/directive_payloads.h"
#include "shared/event_payloads.h"
#include "shared/slot_slice.h"
#include "tests/hub/hub_fixture.h"
#include "tests/hub/test_node.h"

using namespace irt;
using nlohmann::json;
using test::HubFixture;
using test::kHubNow;
using test::TestNode;

namespace {

constexpr std::int64_t kDay = 24 * test::kHour;

json blocks_study() {
  return json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
}

HubFixture::StudyText text(const json& study) { return {study.dump()}; }

// The node's slot grants, all directives together.
std::vector<shared::SlotGrant> slot_grants(HubFixture& f, const std::string& node, std::uint64_t after = 0) {
  std::vector<shared::SlotGrant> out;
  for (const auto& d : test::directives(f, node, shared::kGrantSlotsDirective, after)) {
    auto g = shared::parse_grant_slots(d.dump());
    REQUIRE(g.ok());
    for (auto& grant : g->grants) out.push_back(std::move(grant));
  }
  return out;
}

// Screens and randomizes one participant per slot of `grant`, from slot `from`, `n` of them, with no kit.
void randomize_in(HubFixture& f, TestNode& node, const std::string& site, const shared::SlotGrant& grant,
               std::size_t from, std::size_t n, int& numbered) {
  for (std::size_t i = from; i < from + n; ++i) {
    char number[32];
    std::snprintf(number, sizeof number, "%s-%03d", site.c_str(), ++numbered);
    node.push(f, shared::kScreenedEvent, test::screened(number, {{"site", site}, {"diabetes", "yes"}}));
    node.push(f, shared::kRandomizedEvent,
              test::from_slot(number, grant, i, {}, test::seal(f, shared::RandomizedSealed{grant.slots[i].arm, {}, {}})));
  }
  test::consume(f, node.id);
}

hub::GrantsIssued top_up_at(HubFixture& f, const std::string& node, std::int64_t now_ms) {
  storage::Transaction tx(f.hub->db());
  auto r = hub::top_up_grants(*f.hub, node, now_ms);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  tx.commit();
  return *r;
}

}  // namespace

TEST_CASE("a site's rate is the study's expected rate before enrollment and follows the site's randomizations") {
  auto study = blocks_study();
  study["sites"][0]["expected_rate_per_day"] = 0.2;  // 101
  study["enrollment"] = {{"prior_weight_days", 20}};
  HubFixture f(text(study));
  auto before = hub::site_rate(*f.hub, "101", kHubNow);
  CHECK_FALSE(before.activated_ms.has_value());
  CHECK(before.estimate.shape == doctest::Approx(4));  // 0.2 x 20
  CHECK(before.estimate.rate == doctest::Approx(20));
  CHECK(hub::site_rate(*f.hub, "102", kHubNow).estimate.mean() == doctest::Approx(hub::kNodeForecastPerDay));

  auto a = test::enroll(f, "101");  // activates the site at kHubNow
  auto grants = slot_grants(f, a.id);
  int numbered = 0;
  randomize_in(f, a, "101", grants.at(0), 0, 3, numbered);
  auto after = hub::site_rate(*f.hub, "101", kHubNow + 10 * kDay);
  CHECK(after.randomized == 3);
  CHECK(after.days_active == doctest::Approx(10));
  CHECK(after.estimate.mean() == doctest::Approx((4.0 + 3) / (20 + 10)));
  // Site 102 has none of 101's participants.
  CHECK(hub::site_rate(*f.hub, "102", kHubNow + 10 * kDay).randomized == 0);
}

TEST_CASE("the first grant is sized from the study's expected rate for the site") {
  auto study = blocks_study();
  study["sites"][0]["expected_rate_per_day"] = 2.0;  // 101: 1 per day in each of its two strata
  HubFixture f(text(study));
  auto fast = test::enroll(f, "101");
  auto usual = test::enroll(f, "102");  // the default 0.5 per day
  const auto expected = shared::grant_target_slots(1.0, 14);
  REQUIRE(expected == 14);
  for (const auto& g : slot_grants(f, fast.id)) CHECK(g.slots.size() >= expected);
  for (const auto& g : slot_grants(f, usual.id)) CHECK(g.slots.size() < expected);  // 4, in blocks of 4 or 6
}

TEST_CASE("a fast-enrolling site gets larger grants than a slow one after a few syncs") {
  auto study = blocks_study();
  study["supply"]["offline_days"] = 60;
  study.erase("caps");  // the example's cap over diabetes=yes would end the grants of whichever site comes second
  HubFixture f(text(study));
  TestNode fast = test::enroll(f, "101"), slow = test::enroll(f, "102");
  // Both receive their first grant from the prior: 0.25 per day and stratum over 60 days.
  const auto first_target = shared::grant_target_slots(hub::kNodeForecastPerDay / 2, 60);
  shared::SlotGrant fast_grant = slot_grants(f, fast.id).at(0), slow_grant = slot_grants(f, slow.id).at(0);
  CHECK(fast_grant.slots.size() >= first_target);
  CHECK(slow_grant.slots.size() >= first_target);

  // The top-up's grant in the stratum a site emptied (a faster rate may top its other stratum up too).
  auto of_stratum = [](const std::vector<shared::SlotGrant>& grants, std::uint32_t stratum) {
    auto it = std::find_if(grants.begin(), grants.end(), [&](const auto& g) { return g.stratum == stratum; });
    REQUIRE(it != grants.end());
    return *it;
  };
  // Before each sync a site uses every slot it holds in that stratum, so each sync
  // tops it up to its target: the fast site syncs on days 1 and 2, the slow one on days 30 and 60.
  int fast_numbers = 0, slow_numbers = 0;
  std::size_t fast_used = 0, slow_used = 0;
  for (int sync = 1; sync <= 2; ++sync) {
    CAPTURE(sync);
    randomize_in(f, fast, "101", fast_grant, 0, fast_grant.slots.size(), fast_numbers);
    randomize_in(f, slow, "102", slow_grant, 0, slow_grant.slots.size(), slow_numbers);
    fast_used += fast_grant.slots.size();
    slow_used += slow_grant.slots.size();
    const auto fast_before = f.hub->outbox().last_seq(fast.id), slow_before = f.hub->outbox().last_seq(slow.id);
    const std::int64_t fast_now = kHubNow + sync * kDay, slow_now = kHubNow + sync * 30 * kDay;
    top_up_at(f, fast.id, fast_now);
    top_up_at(f, slow.id, slow_now);
    const double fast_rate = hub::site_rate(*f.hub, "101", fast_now).estimate.mean();
    const double slow_rate = hub::site_rate(*f.hub, "102", slow_now).estimate.mean();
    CHECK(fast_rate == doctest::Approx((14.0 + static_cast<double>(fast_used)) / (28 + sync)));
    CHECK(slow_rate == doctest::Approx((14.0 + static_cast<double>(slow_used)) / (28 + 30 * sync)));
    auto fast_top = of_stratum(slot_grants(f, fast.id, fast_before), fast_grant.stratum);
    auto slow_top = of_stratum(slot_grants(f, slow.id, slow_before), slow_grant.stratum);
    // Each to its own target (two strata per site), in whole blocks of 4 or 6.
    CHECK(fast_top.slots.size() >= shared::grant_target_slots(fast_rate / 2, 60));
    CHECK(slow_top.slots.size() >= shared::grant_target_slots(slow_rate / 2, 60));
    CHECK(slow_top.slots.size() < shared::grant_target_slots(slow_rate / 2, 60) + 6);
    CHECK(fast_top.slots.size() > slow_top.slots.size());
    fast_grant = fast_top;
    slow_grant = slow_top;
  }
}

TEST_CASE("the forecast of a small hub with known enrollment: weekly kits, completion date and expiry risk") {
  // One active site, 101, expected 0.5 per day with 28 days' weight; 20 participants in all.
  // Kits: one per arm's kit type at V1 (day 0) and V2 (window opens day 25), two at V3 (53) and V4 (105).
  // Do-not-dispense 710 days: the site's generated lot (730 days) leaves 19 days to dispense it.
  auto study = blocks_study();
  study["sites"][1]["active"] = false;
  study["sites"][2]["active"] = false;
  study["enrollment"] = {{"target_participants", 20}, {"expected_rate_per_day", 0.5}};
  study["supply"]["do_not_dispense_days"] = 710;
  HubFixture f(text(study));
  auto a = test::enroll(f, "101");
  int numbered = 0;
  auto grants = slot_grants(f, a.id);
  randomize_in(f, a, "101", grants.at(0), 0, 2, numbered);  // on day 0 (the events' device time)

  const std::int64_t now = kHubNow + 7 * kDay;  // today = day 7 after both randomizations
  auto fc = hub::forecast(*f.hub, 4, now);
  REQUIRE_MESSAGE(fc.ok(), fc.error().message);
  CHECK(fc->today == "2026-01-08");
  CHECK(fc->randomized == 2);
  REQUIRE(fc->sites.size() == 1);
  const auto& s = fc->sites[0];
  CHECK(s.depot == "EU-01");
  const double rate = (14.0 + 2) / (28 + 7);  // 0.4571 per day
  CHECK(s.rate.estimate.mean() == doctest::Approx(rate));
  // 18 to go at that rate: day 39.375, so 40 days after 2026-01-08.
  REQUIRE(fc->completion.has_value());
  CHECK(fc->completion->expected == "2026-02-17");
  CHECK(fc->completion->p10 <= fc->completion->p50);
  CHECK(fc->completion->p50 <= fc->completion->p90);
  CHECK(fc->completion->p10 < "2026-02-17");
  CHECK(fc->completion->p90 > "2026-02-17");

  // Week 1 and 2: the day-0 kit of 7 x rate new participants. Week 3 (days 14 to 20):
  // plus the two participants' V2 (day 25 - 7 = 18). Week 4 (21 to 27): plus the V2 kits
  // of participants randomized on days 0 to 3 (25 + t < 28).
  REQUIRE(s.weeks.size() == 4);
  CHECK(s.weeks[0].total == doctest::Approx(7 * rate));
  CHECK(s.weeks[1].total == doctest::Approx(7 * rate));
  CHECK(s.weeks[2].total == doctest::Approx(7 * rate + 2));
  CHECK(s.weeks[3].total == doctest::Approx(7 * rate + 3 * rate));
  CHECK(s.weeks[0].per_kit_type.at("VLC25") == doctest::Approx(3.5 * rate));  // arms 1:1
  // The depot serves only this site: the same needs.
  REQUIRE(fc->depots.size() == 1);
  for (std::size_t w = 0; w < 4; ++w) CHECK(fc->depots[0].weeks[w].total == doctest::Approx(s.weeks[w].total));

  // Expiry: the site holds the initial 6 + 6 kits (none dispensed), last dispensable on
  // expiry - 710 - 1 (12 days from today).
  auto held = hub::kits_held_by(f.hub->db(), "node", a.id);
  REQUIRE(held.size() == 12);
  const auto today = *shared::parse_date("2026-01-08");
  const auto last = *shared::parse_date(held[0].expiry) - 710 - 1 - today;
  for (const auto& k : held) REQUIRE(k.expiry == held[0].expiry);
  // Before the lot's last day the participants' V2 (day 18) does not fall: each kit type
  // needs rate / 2 per day of new participants, and the rest of its 6 kits is at risk.
  REQUIRE(last + 1 <= 18);
  const double need = rate / 2 * static_cast<double>(last + 1);
  const std::size_t expected_risk = 2 * (6 - static_cast<std::size_t>(std::floor(need)));
  CHECK(s.stock.kits == 12);
  CHECK(s.stock.at_risk == expected_risk);
  CHECK(expected_risk > 0);
  CHECK(s.stock.first_at_risk == shared::format_date(today + last));
  CHECK(fc->depots[0].stock.kits == hub::kits_held_by(f.hub->db(), "depot", "EU-01").size());
}

TEST_CASE("a withdrawn or completed participant's visits to come are no longer demand") {
  // As above: one site, two participants randomized on day 0, their V2 falls in week 3.
  auto study = blocks_study();
  study["sites"][1]["active"] = false;
  study["sites"][2]["active"] = false;
  study["enrollment"] = {{"expected_rate_per_day", 0.5}};
  HubFixture f(text(study));
  auto a = test::enroll(f, "101");
  int numbered = 0;
  randomize_in(f, a, "101", slot_grants(f, a.id).at(0), 0, 3, numbered);
  const std::int64_t now = kHubNow + 7 * kDay;
  auto week3 = [&] {
    auto fc = hub::forecast(*f.hub, 4, now);
    REQUIRE_MESSAGE(fc.ok(), fc.error().message);
    return fc->sites.at(0).weeks.at(2).total - fc->sites.at(0).weeks.at(0).total;  // the V2 kits alone
  };
  CHECK(week3() == doctest::Approx(3));
  a.push(f, shared::kWithdrawnEvent, shared::Withdrawn{"101-001", "moved away", "investigator", std::nullopt});
  test::consume(f, a.id);
  CHECK(week3() == doctest::Approx(2));
  a.push(f, shared::kCompletedEvent, shared::Completed{"101-002", "investigator"});
  test::consume(f, a.id);
  CHECK(week3() == doctest::Approx(1));
}

TEST_CASE("a blinded reader's forecast names no kit type, an unblinded one's does") {
  auto study = blocks_study();
  study["enrollment"] = {{"target_participants", 30}};
  HubFixture f(text(study));
  test::enroll(f, "101");
  auto fc = hub::forecast(*f.hub, 3, kHubNow + kDay);
  REQUIRE(fc.ok());
  auto blinded = hub::to_json(*fc, true).dump();
  auto unblinded = hub::to_json(*fc, false).dump();
  for (const auto& word : {"VLC25", "PBO", "Velcardin", "Placebo"}) CHECK(blinded.find(word) == std::string::npos);
  CHECK(unblinded.find("VLC25") != std::string::npos);
  CHECK(hub::to_json(*fc, true)["sites"][0]["weeks"].size() == 3);
  CHECK(hub::to_json(*fc, true)["completion"].contains("p90"));
  CHECK_FALSE(hub::forecast(*f.hub, 0, kHubNow).ok());
  CHECK_FALSE(hub::forecast(*f.hub, hub::kMaxForecastWeeks + 1, kHubNow).ok());
}
