// Slices of a randomization list: which node owns which slots
// (docs/architecture.md, "The one-owner invariant").
//
// Hub side, SliceLedger tracks every slot of a list: ungranted, granted to a
// node, used, or voided. The hub grants whole blocks per stratum, sized from
// the node's enrollment forecast and the longest expected offline period
// (grant_target_slots), tops them up at each sync, and on revocation voids the
// node's unused slots, which are never granted again. A stratum cap's headroom
// bounds every grant, so offline nodes together cannot overshoot it; only then
// may a grant end inside a block (the block's rest is voided).
//
// Node side, NodeSlots holds the slots a node owns per stratum and consumes
// them in list order; it refuses a slot it does not own (forbidden) and, when a
// stratum's slots are used up, stops with "sync with the hub".
//
// SlotGrant and SlotVoid are the plain values carried by the hub's signed
// directives (to_json/from_json); NodeSlots and SliceLedger serialise their
// state the same way. Arm ids travel inside grants; the directive layer seals
// them to the node, and nothing here puts an arm into a message.
// Thread-safety: plain values, one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/block_list.h"
#include "shared/result.h"

namespace irt::shared {

inline constexpr long kUnlimitedHeadroom = std::numeric_limits<long>::max();

struct GrantedSlot {
  std::uint32_t slot = 0;   // 1-based within the stratum, as in the list
  std::uint32_t block = 0;
  std::uint32_t block_size = 0;
  std::string arm;          // arm id (sealed on the wire and at rest)
  friend bool operator==(const GrantedSlot&, const GrantedSlot&) = default;
};

struct SlotGrant {
  std::string node;
  std::uint64_t grant_id = 0;       // increasing per ledger
  std::uint32_t stratum = 0;        // 0-based stratum index of the list
  std::string stratum_label;        // "site=101;sex=F", for messages
  std::vector<GrantedSlot> slots;   // whole blocks, in list order
  friend bool operator==(const SlotGrant&, const SlotGrant&) = default;
};

struct SlotVoid {
  std::string node;
  std::uint32_t stratum = 0;
  std::vector<std::uint32_t> slots;  // never to be used or granted again
  friend bool operator==(const SlotVoid&, const SlotVoid&) = default;
};

// Slots a node should hold for one stratum: forecast participants per day in
// that stratum times the longest expected offline period, rounded up; at least
// one participant's worth, so a stratum with any forecast is never left empty.
std::size_t grant_target_slots(double forecast_per_day, double offline_days);

// The one rule by which a grant walks a stratum of the list, for SliceLedger
// and for the hub's stored slices (hub/slice_store.h): from the first
// ungranted slot (`next_ungranted`, an offset within the stratum), whole
// blocks until at least min_slots are granted. `cap_headroom` is the room
// left under the stratum's caps; the slots granted but not yet used
// (`outstanding`) are subtracted from it, and a block that room cuts has its
// rest voided. exhausted when the cap or the list leaves nothing to grant;
// invalid_input for a stratum the list does not have.
struct GrantWalk {
  std::vector<GrantedSlot> slots;     // granted, in list order
  std::vector<std::size_t> granted;   // their indices into list.slots
  std::vector<std::size_t> voided;    // indices of a cut block's rest
  std::size_t next_ungranted = 0;     // the stratum's offset after the grant
};
Result<GrantWalk> walk_grant(const RandomizationList& list, std::uint32_t stratum, std::size_t next_ungranted,
                             std::size_t outstanding, std::size_t min_slots, long cap_headroom);

// Whether `node` may report using a slot: forbidden unless it owns it
// (`owned`), conflict when it is already used (`state` is "granted", "used"
// or "voided"). A slot voided while its owner held it (a design change voids
// the blocks not yet started, docs/randomization.md) may still be reported
// used: the node used it before it learnt of the void, and a use is a fact.
// The message says to keep the event and raise a deviation.
Status check_slot_use(const std::string& node, std::uint32_t stratum, std::uint32_t slot, bool owned,
                      std::string_view state);

class NodeSlots {
 public:
  // Adds a grant's slots; conflict if the grant was already applied or names a
  // slot this node already holds.
  Status apply(const SlotGrant& grant);
  // Voids the listed slots (the node was told they are withdrawn); used slots stay used.
  void apply(const SlotVoid& v);

  // The next free owned slot of a stratum, marked used. exhausted when none is left.
  Result<GrantedSlot> take_next(std::uint32_t stratum);
  // The same, skipping the free slots whose arm `open` refuses (an arm a
  // design change closed: the rule of node/domain_store.h next_open_slot);
  // exhausted when no free slot of an open arm is left.
  Result<GrantedSlot> take_next(std::uint32_t stratum, const std::function<bool(const std::string& arm)>& open);
  // Marks one specific slot used: forbidden unless this node owns it, conflict if used or voided.
  Result<GrantedSlot> take(std::uint32_t stratum, std::uint32_t slot);

  std::size_t free_count(std::uint32_t stratum) const;

  friend void to_json(nlohmann::json& j, const NodeSlots& s);
  friend void from_json(const nlohmann::json& j, NodeSlots& s);

 private:
  enum class State : std::uint8_t { free, used, voided };
  struct Held {
    GrantedSlot slot;
    State state = State::free;
  };
  struct Stratum {
    std::string label;
    std::map<std::uint32_t, Held> slots;  // by slot number: list order
  };
  std::map<std::uint32_t, Stratum> strata_;
  std::vector<std::uint64_t> applied_grants_;
};

class SliceLedger {
 public:
  static constexpr long kUnlimited = kUnlimitedHeadroom;
  enum class State : std::uint8_t { ungranted, granted, used, voided };

  // The ledger refers to `list`, which must outlive it.
  explicit SliceLedger(const RandomizationList& list);

  // Grants `node` whole blocks of `stratum`, starting at the first ungranted
  // slot, until at least min_slots are granted. `cap_headroom` is the room left
  // under the stratum's caps (CapTracker::stratum_headroom), from which the
  // slots granted but not yet used are subtracted here. exhausted when the cap
  // or the list leaves nothing to grant.
  Result<SlotGrant> grant(const std::string& node, std::uint32_t stratum, std::size_t min_slots,
                          long cap_headroom = kUnlimited);

  // Tops a node up at sync: grants whole blocks until its free slots in the
  // stratum reach grant_target_slots(forecast, offline_days). An empty grant
  // (no slots) when it already holds enough.
  Result<SlotGrant> top_up(const std::string& node, std::uint32_t stratum, double forecast_per_day,
                           double offline_days, long cap_headroom = kUnlimited);

  // A node reported using a slot: forbidden unless the node owns it and it is unused.
  Status record_use(const std::string& node, std::uint32_t stratum, std::uint32_t slot);

  // Voids every unused slot the node holds (lost or revoked node), per stratum.
  std::vector<SlotVoid> revoke(const std::string& node);

  std::size_t free_slots(const std::string& node, std::uint32_t stratum) const;
  std::size_t outstanding(std::uint32_t stratum) const;  // granted, not yet used, all nodes
  State state(std::uint32_t stratum, std::uint32_t slot) const;
  const std::string* owner(std::uint32_t stratum, std::uint32_t slot) const;

  nlohmann::json state_json() const;
  // Restores state saved by state_json over the same list; invalid_input if it does not fit.
  Status restore(const nlohmann::json& j);

 private:
  std::size_t index(std::uint32_t stratum, std::uint32_t slot) const;  // into list_.slots
  std::uint32_t node_index(const std::string& node);
  const RandomizationList& list_;
  std::vector<State> state_;
  std::vector<std::uint32_t> owner_;          // index into nodes_ + 1; 0 = none
  std::vector<std::string> nodes_;
  std::vector<std::size_t> next_ungranted_;   // per stratum, offset within the stratum
  std::uint64_t next_grant_id_ = 1;
};

void to_json(nlohmann::json& j, const GrantedSlot& s);
void from_json(const nlohmann::json& j, GrantedSlot& s);
void to_json(nlohmann::json& j, const SlotGrant& g);
void from_json(const nlohmann::json& j, SlotGrant& g);
void to_json(nlohmann::json& j, const SlotVoid& v);
void from_json(const nlohmann::json& j, SlotVoid& v);

}  // namespace irt::shared
