#include "hub/verify_tables.h"

#include "hub/allocations.h"
#include "hub/audit.h"
#include "hub/deviations.h"
#include "hub/kit_inventory.h"
#include "hub/leases.h"
#include "hub/number_ranges.h"
#include "hub/randomization_store.h"
#include "hub/slice_store.h"
#include "hub/users.h"

namespace irt::hub {

TablesReport verify_tables(HubState& hub) {
  TablesReport report;
  auto add = [&](std::vector<std::string> found) {
    report.problems.insert(report.problems.end(), found.begin(), found.end());
  };
  add(verify_audit(hub.db(), hub.signing_key().public_key(), report.audit_entries));
  add(verify_audit_in_checkpoints(hub.db(), hub.ledger().checkpoint_texts(), hub.signing_key().public_key()));
  add(verify_users(hub.db()));
  add(verify_alerts(hub));
  add(verify_allocations(hub));
  add(verify_randomization_lists(hub));
  add(verify_deviations(hub));
  add(verify_kits(hub.db()));
  add(verify_kit_states(hub.db()));
  add(hub.outbox().verify(hub.signing_key().public_key()));
  add(verify_leases(hub));
  std::vector<std::string> nodes;
  for (const auto& n : hub.ledger().nodes()) nodes.push_back(n.node_id);
  add(verify_number_ranges(hub.db(), hub.outbox(), nodes));
  add(verify_slices(hub.db(), hub.outbox(), hub.ledger().nodes()));
  return report;
}

}  // namespace irt::hub
