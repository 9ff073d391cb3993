#include "shared/caps.h"

#include <doctest/doctest.h>

#include "randomization_fixtures.h"

using namespace irt::shared;

namespace {

Study capped() {
  Study s = irt::test::stratified_study({{"ACTIVE", "a", "T", 1}, {"PLACEBO", "b", "T", 1}}, {4});
  s.cohorts = {{"C1", "Cohort 1"}};
  s.caps = {{CapScope::stratum, {{"site", "101"}, {"sex", "F"}}, "", "", 2},
            {CapScope::arm, {}, "PLACEBO", "", 3},
            {CapScope::cohort, {}, "", "C1", 4}};
  return s;
}

}  // namespace

TEST_CASE("a capped stratum refuses with a message naming the stratum and what to do") {
  auto caps = *CapTracker::create(capped());
  std::map<std::string, std::string> f{{"site", "101"}, {"sex", "F"}};
  CHECK(caps.stratum_headroom(f) == 2);
  caps.record(f, "", 0);
  caps.record(f, "", 0);
  CHECK(caps.stratum_headroom(f) == 0);
  auto st = caps.check_participant(f, "");
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == Errc::exhausted);
  CHECK(st.error().message.find("stratum 'sex=F;site=101' has reached its cap of 2") != std::string::npos);
  CHECK(caps.check_participant({{"site", "101"}, {"sex", "M"}}, "").ok());
  CHECK(caps.stratum_headroom({{"site", "102"}, {"sex", "F"}}) == CapTracker::kUnlimited);
}

TEST_CASE("an arm cap closes the arm without naming it") {
  auto caps = *CapTracker::create(capped());
  for (int i = 0; i < 3; ++i) caps.record({{"site", "102"}}, "", 1);
  CHECK(caps.open_arms() == std::vector<bool>{true, false});
  CHECK(caps.check_arm(0).ok());
  auto st = caps.check_arm(1);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == Errc::exhausted);
  CHECK(st.error().message.find("PLACEBO") == std::string::npos);
  CHECK(st.error().message.find("ACTIVE") == std::string::npos);
}

TEST_CASE("a cohort cap refuses the cohort's next participant") {
  auto caps = *CapTracker::create(capped());
  for (int i = 0; i < 4; ++i) caps.record({{"site", "103"}}, "C1", 0);
  CHECK(caps.check_participant({{"site", "103"}}, "C1").error().message.find("cohort 'C1'") == 0);
  CHECK(caps.check_participant({{"site", "103"}}, "").ok());
}

TEST_CASE("a cap on an unknown arm is refused when the tracker is built") {
  Study s = capped();
  s.caps[1].arm = "X";
  CHECK(CapTracker::create(s).error().code == Errc::invalid_input);
}

TEST_CASE("remaining counts down per arm and cohort cap and goes negative once a cap is exceeded") {
  auto caps = *CapTracker::create(capped());
  CHECK(caps.remaining(CapScope::arm, "PLACEBO") == 3);
  CHECK(caps.remaining(CapScope::arm, "ACTIVE") == CapTracker::kUnlimited);
  CHECK(caps.remaining(CapScope::cohort, "C1") == 4);
  caps.record({}, "C1", 1, 4);
  CHECK(caps.remaining(CapScope::arm, "PLACEBO") == -1);
  CHECK(caps.remaining(CapScope::cohort, "C1") == 0);
  CHECK(caps.remaining(CapScope::cohort, "C2") == CapTracker::kUnlimited);
}
