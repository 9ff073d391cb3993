// A push or pull body as the hub and the node read it (sync/batch.h): it
// refuses cleanly, or its records encode back to the same body.
#include "sync/batch.h"
#include "tests/fuzz/fuzz.h"

using namespace irt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  crypto::ByteView body(data, size);
  auto records = sync::decode_batch(body);
  if (!records) return fuzz::check_clean_error(records.error()), 0;
  FUZZ_CHECK(records->size() <= sync::kMaxBatchRecords, std::to_string(records->size()) + " records");
  auto encoded = sync::encode_batch(*records);
  FUZZ_CHECK(std::equal(encoded.begin(), encoded.end(), body.begin(), body.end()), "the batch encodes to other bytes");
  return 0;
}
