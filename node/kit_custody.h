// Kits in the node's custody and the dispensing rule: which kits may be handed
// out, in which order.
//
// A kit is dispensable when it is "available" (received in good condition,
// not quarantined, damaged, dispensed, returned or destroyed), of the kit type
// the participant's arm needs, not expired, and not inside the study's
// do-not-dispense window (more than do_not_dispense_days days left before its
// expiry date). Among those, first expiry first out, then the lowest number.
//
// kit_type and lot reveal the allocation and are stored encrypted; number,
// status, expiry, shipment and the opaque participant row id are clear.
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "shared/civil_date.h"
#include "shared/event_payloads.h"

namespace irt::node {

using shared::KitStatus;  // shared/event_payloads.h: the names the store and the events hold

struct KitRecord {
  std::string number;
  std::string shipment;
  KitStatus status = KitStatus::expected;  // expected: announced by a shipment, not yet received
  std::string expiry;             // YYYY-MM-DD
  std::int64_t participant = 0;   // participant row id once dispensed
  std::string kit_type;           // reveals the allocation
  std::string lot;                // may reveal the allocation
  std::string visit;              // visit at which it was dispensed
  int units_returned = -1;        // -1: not returned
  std::string note;               // quarantine, damage or destruction reason
  std::string relabel;            // the lot was relabelled at the hub: print this expiry on the kit
  std::string location;           // storage location (a fridge), set at receipt or by a move; "" not said
};

// True when `kit` may be dispensed today (see the header comment).
bool dispensable(const KitRecord& kit, shared::Days today, int do_not_dispense_days);

struct KitPick {
  std::vector<std::string> kits;  // chosen, first expiry first out
  std::size_t usable = 0;         // dispensable kits of the type in custody
};

// Chooses `count` kits of `kit_type`, skipping `excluded` numbers; fewer than
// `count` in `kits` when custody cannot cover it (the caller reports the shortfall).
KitPick pick_kits(const std::map<std::string, KitRecord>& custody, const std::string& kit_type, int count,
                  shared::Days today, int do_not_dispense_days, const std::vector<std::string>& excluded = {});

}  // namespace irt::node
