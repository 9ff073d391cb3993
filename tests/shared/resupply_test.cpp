#include "shared/resupply.h"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "shared/study.h"
#include "tests/support/test_support.h"

namespace sh = irt::shared;

namespace {

using Lines = std::vector<sh::ShipmentLine>;

bool same(const Lines& a, const Lines& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].kit_type != b[i].kit_type || a[i].count != b[i].count) return false;
  return true;
}

std::string show(const Lines& lines) {
  std::string out;
  for (const auto& l : lines) out += l.kit_type + ":" + std::to_string(l.count) + " ";
  return out.empty() ? "(nothing)" : out;
}

#define CHECK_SHIP(actual, ...)                           \
  do {                                                    \
    Lines got_ = (actual);                                \
    Lines want_ = Lines{__VA_ARGS__};                     \
    INFO("got " << show(got_) << ", want " << show(want_)); \
    CHECK(same(got_, want_));                             \
  } while (0)

sh::ResupplyParameters min_max(std::vector<sh::KitLevels> levels, int minimum = 1) {
  sh::ResupplyParameters p;
  p.strategy = sh::ResupplyStrategy::min_max;
  p.levels = std::move(levels);
  p.shipment_minimum = minimum;
  return p;
}

sh::ResupplyParameters predictive(int trigger_window, int resupply_window, int min_buffer, int max_buffer,
                                  int minimum = 1) {
  sh::ResupplyParameters p;
  p.strategy = sh::ResupplyStrategy::predictive;
  p.predictive = {trigger_window, resupply_window, min_buffer, max_buffer};
  p.shipment_minimum = minimum;
  return p;
}

}  // namespace

// ---- Min/max ----------------------------------------------------------------

TEST_CASE("min/max orders a kit type at its trigger level up to its maximum, counting kits in transit") {
  auto p = min_max({{"K", 4, 2, 5}});
  sh::ResupplyInput in;
  in.stock = {{"K", "Study drug", 3, 0}};
  CHECK_SHIP(sh::decide_resupply(in, p));  // 3 > trigger 2: nothing
  in.stock[0].usable = 2;
  CHECK_SHIP(sh::decide_resupply(in, p), {"K", 3});  // at the trigger: 5 - 2
  in.stock[0] = {"K", "Study drug", 1, 1};
  CHECK_SHIP(sh::decide_resupply(in, p), {"K", 3});  // 1 on hand + 1 in transit
  in.stock[0] = {"K", "Study drug", 0, 3};
  CHECK_SHIP(sh::decide_resupply(in, p));  // in transit covers it
  in.stock[0] = {"K", "Study drug", 0, 0};
  CHECK_SHIP(sh::decide_resupply(in, p), {"K", 5});
}

TEST_CASE("kit types with their own blinded labels are decided each on its own") {
  auto p = min_max({{"A", 4, 1, 4}, {"B", 4, 1, 4}});
  sh::ResupplyInput in;
  in.stock = {{"A", "Drug A", 1, 0}, {"B", "Drug B", 3, 0}};
  CHECK_SHIP(sh::decide_resupply(in, p), {"A", 3});
  in.stock[1].usable = 0;
  CHECK_SHIP(sh::decide_resupply(in, p), {"A", 3}, {"B", 4});
}

TEST_CASE("kit types sharing a blinded label order on the group's sums and every kit type ships at least the minimum") {
  // Group trigger 1 + 1 = 2, group maximum 4 + 4 = 8.
  auto p = min_max({{"A", 4, 1, 4}, {"B", 4, 1, 4}});
  sh::ResupplyInput in;
  in.stock = {{"A", "Study drug", 1, 0}, {"B", "Study drug", 2, 0}};
  CHECK_SHIP(sh::decide_resupply(in, p));  // A at its own trigger, but the group holds 3 > 2
  in.stock = {{"A", "Study drug", 0, 0}, {"B", "Study drug", 2, 0}};
  // The group holds 2: ship 8 - 2 = 6. One each, then the 4 left one at a time
  // to the kit type furthest below its level: A (gap 3), A (2), A (1, tie, first), B.
  CHECK_SHIP(sh::decide_resupply(in, p), {"A", 4}, {"B", 2});
  in.stock = {{"A", "Study drug", 1, 0}, {"B", "Study drug", 1, 0}};
  CHECK_SHIP(sh::decide_resupply(in, p), {"A", 3}, {"B", 3});
}

TEST_CASE("a kit type above its level still ships the minimum when its group orders") {
  auto p = min_max({{"A", 4, 1, 4}, {"B", 4, 1, 4}}, 2);
  sh::ResupplyInput in;
  in.stock = {{"A", "Study drug", 2, 0}, {"B", "Study drug", 0, 0}};
  // Group holds 2 <= 2: ship 8 - 2 = 6, two each, the 2 left to B (gap 2 vs A's 0).
  CHECK_SHIP(sh::decide_resupply(in, p), {"A", 2}, {"B", 4});
  in.stock = {{"A", "Study drug", 5, 0}, {"B", "Study drug", 0, 0}};
  // B is empty and nobody can need it any more (no slots, nothing scheduled): nothing.
  CHECK_SHIP(sh::decide_resupply(in, p));
  // With a slot left, B empty makes the group order although it holds 5 > 2,
  // and brings B up to its own level: A the minimum 2, B 4 - 0.
  in.slots_left = 1;
  CHECK_SHIP(sh::decide_resupply(in, p), {"A", 2}, {"B", 4});
}

TEST_CASE("the initial order sends each kit type's initial level") {
  auto p = min_max({{"A", 6, 1, 4}, {"B", 6, 1, 4}});
  sh::ResupplyInput in;
  in.stock = {{"A", "Study drug", 3, 2}, {"B", "Study drug", 0, 0}};  // stock is ignored: the site is new
  CHECK_SHIP(sh::initial_order(in, p), {"A", 6}, {"B", 6});
}

TEST_CASE("a kit type without min/max levels is a programming error") {
  auto p = min_max({{"A", 4, 1, 4}});
  sh::ResupplyInput in;
  in.stock = {{"B", "Study drug", 0, 0}};
  CHECK_THROWS_AS((void)sh::decide_resupply(in, p), std::invalid_argument);
}

// ---- Predictive --------------------------------------------------------------

TEST_CASE("expected kits of new randomizations follow the rate, the window and the slots left") {
  sh::ResupplyInput in;
  in.rate_per_day = 0.1;
  in.slots_left = 10;
  in.per_new_participant = {{0, "K", 1}, {25, "K", 1}, {0, "L", 2}};
  // Within 14 days: 1.4 arrivals need the day-0 kit; nobody reaches day 25.
  CHECK(sh::expected_new_kits(in, "K", 14) == doctest::Approx(1.4));
  // Within 42 days: 4.2 arrivals, of which those in the first 17 days reach day 25.
  CHECK(sh::expected_new_kits(in, "K", 42) == doctest::Approx(4.2 + 1.7));
  CHECK(sh::expected_new_kits(in, "L", 14) == doctest::Approx(2.8));
  in.slots_left = 1;
  CHECK(sh::expected_new_kits(in, "K", 42) == doctest::Approx(2.0));
  in.slots_left = 0;
  CHECK(sh::expected_new_kits(in, "K", 42) == 0);
}

TEST_CASE("predictive orders below the need of the trigger window, up to the demand of the resupply window") {
  auto p = predictive(14, 42, 1, 2);
  sh::ResupplyInput in;
  in.scheduled = {{5, "K", 1}, {20, "K", 1}, {40, "K", 2}, {50, "K", 1}, {-1, "K", 1}};
  in.rate_per_day = 0.1;
  in.slots_left = 10;
  in.per_new_participant = {{0, "K", 1}, {25, "K", 1}};
  // need = scheduled by day 14 (the overdue one and day 5: 2) + 1.4 new + 1 = 4.4
  // target = scheduled by day 42 (1 + 1 + 1 + 2 = 5) + 5.9 new + 2 = 12.9 -> 13 kits
  in.stock = {{"K", "Study drug", 3, 2}};
  CHECK_SHIP(sh::decide_resupply(in, p));  // 5 >= 4.4
  in.stock = {{"K", "Study drug", 3, 1}};
  CHECK_SHIP(sh::decide_resupply(in, p), {"K", 9});  // 4 < 4.4: 13 - 4
  // One slot left: need 2 + 1 + 1 = 4, target 5 + 2 + 2 = 9.
  in.slots_left = 1;
  CHECK_SHIP(sh::decide_resupply(in, p));
  in.stock = {{"K", "Study drug", 3, 0}};
  CHECK_SHIP(sh::decide_resupply(in, p), {"K", 6});
}

TEST_CASE("predictive orders for a kit type whose participants are due more kits than it holds") {
  auto p = predictive(14, 28, 0, 0, 1);
  sh::ResupplyInput in;
  in.stock = {{"A", "Study drug", 1, 0}, {"B", "Study drug", 6, 0}};
  in.scheduled = {{3, "A", 2}};
  // Group need 2 + 0 <= 7 held; but A holds 1 of the 2 its participant is due.
  // The group's total (target 2 - 7 held) is below the minimum of one each, and
  // A is brought up to its own target: 2 - 1 = 1; B gets the minimum.
  CHECK_SHIP(sh::decide_resupply(in, p), {"A", 1}, {"B", 1});
  in.scheduled = {{3, "A", 4}};
  // A is due 4 and holds 1: 3 for A, 1 for B, although the group holds 7 of a target of 4.
  CHECK_SHIP(sh::decide_resupply(in, p), {"A", 3}, {"B", 1});
}

TEST_CASE("the predictive initial order is what a site with no stock would order") {
  auto p = predictive(14, 42, 1, 2);
  sh::ResupplyInput in;
  in.stock = {{"A", "Study drug", 9, 9}, {"B", "Study drug", 0, 0}};
  in.rate_per_day = 0.05;
  in.slots_left = 8;
  in.per_new_participant = {{0, "A", 0.5}, {0, "B", 0.5}, {28, "A", 0.5}, {28, "B", 0.5}};
  // Per kit type over 42 days: 2.1 * 0.5 + 0.7 * 0.5 = 1.4, plus 2: 3.4; group 6.8 -> 7:
  // one each, then the 5 left alternate from A (the first of equal gaps).
  CHECK_SHIP(sh::initial_order(in, p), {"A", 4}, {"B", 3});
}

TEST_CASE("kits per new participant weigh each arm's kits by its share of the ratio") {
  auto load = sh::load_study(irt::test::read_file(irt::test::source_path("packaging/examples/study-minimization.json")));
  REQUIRE(load.study);
  auto kits = sh::kits_per_new_participant(*load.study);
  REQUIRE_FALSE(kits.empty());
  // Three arms 2:1:1: over a visit, the shares of its kits sum to the kits one participant takes.
  std::map<int, double> per_visit;
  for (const auto& k : kits) per_visit[k.days] += k.count;
  const sh::Visit* first = nullptr;
  for (const auto& v : load.study->visits)
    if (!v.dispense.empty()) {
      first = &v;
      break;
    }
  REQUIRE(first);
  CHECK(per_visit[first->day - first->window_before] == doctest::Approx(first->dispense[0].count));
  for (const auto& k : kits)
    if (k.days == first->day - first->window_before && k.kit_type == first->dispense[0].kit_type) {
      const sh::Arm* arm = load.study->find_arm(first->dispense[0].arm);
      REQUIRE(arm);
      CHECK(k.count == doctest::Approx(first->dispense[0].count * arm->ratio / 4.0));
    }
}

// ---- Blind-safe composition ------------------------------------------------------

namespace {

// One site over 200 days: participants arrive on fixed days, each takes one kit
// of its arm's kit type at days 0, 28 and 56 after arrival; the site is
// reviewed every 7 days and a shipment arrives 3 days later. Returns what a
// blinded person sees of each shipment (its day and its number of kits per
// blinded label) and checks that every kit type is in every shipment.
struct Seen {
  int day;
  std::map<std::string, int> kits_per_label;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> shipments_seen(const std::string& arms, const sh::ResupplyParameters& p, const std::string& label_a,
                                 const std::string& label_b, int minimum) {
  const std::vector<int> arrivals = {0, 6, 13, 15, 30, 34, 41, 50, 61, 63, 70, 85};
  const std::vector<int> visits = {0, 28, 56};
  std::map<std::string, int> on_hand;
  struct Transit {
    int arrives;
    std::string kit_type;
    int count;
  };
  std::vector<Transit> transit;
  std::vector<Seen> seen;
  auto input_at = [&](int today) {
    sh::ResupplyInput in;
    int in_transit_a = 0, in_transit_b = 0;
    for (const auto& t : transit) (t.kit_type == "A" ? in_transit_a : in_transit_b) += t.count;
    in.stock = {{"A", label_a, on_hand["A"], in_transit_a}, {"B", label_b, on_hand["B"], in_transit_b}};
    int arrived = 0;
    for (std::size_t i = 0; i < arrivals.size(); ++i) {
      if (arrivals[i] > today) continue;
      ++arrived;
      for (int v : visits)
        if (arrivals[i] + v > today) in.scheduled.push_back({arrivals[i] + v - today, std::string(1, arms[i]), 1});
    }
    in.slots_left = static_cast<int>(arrivals.size()) - arrived;
    in.rate_per_day = 0.15;
    in.per_new_participant = {{0, "A", 0.5}, {0, "B", 0.5}, {28, "A", 0.5}, {28, "B", 0.5}, {56, "A", 0.5},
                              {56, "B", 0.5}};
    return in;
  };
  auto ship = [&](int today, int lead, const Lines& lines) {
    if (lines.empty()) return;
    Seen s{today, {}};
    std::map<std::string, int> per_type;
    for (const auto& l : lines) {
      transit.push_back({today + lead, l.kit_type, l.count});
      s.kits_per_label[l.kit_type == "A" ? label_a : label_b] += l.count;
      per_type[l.kit_type] += l.count;
    }
    if (label_a == label_b) {
      CHECK(per_type["A"] >= minimum);
      CHECK(per_type["B"] >= minimum);
    }
    seen.push_back(s);
  };
  ship(0, 0, sh::initial_order(input_at(0), p));  // delivered on day 0
  for (int day = 0; day <= 200; ++day) {
    for (auto it = transit.begin(); it != transit.end();)
      if (it->arrives == day) {
        on_hand[it->kit_type] += it->count;
        it = transit.erase(it);
      } else {
        ++it;
      }
    for (std::size_t i = 0; i < arrivals.size(); ++i)
      for (int v : visits)
        if (arrivals[i] + v == day) {
          std::string type(1, arms[i]);
          REQUIRE_MESSAGE(on_hand[type] > 0, "stockout of " << type << " on day " << day << " with arms " << arms);
          --on_hand[type];
        }
    if (day > 0 && day % 7 == 0) ship(day, 3, sh::decide_resupply(input_at(day), p));
  }
  return seen;
}

// Arm sequences for the 12 participants: blocks of four, each block two of each arm.
const std::vector<std::string> kArmSequences = {"AABBABABBBAA", "ABABABABABAB", "BBAABABAABBA", "BABAAABBBABA",
                                                "ABBAABBABAAB"};

}  // namespace

TEST_CASE("a site sees the same shipments whichever arm its participants are on, under min/max") {
  auto p = min_max({{"A", 5, 3, 6}, {"B", 5, 3, 6}});
  auto first = shipments_seen(kArmSequences[0], p, "Study drug", "Study drug", 1);
  CHECK(first.size() > 5);
  for (const auto& arms : kArmSequences) {
    INFO("arms " << arms);
    CHECK(shipments_seen(arms, p, "Study drug", "Study drug", 1) == first);
  }
}

TEST_CASE("a site sees the same shipments whichever arm its participants are on, under predictive resupply") {
  auto p = predictive(14, 28, 2, 3);
  auto first = shipments_seen(kArmSequences[0], p, "Study drug", "Study drug", 1);
  CHECK(first.size() >= 5);
  for (const auto& arms : kArmSequences) {
    INFO("arms " << arms);
    CHECK(shipments_seen(arms, p, "Study drug", "Study drug", 1) == first);
  }
}

TEST_CASE("kit types decided each on its own would show the arms in the shipments") {
  // The same site, with a label per arm, as in an open study: shipments follow
  // each arm's consumption, so two allocations are told apart. This is what the
  // shared-label group rule above prevents.
  auto p = min_max({{"A", 5, 3, 6}, {"B", 5, 3, 6}});
  auto open_first = shipments_seen(kArmSequences[0], p, "Drug A", "Drug B", 1);
  auto open_second = shipments_seen(kArmSequences[1], p, "Drug A", "Drug B", 1);
  CHECK_FALSE(open_first == open_second);
}
