#include "shared/numbering.h"

#include <charconv>
#include <cstdio>

namespace irt::shared {

std::string format_participant_number(std::string_view prefix, int digits, std::uint32_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*u", digits, n);
  return std::string(prefix) + "-" + buf;
}

std::optional<ParticipantNumber> parse_participant_number(std::string_view number) {
  auto dash = number.rfind('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 >= number.size()) return std::nullopt;
  auto digits = number.substr(dash + 1);
  for (char c : digits)
    if (c < '0' || c > '9') return std::nullopt;
  std::uint32_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return ParticipantNumber{std::string(number.substr(0, dash)), n};
}

std::string list_randomization_number(std::uint32_t stratum_index, std::uint32_t slot) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "R%02u-%04u", stratum_index + 1, slot);
  return buf;
}

std::string minimization_randomization_number(std::uint64_t stream_id, std::uint64_t decision_sequence) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "M%llu-%04llu", static_cast<unsigned long long>(stream_id),
                static_cast<unsigned long long>(decision_sequence));
  return buf;
}

}  // namespace irt::shared
