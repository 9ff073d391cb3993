// Amendments: a new version of the study configuration made current at the
// hub and sent to every node (docs/study-config.md, "Amendments").
//
// plan_amendment checks a new version against the current one and lists
// what changed (shared/study_diff.h). It refuses, each refusal naming the
// path and what to do instead:
//   - a document that does not load (every problem, as shared::load_study gives them);
//   - another study id, or a version other than the current one + 1;
//   - an arm with allocations removed, or its name changed; an arm closed by
//     an earlier version reopened (closing one, "closed": true, is a design
//     change accepted at any time: hub/design_changes.h); once a minimization
//     is in use, an arm's ratio changed or an arm added (a list design takes
//     them, and new block sizes, as a new list segment: below);
//   - once randomization is in use (a slot granted, a stream issued, a
//     participant allocated): another method, strata or minimization
//     settings, or factor levels that would renumber the strata
//     (levels may only be added at the end of the first stratification
//     factor, and of minimization factors);
//   - a kit type with kits shipped to a node removed or mapped to another arm;
//   - a site that holds nodes or participants removed or moved to another
//     country, and a country with such a site removed.
//
// amend() takes the e-signature of a hub user holding manage_study (meaning
// "approved") and, in ONE transaction: stores the version (the hub keeps
// every version: study_versions in hub/hub_state.h), extends the
// randomization list for strata the version adds, or continues it with a
// segment for a ratio change or an added arm (amend_randomization in
// hub/randomization_store.h; the nodes' free slots in blocks not yet started
// are voided, one grant.slots directive per node after its study.config,
// each void audited), makes kits for the sites, depots and kit types
// it adds (extend_kit_inventory in hub/kit_inventory.h), records the audit
// entry (old version, new version, reason, signer) and issues a
// "study.config" directive to every node that is not revoked. A refused or
// unsigned amendment changes nothing.
// Who calls it: `irt-hub amend` (hub/study_commands.cpp).
// Thread-safety: as HubState.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hub/hub_state.h"
#include "hub/randomization_store.h"
#include "hub/users.h"
#include "shared/result.h"
#include "shared/study.h"

namespace irt::hub {

struct AmendmentPlan {
  std::optional<shared::Study> study;  // the new version, when the document loads
  std::vector<std::string> errors;     // the document does not load: every problem
  std::vector<std::string> refusals;   // it loads but cannot become current mid-study
  std::vector<std::string> changes;    // what changed against the current version
  bool acceptable() const { return study && errors.empty() && refusals.empty(); }
};

// Reads the hub's current version and what is in use; changes nothing.
AmendmentPlan plan_amendment(HubState& hub, std::string_view document);

struct Amended {
  int old_version = 0;
  int new_version = 0;
  std::size_t directives = 0;  // study.config directives issued, one per node not revoked
  ListChange list = ListChange::unchanged;
  std::size_t kits_made = 0;
  std::size_t slots_voided = 0;  // free slots in blocks not yet started, when the list continued with a segment
};

// invalid_input (the problems, one a line) for a document that does not load,
// conflict for a refused one, unauthenticated or forbidden for a signature
// that does not verify or may not approve: in each case nothing changed.
shared::Result<Amended> amend(HubState& hub, std::string_view document, const std::string& reason,
                              const Signature& signer, std::int64_t now_ms);

// What of an amendment's diff, refusals or load errors `blinded` may read:
// every line, but for a blinded reader those about arms and kit types (each
// kit type treats one arm, a visit's dispensing names kit types) are left out
// and counted in a last line. A line holding several (an error's message) is
// split first. The one rule for `irt-hub amend` and POST /api/v1/amendments.
std::vector<std::string> amendment_lines_for(const std::vector<std::string>& lines, bool blinded);

// {"study_id", "version", "document"}: the "study.config" directive's payload
// for the hub's current version (enrollment and amendments).
std::string study_config_payload(const HubState& hub);

}  // namespace irt::hub
