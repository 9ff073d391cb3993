#include "sync/batch.h"

#include "sync/wire.h"

namespace irt::sync {

namespace {
constexpr std::uint8_t kBatchMagic[4] = {'I', 'R', 'T', 'B'};
}

crypto::Bytes encode_batch(const std::vector<crypto::Bytes>& records) {
  Writer w;
  w.raw(kBatchMagic).u8(1).u32(static_cast<std::uint32_t>(records.size()));
  for (const auto& r : records) w.blob32(r);
  return w.take();
}

shared::Result<std::vector<crypto::Bytes>> decode_batch(crypto::ByteView body) {
  if (body.size() > kMaxBatchBytes)
    return shared::make_error(shared::Errc::invalid_input, "batch larger than 8 MiB; send smaller batches");
  Reader r(body);
  auto magic = r.raw(4);
  if (!r.ok() || !std::equal(magic.begin(), magic.end(), kBatchMagic) || r.u8() != 1)
    return shared::make_error(shared::Errc::invalid_input, "body is not a version 1 batch");
  std::uint32_t count = r.u32();
  if (count > kMaxBatchRecords)
    return shared::make_error(shared::Errc::invalid_input, "batch holds more than 2000 records; send smaller batches");
  std::vector<crypto::Bytes> out;
  out.reserve(count);
  for (std::uint32_t i = 0; i < count && r.ok(); ++i) {
    auto rec = r.blob32(kMaxBatchBytes);
    out.emplace_back(rec.begin(), rec.end());
  }
  if (!r.ok() || !r.at_end())
    return shared::make_error(shared::Errc::invalid_input, "batch is truncated or has trailing bytes; resend it");
  return out;
}

}  // namespace irt::sync
