#include "hub/list_hash.h"

namespace irt::hub {

crypto::Hash randomization_list_hash(std::string_view canonical_csv) {
  return crypto::hash_domain(kListHashDomain, crypto::as_bytes(canonical_csv));
}

}  // namespace irt::hub
