// irt-hub verify's second half, after the ledger's own check
// (sync::Ledger::verify_all): the hub's audit trail against its signed chain,
// then each table the hub derives, rebuilt from what the hub signs (the
// ledger's node events, the audit trail) and compared with what is stored.
// Each check lives beside the code that writes its table; this is the one
// place that calls them all (docs/hub.md, "What verify checks").
//
// Blinding: no problem names an arm or a kit's type (the operator running
// verify may be blinded); an arm that differs is said to differ.
// Thread-safety: as HubState.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hub/hub_state.h"

namespace irt::hub {

struct TablesReport {
  std::uint64_t audit_entries = 0;
  std::vector<std::string> problems;  // one line each, naming the table, the key and what differs
};

TablesReport verify_tables(HubState& hub);

}  // namespace irt::hub
