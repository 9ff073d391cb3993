#include "shared/study_diff.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace sh = irt::shared;

namespace {

sh::Study load(const std::string& name) {
  sh::StudyLoad l = sh::load_study_file(irt::test::source_path("packaging/examples/" + name));
  REQUIRE(l.study.has_value());
  return *l.study;
}

}  // namespace

TEST_CASE("the amendment example differs by version, one added site and one visit window") {
  auto lines = sh::diff_studies(load("study-blocks.json"), load("study-blocks-v2.json"));
  CHECK(lines == std::vector<std::string>{
                     "version: 1 -> 2",
                     "sites: added 103 (Hôpital Nord, Marseille, FR)",
                     "visits[V3].window_after: 3 -> 5",
                 });
}

TEST_CASE("a study compared with itself has no changes") {
  sh::Study s = load("study-minimization.json");
  CHECK(sh::diff_studies(s, s).empty());
}

TEST_CASE("reordering a list is not a change") {
  sh::Study a = load("study-blocks.json");
  sh::Study b = a;
  std::reverse(b.sites.begin(), b.sites.end());
  std::reverse(b.roles.begin(), b.roles.end());
  CHECK(sh::diff_studies(a, b).empty());
}

TEST_CASE("removed entries and changed fields are listed in the study's order, additions last within a list") {
  sh::Study a = load("study-blocks.json");
  sh::Study b = a;
  b.sites.erase(b.sites.begin() + 1);  // 102
  b.sites.push_back(sh::Site{"104", "Clinique Nord", "FR", true, {sh::NodeKind::site, sh::NodeKind::nurse}});
  b.sites[0].active = false;
  b.arms[0].ratio = 2;
  b.supply.lead_times[1].days = 4;
  b.supply.max_level = 10;
  b.visits[5].dispense.clear();
  auto& monitor = b.roles[4];
  REQUIRE(monitor.id == "monitor");
  monitor.permissions.push_back(sh::Permission::export_data);
  monitor.permissions.erase(monitor.permissions.begin());  // view_participants
  b.eligibility.push_back("Is the participant able to swallow tablets?");
  CHECK(sh::diff_studies(a, b) ==
        std::vector<std::string>{
            "arms[A].ratio: 1 -> 2",
            "sites[101].active: true -> false",
            "sites: removed 102 (Hôpital Européen Georges-Pompidou, Paris, FR)",
            "sites: added 104 (Clinique Nord, FR)",
            "supply.lead_times[EU-01 to BE].days: 3 -> 4",
            "supply.max_level: 8 -> 10",
            "roles[monitor].permissions: removed view_participants",
            "roles[monitor].permissions: added export_data",
            "eligibility: added \"Is the participant able to swallow tablets?\"",
        });
}

TEST_CASE("a changed randomization, dispensing and cap are shown with old and new values") {
  sh::Study a = load("study-blocks.json");
  sh::Study b = a;
  b.randomization.block_sizes = {4};
  b.caps[0].limit = 80;
  b.visits[1].dispense[0].count = 2;
  b.visits[1].dispense[1].count = 2;
  CHECK(sh::diff_studies(a, b) == std::vector<std::string>{
                                      "randomization.block_sizes: 4, 6 -> 4",
                                      "caps[stratum diabetes=yes].limit: 60 -> 80",
                                      "visits[V1].dispense: A: VLC25 x1, B: PBO x1 -> A: VLC25 x2, B: PBO x2",
                                  });
}

TEST_CASE("the derived site factor is not reported twice when a site is added") {
  sh::Study a = load("study-blocks.json");
  sh::Study b = load("study-blocks-v2.json");
  for (const auto& line : sh::diff_studies(a, b)) CHECK(line.rfind("factors", 0) == std::string::npos);
}

TEST_CASE("changed resupply settings are listed per kit type") {
  sh::Study a = load("study-blocks.json");
  sh::Study b = a;
  b.supply.resupply.levels[1].up_to = 12;
  b.supply.resupply.shipment_minimum = 2;
  b.supply.resupply.predictive.min_buffer = 3;
  CHECK(sh::diff_studies(a, b) == std::vector<std::string>{
                                      "supply.resupply.shipment_minimum: 1 -> 2",
                                      "supply.resupply.levels[PBO].up_to: 8 -> 12",
                                      "supply.resupply.min_buffer: 1 -> 3",
                                  });
}

TEST_CASE("a changed expected enrollment is shown with old and new values") {
  sh::Study a = load("study-blocks.json");
  sh::Study b = a;
  b.sites[0].expected.rate_per_day = 0.25;
  b.countries[1].expected.activation_date = sh::parse_date("2026-03-01");
  b.enrollment.target_participants = 300;
  CHECK(sh::diff_studies(a, b) == std::vector<std::string>{
                                      "countries[BE].activation_date: (none) -> 2026-03-01",
                                      "sites[101].expected_rate_per_day: (none) -> 0.25",
                                      "enrollment.target_participants: 120 -> 300",
                                  });
}
