// Simulation of design changes across offline nodes, behind
// `irt-hub simulate randomization --change` (docs/randomization.md,
// "Simulating a design change").
//
// A list design (every method but minimization) is run with K nodes that
// allocate offline and sync every M allocations study-wide (and whenever one
// needs slots: a grant is a contact with the hub). Each change is made at the
// hub after a given number of allocations, as a new study version, by the
// hub's own code: list_design_changed decides whether the list continues with
// a segment (generate_list_segment, append_list_segment), start_list_segment
// voids the unstarted blocks in the slice rows of an in-memory SQLite
// database, and the slice rows grant every top-up (SliceStore). A node learns
// the version and its voids at its next sync; until then it allocates from
// the slots it holds under the old version; after it, it skips the slots of
// a closed arm (NodeSlots::take_next with the arm's open rule, as
// node/domain_store.h next_open_slot). Each allocation is judged by the
// hub's old_design rule (hub/design_changes.h old_design_deviations).
//
// Per change and run it counts the allocations made from the change to the
// next change (or the end), those made by a node that had not applied it
// (each an "old_design" deviation at the hub), those to an arm it closed,
// and the imbalance within the arms it left open, under its ratio.
// Participants fall in a uniformly drawn stratum at a uniformly drawn node.
// Thread-safety: pure over the caller's RandomSource (each run opens its own
// in-memory database).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/random_source.h"
#include "shared/result.h"
#include "shared/study.h"

namespace irt::hub {

// One `--change`: "close B at 120", "ratio A:B 2:1 at 200" (arms not named
// keep their ratio), "add C at 150" or "add C:2 at 150"; "ratio" and "add"
// take "blocks 6[,9]" before "at" when the block sizes change with them.
struct SimulatedChange {
  enum class Kind { close, ratio, add };
  Kind kind = Kind::close;
  std::vector<std::string> arms;  // close, add: one; ratio: those named
  std::vector<int> ratio;         // ratio: one per arm named; add: the new arm's
  std::vector<int> block_sizes;   // empty: unchanged
  std::size_t at = 0;             // allocations study-wide before the change is made
  std::string spec;               // as given
};
shared::Result<SimulatedChange> parse_simulated_change(std::string_view spec);

struct DesignChangeSettings {
  std::size_t participants = 100;
  std::size_t runs = 100;
  std::size_t nodes = 1;
  std::size_t sync_every = 25;  // allocations study-wide between syncs of every node
};

struct ChangeInRun {
  std::size_t allocations = 0;  // from the change to the next change or the end
  std::size_t old_design = 0;   // of those, by a node that had not applied it
  std::size_t to_closed = 0;    // of those, to an arm it closed
  double open_imbalance = 0;    // shared::ratio_imbalance over the arms it left open
};

struct ChangeOutcome {
  SimulatedChange change;
  int version = 0;       // the study version that makes it
  bool segment = false;  // the list continues with a segment (else an arm is only closed)
  std::vector<ChangeInRun> runs;
};

struct DesignChangeSimulation {
  DesignChangeSettings settings;
  std::vector<ChangeOutcome> changes;  // in the order they are made
};

// invalid_input, naming the change, when a change does not apply to the
// version before it (an unknown or closed arm, every arm closed, block sizes
// that do not honour the ratio, a change at or past the last participant),
// or when the study minimizes.
shared::Result<DesignChangeSimulation> simulate_design_changes(const shared::Study& study,
                                                               std::vector<SimulatedChange> changes,
                                                               const DesignChangeSettings& settings,
                                                               shared::RandomSource& source);

nlohmann::json to_json(const DesignChangeSimulation& s);

}  // namespace irt::hub
