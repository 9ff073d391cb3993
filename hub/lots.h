// The hub's lots: each lot's expiry date and the countries it is released in
// (docs/supply.md, "Lots"). A kit (hub/kit_inventory.h) names its lot and
// carries the lot's expiry; it ships only to a country where its lot is
// released, and never inside its do-not-ship window (shared::ExpiryWindows).
//
// - add_lot: a new lot with its expiry date (the last day of use, UTC end of
//   day). Kits generated at init or by an amendment make their lots here too,
//   released at once in every study country (those kits are the system's own).
// - release_lot (signed, release_quarantine: the quality release of stock):
//   the lot may ship to these countries.
// - relabel_lot (signed, manage_supply): a new expiry for the lot and every
//   kit of it; each node holding kits of the lot not yet used receives a
//   "kits.relabel" directive (shared/directive_payloads.h) naming them, so
//   the site relabels them.
// Lots are shared by kit types where the hub numbers kits; an imported list
// may put one kit type in a lot, so a blinded reader is never shown a kit's
// lot nor a lot's kit types (docs/supply.md).
//
// add_lot and lots_released run inside the caller's transaction; the signed
// functions open their own, which also holds the audit entry and the
// directives. Tables: hub_lots, hub_lot_releases.
// Thread-safety: as storage::Database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hub/hub_state.h"
#include "hub/users.h"
#include "shared/result.h"
#include "storage/database.h"

namespace irt::hub {

shared::Status migrate_lots(storage::Database& db);

struct Lot {
  std::string id;
  std::string expiry;                     // "YYYY-MM-DD"
  std::vector<std::string> released_in;   // country codes, sorted
  std::size_t kits = 0;                   // kits of the lot, wherever they are
  std::vector<std::string> kit_types;     // reveals arms: unblinded readers only
};

// A new lot (inside the caller's transaction, audited). invalid_input for a
// bad id or date, conflict when the lot exists.
shared::Status add_lot(storage::Database& db, const std::string& id, const std::string& expiry,
                       const std::string& reason, const std::string& actor, std::int64_t now_ms);
// Records `countries` as released for the lot without a signature: only for
// the lots of kits the hub generates (init, amendments), in their transaction.
void release_generated_lot(storage::Database& db, const std::string& id, const std::vector<std::string>& countries,
                           std::int64_t now_ms, const std::string& actor);

std::vector<Lot> list_lots(storage::Database& db);
std::optional<Lot> find_lot(storage::Database& db, const std::string& id);
bool lot_released(storage::Database& db, const std::string& id, const std::string& country);

// Signed by a user whose role holds release_quarantine; audited with reason
// and signature; conflict (nothing changed) when every country is already
// released, not_found for an unknown lot, invalid_input for a country the
// study does not have.
shared::Status release_lot(HubState& hub, const std::string& id, const std::vector<std::string>& countries,
                           const std::string& reason, const Signature& signer, std::int64_t now_ms);

struct Relabel {
  std::string old_expiry;
  std::size_t kits = 0;             // kits of the lot whose expiry changed
  std::vector<std::string> nodes;   // nodes sent a kits.relabel directive
};
// Signed by a user whose role holds manage_supply; audited; one directive per
// node holding kits of the lot that are not dispensed, destroyed or lost.
shared::Result<Relabel> relabel_lot(HubState& hub, const std::string& id, const std::string& new_expiry,
                                    const std::string& reason, const Signature& signer, std::int64_t now_ms);

}  // namespace irt::hub
