// Which sites are active for supply and enrollment (docs/supply.md, "Site
// activation"). By default a site is activated by its first node's
// enrollment (hub/enrollment.cpp, in that enrollment's transaction); a study
// with "site_activation": "manual" has each site activated by hand
// (`irt-hub site activate`, signed by a user whose role holds manage_supply),
// and enrolling a node of a site not yet activated is refused.
// Every activation is one audit entry ("site.activated").
// Table: hub_site_activations.
// Thread-safety: as storage::Database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "hub/hub_state.h"
#include "hub/users.h"
#include "shared/result.h"
#include "storage/database.h"

namespace irt::hub {

shared::Status migrate_site_activations(storage::Database& db);

bool site_active(storage::Database& db, const std::string& site_id);
// When the site was activated (milliseconds since the epoch); nullopt while it is not.
std::optional<std::int64_t> site_activated_ms(storage::Database& db, const std::string& site_id);

// Why a node of `site_id` may not be enrolled now: the study activates sites
// by hand and this one is not yet; nullopt otherwise.
std::optional<std::string> site_activation_problem(storage::Database& db, const shared::Study& study,
                                                   const std::string& site_id);

// Inside the enrollment's transaction: the site's first node activates it
// (nothing when it is already active).
void activate_site_at_enrollment(storage::Database& db, const std::string& site_id, const std::string& node_id,
                                 std::int64_t now_ms);

// Signed (manage_supply); not_found for a site the study does not have,
// conflict when it is already active (nothing changed).
shared::Status activate_site(HubState& hub, const std::string& site_id, const std::string& reason,
                             const Signature& signer, std::int64_t now_ms);

}  // namespace irt::hub
