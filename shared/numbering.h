// The one place that formats and parses the numbers people read and write:
//   participant numbers   PREFIX-NNN  (the site id, a dash, N zero-padded to
//                         the range's digits), from the node's granted ranges;
//   randomization numbers R<stratum>-<slot> for a list slot (stratum counted
//                         from 1, two digits; slot four digits) and
//                         M<stream>-<decision> for a minimization decision.
// Randomization numbers reveal no arm: a slot's position says nothing about
// its arm without the list.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace irt::shared {

std::string format_participant_number(std::string_view prefix, int digits, std::uint32_t n);

struct ParticipantNumber {
  std::string prefix;  // the site id
  std::uint32_t n = 0;
};
// The parts of PREFIX-NNN; nullopt when there is no dash or NNN is not a number that fits 32 bits.
std::optional<ParticipantNumber> parse_participant_number(std::string_view number);

// stratum_index counts from 0, as in the list; the number shows it from 1.
std::string list_randomization_number(std::uint32_t stratum_index, std::uint32_t slot);
std::string minimization_randomization_number(std::uint64_t stream_id, std::uint64_t decision_sequence);

}  // namespace irt::shared
