// What changed between two versions of a study configuration, as lines a study
// manager reads when reviewing an amendment ("sites: added 103 (Hôpital Nord,
// FR)", "visits[V3].window_after: 3 -> 5"). `irt-hub diff-study` prints them;
// the hub records them with an amendment in the audit trail.
//
// Lists are compared by id, not by position, so reordering entries is not a
// change. The order of the lines is deterministic: the order of Study's
// members, then, within a list, the old document's order for removed and
// changed entries followed by the new document's order for added ones.
// The lines show arm names and kit contents: they are for unblinded readers.
// Thread-safety: a pure function of its arguments.
#pragma once

#include <string>
#include <vector>

#include "shared/study.h"

namespace irt::shared {

std::vector<std::string> diff_studies(const Study& old, const Study& neu);

}  // namespace irt::shared
