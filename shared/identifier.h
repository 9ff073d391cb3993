// The one rule for identifiers (study, site, arm, kit type, shipment ids ...):
// 1 to 64 characters of A-Z a-z 0-9 . _ -, not starting with . _ or -.
// Ids travel in participant numbers, kit lists, events and file names, so
// they are kept to a conservative alphabet. Used by the study loader and by
// the parsers of directive and event payloads alike.
// Thread-safety: a pure function.
#pragma once

#include <cstddef>
#include <string_view>

namespace irt::shared {

inline constexpr std::size_t kMaxIdLength = 64;

bool is_id(std::string_view s);

}  // namespace irt::shared
