// Design changes: the amendments that change how new participants are
// allocated (an arm closed, Arm::closed; an arm's ratio changed, an arm added,
// the block sizes changed: hub/list_segments.h), the randomizations made under
// an older design after such a change, and which nodes have applied it
// (docs/randomization.md, "Design changes").
//
// A change reaches a node with the "study.config" directive of its version;
// until the node applies it, the node randomizes under the version it holds,
// which every event records ("study_version", docs/sync-protocol.md). At
// ingest (hub/consumption.h) a randomization made under a version older than
// a change, at a device time at or after the change was made, raises the
// deviation "old_design" once per change it missed: kept, never reassigned.
// Its summary names the participant and the versions, never an arm, and it is
// raised whatever the arm (so a blinded reader learns nothing from which
// randomizations have one); the sealed, unblinded part says whether the
// participant went to an arm the change closed.
//
// Who calls it: hub/consumption.cpp (the rule), `irt-hub design-changes`
// (the report). Reads only; the deviation is raised by the caller.
// Thread-safety: as HubState.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hub/hub_state.h"
#include "shared/study.h"

namespace irt::hub {

// Deviation subject prefix: one "old_design" deviation per event and change
// missed, subject "version N".
struct DesignChange {
  int version = 0;                       // the study version that made the change
  std::int64_t made_ms = 0;              // when the amendment was approved (hub clock)
  std::string made_by;
  std::string reason;
  std::vector<std::string> closed_arms;  // the arms this version closes (unblinded)
  std::vector<std::string> added_arms;   // the arms this version adds (unblinded)
  // An arm's ratio, the arms or the block sizes changed (list_design_changed
  // in hub/randomization_store.h): a list design continues with a segment.
  bool allocation_changed = false;
  // From when a randomization under an older version misses the change: the
  // approval, or, for a change that only closes arms from a date, the start
  // (UTC) of its earliest such date (until then the old design still held);
  // nullopt: made_ms.
  std::optional<std::int64_t> applies_ms;
};

// The change version `after` makes to `before` at `made_ms`: nullopt when it
// closes no arm and leaves the allocation as it was. design_changes() and the
// simulation of design changes (hub/design_change_simulation.h) both judge
// by it.
std::optional<DesignChange> design_change_between(const shared::Study& before, const shared::Study& after,
                                                 std::int64_t made_ms, std::string made_by, std::string reason);

// Every design change the hub holds, oldest first.
std::vector<DesignChange> design_changes(HubState& hub);

// Minimization balances the arms over the participants allocated under the
// current set of arms: an arm added starts a new segment, as a list design
// continues with one, so that the new arm is not sent nearly every participant
// until it catches up with arms allocated for months, and is compared with
// participants allocated beside it. The segment's allocations are those
// decided from streams the hub issued at or after the change that last added
// an arm (their baselines hold every arm): when it was made (hub clock), 0
// when no change added one.
std::int64_t minimization_segment_start_ms(const std::vector<DesignChange>& changes);

// A randomization under `study_version` (nullopt: before the node's first
// study.config, judged as version 1) recorded at `device_ms` by the node's
// clock, to `arm`: the deviations it raises, one per change it missed.
struct OldDesignDeviation {
  std::string subject;    // "version N"
  std::string summary;    // names no arm
  std::string unblinded;  // the arm, and whether the change closed it
};
std::vector<OldDesignDeviation> old_design_deviations(const std::vector<DesignChange>& changes,
                                                      const std::string& participant, const std::string& node_id,
                                                      std::optional<int> study_version, std::int64_t device_ms,
                                                      const std::string& arm);

// Per change, per node not revoked: the seq of the study.config directive that
// carried the change (or a later version) to it, whether the node has applied
// it (its last pull asked for directives after that seq, or an event it pushed
// carries a cursor at or past it), and the "old_design" deviations it raised.
struct DesignChangeAtNode {
  std::string node_id;
  std::string site_id;
  std::optional<std::uint64_t> directive_seq;  // nullopt: none issued (enrolled after? see applied)
  bool applied = false;
  std::size_t old_design_randomizations = 0;
};
struct DesignChangeReport {
  DesignChange change;
  std::vector<DesignChangeAtNode> nodes;
  std::size_t old_design_randomizations = 0;  // over all nodes
};
std::vector<DesignChangeReport> design_change_report(HubState& hub);
// The arms closed and added only when `unblinded`; a blinded reader gets the
// number closed and whether the allocation changed (never a ratio).
nlohmann::json to_json(const DesignChangeReport& r, bool unblinded);

}  // namespace irt::hub
