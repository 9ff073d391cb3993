// Event payloads as the hub reads them (shared/event_payloads.h): the first
// byte picks the event's parse_*, the rest is its JSON payload. Each refuses
// cleanly or gives a value that round-trips through to_json, what the node writes.
#include "shared/event_payloads.h"
#include "tests/fuzz/fuzz.h"

using namespace irt;
using namespace irt::shared;

namespace {

template <class T, Result<T> (*Parse)(std::string_view)>
void round_trip_event_payload(std::string_view text) {
  fuzz::check_json_round_trip(Parse, text);
}

void check_event_study_version(std::string_view text) {
  auto v = parse_event_study_version(text);
  if (!v) fuzz::check_clean_error(v.error());
}

using EventPayloadCheck = void (*)(std::string_view);
const EventPayloadCheck kEventPayloadChecks[] = {
    &check_event_study_version,
    &round_trip_event_payload<NodeEnrolled, parse_node_enrolled>,
    &round_trip_event_payload<DirectiveApplied, parse_directive_applied>,
    &round_trip_event_payload<SiteNote, parse_site_note>,
    &round_trip_event_payload<Screened, parse_screened>,
    &round_trip_event_payload<Randomized, parse_randomized>,
    &round_trip_event_payload<RandomizedSealed, parse_randomized_sealed>,
    &round_trip_event_payload<OfflineDecisionRecord, parse_decision_record>,
    &round_trip_event_payload<Dispensed, parse_dispensed>,
    &round_trip_event_payload<KitReplaced, parse_kit_replaced>,
    &round_trip_event_payload<KitTypesSealed, parse_kit_types_sealed>,
    &round_trip_event_payload<Withdrawn, parse_withdrawn>,
    &round_trip_event_payload<Completed, parse_completed>,
    &round_trip_event_payload<TransferRequested, parse_transfer_requested>,
    &round_trip_event_payload<Unblinded, parse_unblinded>,
    &round_trip_event_payload<ArmSealed, parse_arm_sealed>,
    &round_trip_event_payload<ShipmentReceived, parse_shipment_received>,
    &round_trip_event_payload<KitQuarantined, parse_kit_quarantined>,
    &round_trip_event_payload<KitReturned, parse_kit_returned>,
    &round_trip_event_payload<KitDestroyed, parse_kit_destroyed>,
    &round_trip_event_payload<SupplyShortage, parse_supply_shortage>,
    &round_trip_event_payload<ShortageSealed, parse_shortage_sealed>,
    &round_trip_event_payload<VisitRecorded, parse_visit_recorded>,
    &round_trip_event_payload<TemperatureExcursion, parse_temperature_excursion>,
    &round_trip_event_payload<KitsStored, parse_kits_stored>,
    &round_trip_event_payload<KitHandoverRequested, parse_kit_handover_requested>,
    &round_trip_event_payload<KitRelabelled, parse_kit_relabelled>,
    &round_trip_event_payload<KitsReturnShipped, parse_kits_return_shipped>,
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  kEventPayloadChecks[data[0] % std::size(kEventPayloadChecks)](fuzz::input_text(data + 1, size - 1));
  return 0;
}
