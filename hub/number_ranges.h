// The participant number ranges the hub granted to nodes, and how far each
// node used them. A site's numbers are handed out in ranges, each after every
// number already granted at that site, so two nodes of a site never share a
// number, and a voided range keeps its numbers out of every later range.
//
// Who calls it: hub/grants.h (grant, top-up, revocation) and
// hub/consumption.h (a screening uses a number). Every function runs inside a
// transaction the caller holds.
// Tables: hub_number_ranges. Thread-safety: as storage::Database.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hub/directive_outbox.h"
#include "shared/directive_payloads.h"
#include "shared/result.h"
#include "storage/database.h"

namespace irt::hub {

shared::Status migrate_number_ranges(storage::Database& db);

// Records the node's next range of `count` numbers of its site, from the
// first number after every range granted at that site; returns the range to
// send in the grant.numbers directive.
shared::NumberRangeGrant grant_number_range(storage::Database& db, const std::string& node_id,
                                            const std::string& site_id, std::uint32_t count, std::int64_t now_ms);

// Numbers the node holds and has not used, over its ranges not voided.
std::uint64_t numbers_left(storage::Database& db, const std::string& node_id);

// Marks a participant number used by its node; false when the node holds no
// range with that number (a deviation).
bool record_number_use(storage::Database& db, const std::string& node_id, const std::string& number);

// Revocation: voids the node's ranges; returns the numbers left unused in them.
std::uint64_t void_node_numbers(storage::Database& db, const std::string& node_id, std::int64_t now_ms);

// irt-hub verify (hub/verify_tables.h): hub_number_ranges rebuilt from the
// grant.numbers directives the hub signed (its outbox, which verify checks
// first): a range missing, added by hand, or moved (its site, first, last or
// digits differ). How far a node used a range and its voiding are not checked.
std::vector<std::string> verify_number_ranges(storage::Database& db, DirectiveOutbox& outbox,
                                              const std::vector<std::string>& node_ids);

}  // namespace irt::hub
