// Enrollment caps per stratum, per arm and per cohort (Study::caps).
//
// The hub keeps a CapTracker over the ledger's allocations: it refuses a
// participant in a capped stratum or cohort, closes a capped arm to dynamic
// methods (minimization then chooses among the open arms), and tells the slice
// ledger how many slots a stratum may still receive (headroom), so an offline
// node can never overshoot a cap with the slots it owns.
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

  void record(const std::map<std::string, std::string>& factors, const std::string& cohort, std::size_t arm);

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
