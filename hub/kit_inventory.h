// The hub's kits: the blinded kit list made at init, where each kit is (its
// custody: a depot or one node) and what became of it.
//
// At `irt-hub init` of a study that ships no kit list (hub/kit_lists.h: init
// imports NAME.kits.csv beside the study instead), and by `irt-hub kits
// generate` (create_kit_inventory, inside the caller's transaction) the hub
// draws a random 32-byte seed and generates one kit list (shared::
// generate_kit_list) for the study's kit types, records the seed and the
// list's hash (BLAKE2b-256 under "irt/kitlist/v1" over encode_kit_csv), and
// places the kits at the study's depots: per kit type and depot,
// kKitsPerSiteMultiple x (the sites the depot serves) x (the larger of the
// type's initial shipment and the study's max_level). Each depot's kits of a
// type are split into kLots lots in number order; lot i (from 0) expires
// kShelfLifeDays + i x kLotExpiryStepDays after the init date. Lots are shared
// by all kit types, so neither a lot nor an expiry date says which arm a kit
// treats. Those lots are made in hub_lots (hub/lots.h) and released in every
// study country.
//
// Every kit has exactly one custody at a time (hub_kits.custody_kind and
// custody_id); only ship_kits moves kits from a depot to a node (only
// kits of lots released in the site's country, outside the kit type's
// do-not-ship window there: shared::Study::expiry_windows), and
// void_node_kits marks a revoked node's unused kits lost with the node (never
// to be shipped again). Ingest records what nodes report (record_kit_event).
// Every change of a kit's status or custody goes through change_kit_state,
// which audits it.
// All functions run inside a transaction the caller holds, which also holds
// the directive and the audit entry of the change.
// Tables: hub_kit_lists, hub_kits, hub_shipments, hub_kit_state_baseline.
// Thread-safety: as storage::Database.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hub/tuning.h"  // kLots, kShelfLifeDays, kLotExpiryStepDays, kKitsPerSiteMultiple
#include "shared/directive_payloads.h"
#include "shared/event_payloads.h"
#include "shared/resupply.h"
#include "shared/result.h"
#include "shared/study.h"
#include "storage/database.h"

namespace irt::hub {

shared::Status migrate_kit_inventory(storage::Database& db);
shared::Status create_kit_inventory(storage::Database& db, const shared::Study& study, const std::string& actor,
                                    std::int64_t now_ms);

// An amendment (inside its transaction): kits for what version `neu` adds
// over `old` (a site served by a depot, a new depot, a new kit type, a larger
// initial shipment), per kit type and depot the difference of the stock
// rule above, from a new kit list with its own recorded seed and hash, lots
// named "V<version>-L01"..., numbers of the first list's length and never
// one already used. Returns how many kits were made.
shared::Result<std::size_t> extend_kit_inventory(storage::Database& db, const shared::Study& old,
                                                 const shared::Study& neu, const std::string& actor,
                                                 std::int64_t now_ms);

// Kits of this type shipped to a node, whatever became of them since.
std::size_t kits_at_nodes(storage::Database& db, const std::string& kit_type);

struct HubKit {
  std::string number;
  std::string kit_type;
  std::string lot;
  std::string expiry;        // "YYYY-MM-DD"
  std::string custody_kind;  // "depot" or "node"
  std::string custody_id;    // depot id or node id
  // At a depot: available. At a node: shipped (announced, not yet received),
  // then what the node reports; lost_with_node when the node was revoked
  // (shared::KitStatus, stored by name).
  shared::KitStatus status = shared::KitStatus::available;
  std::string shipment_id;   // empty at a depot
  std::string participant;   // for dispensed kits
};

std::optional<HubKit> find_kit(storage::Database& db, const std::string& number);

// A kit's status and custody (and the participant it was dispensed to): what
// changes over its life, as opposed to its number, type, lot and expiry.
struct KitState {
  shared::KitStatus status = shared::KitStatus::available;
  std::string custody_kind;  // "depot" or "node"
  std::string custody_id;
  std::string participant;
  bool operator==(const KitState&) const = default;
};
KitState state_of(const HubKit& kit);
// "status dispensed, custody node 101-N1, participant 101-001": the text the
// audit trail records (no kit type, arm or lot: a blinded reader may read it).
std::string to_text(const KitState& state);

// The one way a kit's status, custody or participant changes once its kit
// list made it: every writer (shipments, ingest of node events, custody
// moves, decisions, revocation, depot transfers and returns, participant
// transfers) calls it, inside its own transaction. It updates hub_kits and
// records the audit entry "kit.state" (subject the kit, old and new value
// as to_text; `reason` says what moved it), which verify_kit_states
// rebuilds each kit from. Nothing is recorded when nothing changes. Throws
// StorageError when the kit is not in hub_kits.
void change_kit_state(storage::Database& db, const HubKit& kit, const KitState& to, const std::string& actor,
                      const std::string& reason, std::int64_t now_ms);

// Inside the transaction that made kit list `list_id`: keeps each of its
// kits' type and lot as the list brought them (hub_kit_list_kits, never
// updated) and returns "kit list N, kits hash H" for its audit entry, H the
// BLAKE2b-256 (under "irt/kitlist-kits/v1") of "number,type,lot\n" per kit in
// kit number order: recomputable from stored kits, which an imported file's
// own hash is not (its bytes are not kept).
std::string record_kit_list_kits(storage::Database& db, std::int64_t list_id);

// irt-hub verify (hub/verify_tables.h): each kit list's kits against the
// hash its audit entry recorded, each kit's list, type and lot against its
// list's and its expiry against its lot's (lot relabels change both); a kit
// added by hand or missing. Names the kit and the column, never a type or a
// lot (either can reveal the arm to a blinded operator).
std::vector<std::string> verify_kits(storage::Database& db);
// irt-hub verify: each kit's status, custody and participant against the
// newest "kit.state" entry of the signed audit trail (the rebuild is a read
// of what change_kit_state recorded, not a second state machine). A kit with
// none is where its list put it: available at a depot (which depot is not
// rebuilt), or as hub_kit_state_baseline copied it when the hub was upgraded
// to this check. Names the kit, the column, and both values (statuses, node
// and depot ids, participant numbers: never a type or a lot).
std::vector<std::string> verify_kit_states(storage::Database& db);
std::vector<HubKit> kits_held_by(storage::Database& db, const std::string& custody_kind, const std::string& custody_id);
// How many kits a custodian holds, per status (never per kit type: a kit type can name an arm).
std::map<std::string, std::size_t> kit_counts_by_status(storage::Database& db, const std::string& custody_kind,
                                                        const std::string& custody_id);

// The depot that supplies a country's sites: the first of the study's depots serving it; nullptr when none does.
const shared::Depot* depot_for(const shared::Study& study, const std::string& country);

// The one picking rule, for every shipment to a site: `lines` (kits per kit
// type) from the depot serving the site's country, per kit type the
// earliest-expiring kits of lots released in that country and outside the kit
// type's do-not-ship window there, custody moved to the node (status
// shipped), recorded in hub_shipments as `kind` and audited "shipment.sent"
// with `reason` (kit count, depot, node; never the kit types). not_found when
// no depot serves the country; exhausted (nothing moved) when the depot lacks
// shippable kits, naming the lots held back and why; invalid_input for no kits.
shared::Result<shared::Shipment> ship_kits(storage::Database& db, const shared::Study& study,
                                           const std::string& node_id, const std::string& site_id,
                                           const std::string& kind, const std::vector<shared::ShipmentLine>& lines,
                                           const std::string& reason, const std::string& actor, std::int64_t now_ms);

// Every kit type of the study with its blinded label and no stock: the
// ResupplyInput::stock a site starts from.
std::vector<shared::SiteStock> study_stock(const shared::Study& study);

// The initial shipment for a newly enrolled node: shared::initial_order (the
// study's initial levels, composed by the blind-safe rule), shipped by ship_kits.
shared::Result<shared::Shipment> ship_initial(storage::Database& db, const shared::Study& study,
                                              const std::string& node_id, const std::string& site_id,
                                              const std::string& actor, std::int64_t now_ms);

// A node reported a kit event (`reason` names it for the kit's audit entry).
// Returns a deviation message (the event is kept, the caller raises an alert)
// when the kit is not in that node's custody.
std::optional<std::string> record_kit_event(storage::Database& db, const std::string& node_id,
                                            const std::string& kit, shared::KitStatus status,
                                            const std::string& participant, const std::string& reason,
                                            std::int64_t now_ms);

// Revocation: the node's kits in hand and never used (shipped, received, available,
// quarantined, rejected) become lost_with_node. Returns how many.
std::size_t void_node_kits(storage::Database& db, const std::string& node_id, const std::string& actor,
                           const std::string& reason, std::int64_t now_ms);

// ---- for the quarantine decisions, destructions and reconciliation
// (hub/kit_decisions.h, hub/reconcile.h)

// Sets a kit's status (change_kit_state); the caller checked the old one.
void set_kit_status(storage::Database& db, const std::string& number, shared::KitStatus status,
                    const std::string& actor, const std::string& reason, std::int64_t now_ms);
// Every kit, by number.
std::vector<HubKit> all_kits(storage::Database& db);
// Shipment id -> the depot it left from.
std::map<std::string, std::string> shipment_depots(storage::Database& db);

// A handover between two nodes of one site (hub/custody.h): the kits, each
// held by `from_node` in stock there (received, or available after a
// release), move to `to_node` as shipped. They keep the shipment that brought
// them from their depot (shipment_id), which reconciliation counts them
// against. Returns them (kit type, lot and expiry for the receiving node's
// shipment), or a conflict naming the first kit `from_node` does not hold in
// stock; then nothing moved.
shared::Result<std::vector<HubKit>> move_node_kits(storage::Database& db, const std::string& from_node,
                                                   const std::string& to_node, const std::vector<std::string>& kits,
                                                   const std::string& reason, std::int64_t now_ms);

// A participant transferred to another site (hub/transfers.h): the kits
// dispensed to it that `from_node` holds (dispensed, not returned) move with
// it to `to_node`, still dispensed, keeping their depot shipment. Returns them.
std::vector<HubKit> move_participant_kits(storage::Database& db, const std::string& from_node,
                                          const std::string& to_node, const std::string& participant,
                                          const std::string& actor, const std::string& reason, std::int64_t now_ms);

}  // namespace irt::hub

