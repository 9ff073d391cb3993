// A batch: several records in one request or response body.
//   "IRTB" | u8 version=1 | u32 count | count x (u32 length | record bytes)
// Push requests carry event records; pull responses carry directive records.
// Bounded by kMaxBatchRecords and kMaxBatchBytes on both sides.
#pragma once

#include <vector>

#include "crypto/bytes.h"
#include "shared/result.h"

namespace irt::sync {

inline constexpr std::size_t kMaxBatchRecords = 2000;
inline constexpr std::size_t kMaxBatchBytes = 8 << 20;

crypto::Bytes encode_batch(const std::vector<crypto::Bytes>& records);
shared::Result<std::vector<crypto::Bytes>> decode_batch(crypto::ByteView body);

}  // namespace irt::sync
