// The hub's randomization list and who owns each of its slots.
//
// At `irt-hub init` (create_randomization, inside init's transaction) the hub
// draws a random 32-byte seed, generates the study version's list with
// shared::generate_list (block, simple, Efron and big-stick designs;
// kSlotsPerStratum slots per stratum, whole blocks) and stores the seed, the
// canonical CSV and its hash (hub/list_hash.h), audited. The seed is secret to
// unblinded roles: nothing prints it, and no message or audit value holds it.
// Minimization designs have no list: their random numbers come from streams
// granted per node (hub/grants.h).
//
// RandomizationStore::load regenerates the latest recorded list (an amendment
// may record a new one, amend_randomization) from its seed with the current
// study, followed by the segments design changes appended to it (each
// generated with its own version: hub/list_segments.h), and
// refuses to run (integrity) when its hash differs from the recorded one. Who
// owns each slot is in the rows of hub/slice_store.h, changed inside the
// transaction that issues the matching directive, so slot ownership and
// directives commit together. Tables: hub_randomization_lists.
// Thread-safety: as HubState (one thread at a time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "crypto/hash.h"
#include "hub/slice_store.h"
#include "hub/tuning.h"  // kSlotsPerStratum
#include "shared/block_list.h"
#include "shared/result.h"
#include "shared/slot_slice.h"
#include "shared/study.h"
#include "storage/database.h"

namespace irt::hub {

class HubState;

shared::Status migrate_randomization(storage::Database& db);

// Each stored list (one per study version) regenerated from its recorded seed
// under its study version and compared with the stored list (naming the first
// line that differs, never its arm), with its stored hash, and with the list
// hash the signed audit trail recorded when the list was generated or
// extended (irt-hub verify). One problem per difference.
std::vector<std::string> verify_randomization_lists(HubState& hub);

// Whether the study's method pre-generates a list (everything but minimization).
bool has_randomization_list(const shared::Study& study);

// Inside init's transaction: seed, list, hash, audit. Nothing for minimization.
shared::Status create_randomization(storage::Database& db, const shared::Study& study, const std::string& actor,
                                    std::int64_t now_ms);

class RandomizationStore {
 public:
  // nullptr (and no error) for a study without a list.
  static shared::Result<std::unique_ptr<RandomizationStore>> load(storage::Database& db, const shared::Study& study);

  const shared::RandomizationList& list() const { return *list_; }
  const crypto::Hash& list_hash() const { return hash_; }
  SliceStore& slices() { return slices_; }
  const SliceStore& slices() const { return slices_; }
  // The study version of the list segment a slot comes from (the first
  // list's version for its own slots); hub/list_segments.h.
  int segment_version(std::uint32_t stratum, std::uint32_t slot) const;
  bool has_segments() const { return segments_.size() > 1; }

 private:
  struct Segment {
    int version;
    std::vector<std::uint32_t> first_slot;  // per stratum, the segment's first slot number
  };
  std::vector<Segment> segments_;  // the first list, then each segment, oldest first
  RandomizationStore(storage::Database& db, std::unique_ptr<shared::RandomizationList> list, crypto::Hash hash);
  std::unique_ptr<shared::RandomizationList> list_;  // slices_ points into it
  crypto::Hash hash_;
  SliceStore slices_;
};

// Whether any slot was granted, any minimization stream issued or any
// participant allocated: from then on the randomization cannot change.
bool randomization_in_use(storage::Database& db);

// An amendment from version `old` to version `neu` (inside its transaction).
// The list in use (`current`, nullptr for minimization) stays when the new
// version generates it unchanged; it is extended, from its recorded seed, when
// the new version only adds strata after the existing ones (every existing
// slot keeps its stratum, number and arm, and its owner: the slice rows move
// to the new version), recorded as the new version's list with its hash and
// audited; and it is replaced by a list from a fresh seed only while nothing
// was granted. Once randomization is in use, a version that changes the
// allocation (an arm's ratio, an arm added) or the block sizes, and nothing
// else of the list, continues it with a segment (hub/list_segments.h, sized
// per stratum like the first list): recorded with the hash of the whole list,
// audited, and the slices moved on (start_list_segment in hub/slice_store.h:
// the voids it makes are appended to `voided`, for the caller to send).
// conflict (nothing written) for any other change of a list in use, and for a
// change of method once randomization is in use.
enum class ListChange { unchanged, extended, replaced, segment };
shared::Result<ListChange> amend_randomization(storage::Database& db, const RandomizationStore* current,
                                               const shared::Study& old, const shared::Study& neu,
                                               const std::string& actor, std::int64_t now_ms,
                                               std::vector<shared::SlotVoid>& voided);

// Whether `neu` changes the allocation or the block sizes of `old`: a design
// change a list design meets with a new segment.
bool list_design_changed(const shared::Study& old, const shared::Study& neu);

// The recorded seed of the list (hex), for `irt-hub randlist verify` by an
// unblinded statistician; not_found for a study without a list.
shared::Result<std::string> randomization_seed_hex(storage::Database& db, int study_version);

}  // namespace irt::hub
