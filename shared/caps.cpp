#include "shared/caps.h"

#include <algorithm>

namespace irt::shared {

Result<CapTracker> CapTracker::create(const Study& study) {
  CapTracker t;
  t.arms_ = study.arms.size();
  for (std::size_t i = 0; i < study.caps.size(); ++i) {
    const Cap& c = study.caps[i];
    Entry e{c, 0, 0};
    if (c.limit <= 0)
      return make_error(Errc::invalid_input, "caps[" + std::to_string(i) + "].limit must be positive (got " +
                                                 std::to_string(c.limit) + "); fix the study file");
    if (c.scope == CapScope::arm) {
      auto it = std::find_if(study.arms.begin(), study.arms.end(), [&](const Arm& a) { return a.id == c.arm; });
      if (it == study.arms.end())
        return make_error(Errc::invalid_input, "caps[" + std::to_string(i) +
                                                   "] names an arm that the study does not define; fix the study file");
      e.arm = static_cast<std::size_t>(it - study.arms.begin());
    }
    if (c.scope == CapScope::stratum && c.stratum.empty())
      return make_error(Errc::invalid_input, "caps[" + std::to_string(i) +
                                                 "] is a stratum cap without factor levels; add \"stratum\"");
    t.entries_.push_back(std::move(e));
  }
  return t;
}

bool CapTracker::matches(const Cap& cap, const std::map<std::string, std::string>& factors) {
  for (const auto& [factor, level] : cap.stratum) {
    auto it = factors.find(factor);
    if (it == factors.end() || it->second != level) return false;
  }
  return true;
}

std::string CapTracker::describe(const Cap& cap) {
  std::string s;
  for (const auto& [factor, level] : cap.stratum) s += (s.empty() ? "" : ";") + factor + "=" + level;
  return s;
}

Status CapTracker::check_participant(const std::map<std::string, std::string>& factors,
                                     const std::string& cohort) const {
  for (const auto& e : entries_) {
    if (e.count < e.cap.limit) continue;
    if (e.cap.scope == CapScope::stratum && matches(e.cap, factors))
      return make_error(Errc::exhausted, "enrollment in stratum '" + describe(e.cap) + "' has reached its cap of " +
                                             std::to_string(e.cap.limit) +
                                             "; this participant cannot be randomized; ask the study team "
                                             "whether the cap will be amended");
    if (e.cap.scope == CapScope::cohort && e.cap.cohort == cohort)
      return make_error(Errc::exhausted, "cohort '" + cohort + "' has reached its cap of " +
                                             std::to_string(e.cap.limit) +
                                             "; this participant cannot be randomized; ask the study team "
                                             "whether the cap will be amended");
  }
  return {};
}

std::vector<bool> CapTracker::open_arms() const {
  std::vector<bool> open(arms_, true);
  for (const auto& e : entries_)
    if (e.cap.scope == CapScope::arm && e.count >= e.cap.limit) open[e.arm] = false;
  return open;
}

Status CapTracker::check_arm(std::size_t arm) const {
  if (arm < arms_ && !open_arms()[arm])
    return make_error(Errc::exhausted,
                      "a treatment group has reached its enrollment cap and this randomization slot cannot be "
                      "used; contact the study team (the arm is not shown to keep the blind)");
  return {};
}

void CapTracker::record(const std::map<std::string, std::string>& factors, const std::string& cohort,
                        std::size_t arm, long count) {
  for (auto& e : entries_) {
    switch (e.cap.scope) {
      case CapScope::stratum: if (matches(e.cap, factors)) e.count += count; break;
      case CapScope::cohort: if (e.cap.cohort == cohort) e.count += count; break;
      case CapScope::arm: if (e.arm == arm) e.count += count; break;
    }
  }
}

long CapTracker::remaining(CapScope scope, const std::string& id) const {
  for (const auto& e : entries_) {
    if (e.cap.scope != scope) continue;
    if ((scope == CapScope::arm && e.cap.arm == id) || (scope == CapScope::cohort && e.cap.cohort == id))
      return static_cast<long>(e.cap.limit) - e.count;
  }
  return kUnlimited;
}

long CapTracker::stratum_headroom(const std::map<std::string, std::string>& factors) const {
  long room = kUnlimited;
  for (const auto& e : entries_)
    if (e.cap.scope == CapScope::stratum && matches(e.cap, factors))
      room = std::min(room, std::max(0L, static_cast<long>(e.cap.limit) - e.count));
  return room;
}

}  // namespace irt::shared
