// The identity of a randomization list: BLAKE2b-256 under the domain
// "irt/randlist/v1" over the list's canonical CSV bytes
// (shared/block_list.h encode_list_csv). The hub records it with the seed and
// study version when it generates a list, and `randlist verify` prints it.
// Thread-safety: a pure function.
#pragma once

#include <string_view>

#include "crypto/hash.h"

namespace irt::hub {

inline constexpr std::string_view kListHashDomain = "irt/randlist/v1";

crypto::Hash randomization_list_hash(std::string_view canonical_csv);

}  // namespace irt::hub
