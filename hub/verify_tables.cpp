#include "hub/verify_tables.h"

#include "hub/allocations.h"
#include "hub/audit.h"
#include "hub/deviations.h"
#include "hub/randomization_store.h"
#include "hub/users.h"

namespace irt::hub {

TablesReport verify_tables(HubState& hub) {
  TablesReport report;
  auto add = [&](std::vector<std::string> found) {
    report.problems.insert(report.problems.end(), found.begin(), found.end());
  };
  add(verify_audit(hub.db(), hub.signing_key().public_key(), report.audit_entries));
  add(verify_users(hub.db()));
  add(verify_alerts(hub));
  add(verify_allocations(hub));
  add(verify_randomization_lists(hub));
  add(verify_deviations(hub));
  return report;
}

}  // namespace irt::hub
