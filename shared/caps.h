// Enrollment caps per stratum, per arm and per cohort (Study::caps).
//
// One rule for counting participants against caps: a randomized participant
// counts against every stratum cap whose levels it matches, the cap of its arm
// and the cap of its cohort. The hub fills a CapTracker with the allocations it
// knows (hub/cap_allowances.h) and sizes each node's arm and cohort allowances
// from remaining(), so that what is used plus what nodes hold never exceeds a
// cap (docs/randomization.md, "Caps"). check_participant, check_arm and
// open_arms answer the same question for a central decision.
// A stratum cap names some factor levels ({"site": "101"}); a participant
// counts against it when all of them match. Messages name the stratum or
// cohort but never an arm, since blinded users see them.
// Thread-safety: plain values.
#pragma once

#include <cstddef>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "shared/result.h"
#include "shared/study.h"

namespace irt::shared {

class CapTracker {
 public:
  static constexpr long kUnlimited = std::numeric_limits<long>::max();

  // invalid_input for a cap naming an unknown arm, or a non-positive limit.
  static Result<CapTracker> create(const Study& study);

  // Stratum and cohort caps, checked before an arm is chosen.
  Status check_participant(const std::map<std::string, std::string>& factors, const std::string& cohort) const;
  // Arm caps: which arms may still receive participants.
  std::vector<bool> open_arms() const;
  Status check_arm(std::size_t arm) const;

  // `count` participants with these factor values, cohort and arm (index in Study::arms).
  void record(const std::map<std::string, std::string>& factors, const std::string& cohort, std::size_t arm,
              long count = 1);

  // limit - participants counted, for the arm cap (scope arm, arm id) or the
  // cohort cap (scope cohort, cohort id); negative once a cap is exceeded;
  // kUnlimited when the study has no such cap.
  long remaining(CapScope scope, const std::string& id) const;

  // The least remaining room among the stratum caps a participant with these
  // factor values would count against; kUnlimited when none applies.
  long stratum_headroom(const std::map<std::string, std::string>& factors) const;

 private:
  struct Entry {
    Cap cap;
    std::size_t arm = 0;  // for arm caps
    long count = 0;
  };
  static bool matches(const Cap& cap, const std::map<std::string, std::string>& factors);
  static std::string describe(const Cap& cap);
  std::vector<Entry> entries_;
  std::size_t arms_ = 0;
};

}  // namespace irt::shared
