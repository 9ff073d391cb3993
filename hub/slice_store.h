// Who owns each slot of the hub's randomization list, stored as rows
// (docs/architecture.md, "The one-owner invariant"): one row per slot that was
// ever granted or voided, one per stratum for where the next grant starts,
// and one per list for the next grant id. A slot with no row is ungranted.
//
// Grants walk the list by shared::walk_grant, the rule shared::SliceLedger
// follows in memory, and write only the rows of the slots they change; a
// reported use updates one row. Nothing is cached: every call reads or writes
// the rows inside the transaction the caller holds, so a rollback, or another
// process (`irt-hub revoke` while the server runs), leaves nothing stale.
//
// Tables: hub_slice_slots, hub_slice_strata, hub_slice_lists. Migration 1
// converts the JSON document of the earlier hub_slice_ledgers table (made by
// hub.randomization's migration 1) into rows and drops that table.
// Thread-safety: as storage::Database (one thread at a time).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hub/directive_outbox.h"
#include "shared/block_list.h"
#include "shared/result.h"
#include "shared/slot_slice.h"
#include "storage/database.h"
#include "sync/ledger.h"

namespace irt::hub {

shared::Status migrate_slices(storage::Database& db);
// Whether any slot of any list was ever granted.
bool any_slot_granted(storage::Database& db);

// Inside a design change's transaction, when a list segment is appended to
// `before` (the list in use) as study version `to` (docs/randomization.md,
// "Design changes"): every node's granted slots in blocks of which no slot is
// used are voided (node_id kept: the node they were taken from), a block
// partly used stays granted and is finished as it is; every stratum's next
// grant starts after `before`'s last slot, so the rest of the old list is
// never granted; and every row moves to version `to`. Returns the voids per
// node and stratum, for the grant.slots directives that tell the nodes.
std::vector<shared::SlotVoid> start_list_segment(storage::Database& db, const shared::RandomizationList& before,
                                                 int to);
// Every row of version `from` moves to version `to` (a list extended or
// continued keeps its slots' owners).
void move_slices_to_version(storage::Database& db, int from, int to);

// irt-hub verify (hub/verify_tables.h): hub_slice_slots rebuilt and compared
// row by row, naming each (stratum, slot) that differs. The rebuild: the
// slot numbers of every grant.slots directive the hub signed, in order
// (granted to its node; its voids voided; verify checks the outbox's
// signatures; the rest of a block a cap cut, voided with no node), a revoked
// node's slots still granted voided, and each slot
// the allocations say its owner used, used (verify rebuilds the allocations
// from the ledger). Rows are compared by stratum and slot whatever their
// study version: a design change moves every row to the new version.
std::vector<std::string> verify_slices(storage::Database& db, DirectiveOutbox& outbox,
                                       const std::vector<sync::LedgerNode>& nodes);

class SliceStore {
 public:
  using State = shared::SliceLedger::State;

  // `list` must outlive the store; its study_version keys the rows.
  SliceStore(storage::Database& db, const shared::RandomizationList& list) : db_(db), list_(list) {}

  // As shared::SliceLedger::grant, recorded in the rows.
  shared::Result<shared::SlotGrant> grant(const std::string& node, std::uint32_t stratum, std::size_t min_slots,
                                          long cap_headroom = shared::kUnlimitedHeadroom);
  // A node reported using a slot: forbidden unless it owns it, conflict unless it is granted and unused.
  shared::Status record_use(const std::string& node, std::uint32_t stratum, std::uint32_t slot);
  // Voids every unused slot the node holds, per stratum.
  std::vector<shared::SlotVoid> revoke(const std::string& node);

  std::size_t free_slots(const std::string& node, std::uint32_t stratum) const;
  // Per stratum in which the node ever held a slot: how many it holds unused.
  std::map<std::uint32_t, std::size_t> free_slots_by_stratum(const std::string& node) const;
  // The numbers of those free slots, in list order.
  std::vector<std::uint32_t> free_slot_numbers(const std::string& node, std::uint32_t stratum) const;
  std::size_t outstanding(std::uint32_t stratum) const;  // granted, not yet used, all nodes
  std::size_t used(std::uint32_t stratum) const;
  State state(std::uint32_t stratum, std::uint32_t slot) const;
  std::optional<std::string> owner(std::uint32_t stratum, std::uint32_t slot) const;

 private:
  std::size_t count(std::uint32_t stratum, const char* state) const;
  storage::Database& db_;
  const shared::RandomizationList& list_;
};

}  // namespace irt::hub
