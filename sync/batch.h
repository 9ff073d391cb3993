// A batch: several records in one request or response body.
//   "IRTB" | u8 version=1 | u32 count | count x (u32 length | record bytes)
// Push requests carry event records; pull responses carry directive records.
// Bounded by kMaxBatchRecords and kMaxBatchBytes (sync/tuning.h) on both sides.
#pragma once

#include <vector>

#include "crypto/bytes.h"
#include "shared/result.h"
#include "sync/tuning.h"

namespace irt::sync {

crypto::Bytes encode_batch(const std::vector<crypto::Bytes>& records);
shared::Result<std::vector<crypto::Bytes>> decode_batch(crypto::ByteView body);

}  // namespace irt::sync
