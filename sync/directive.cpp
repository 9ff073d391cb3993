#include "sync/directive.h"

#include "sync/event.h"
#include "sync/wire.h"

namespace irt::sync {

namespace {
constexpr std::uint8_t kDirectiveMagic[4] = {'I', 'R', 'T', 'D'};
constexpr std::uint8_t kDirectiveVersion = 1;

Bytes encode_body(const DirectiveBody& b) {
  Writer w;
  w.raw(kDirectiveMagic).u8(kDirectiveVersion).str16(b.node_id).u64(b.seq).u64(b.hlc).i64(b.issued_ms).str16(b.type).blob32(b.payload);
  return w.take();
}
}  // namespace

SignedDirective sign_directive(DirectiveBody body, const crypto::SigningKey& hub_key) {
  SignedDirective d;
  d.record = encode_body(body);
  d.signature = hub_key.sign(d.record);
  d.record.insert(d.record.end(), d.signature.bytes.begin(), d.signature.bytes.end());
  d.body = std::move(body);
  return d;
}

shared::Result<SignedDirective> parse_directive(ByteView record) {
  Reader r(record);
  SignedDirective d;
  auto magic = r.raw(4);
  if (!r.ok() || !std::equal(magic.begin(), magic.end(), kDirectiveMagic))
    return shared::make_error(shared::Errc::invalid_input, "not a directive record (bad magic)");
  if (r.u8() != kDirectiveVersion)
    return shared::make_error(shared::Errc::invalid_input,
                              "directive record version is not 1; upgrade this node to apply it");
  auto& b = d.body;
  b.node_id = r.str16(kMaxIdLength);
  b.seq = r.u64();
  b.hlc = r.u64();
  b.issued_ms = r.i64();
  b.type = r.str16(kMaxIdLength);
  auto payload = r.blob32(kMaxPayload * 16);
  b.payload.assign(payload.begin(), payload.end());
  d.signature = r.fixed<crypto::Signature>();
  if (!r.ok() || !r.at_end())
    return shared::make_error(shared::Errc::invalid_input, "directive record is truncated or has trailing bytes");
  if (b.seq == 0) return shared::make_error(shared::Errc::invalid_input, "directive sequence numbers start at 1");
  d.record.assign(record.begin(), record.end());
  return d;
}

bool verify_directive(const SignedDirective& d, const crypto::PublicKey& hub_key) {
  return crypto::verify(hub_key, d.body_bytes(), d.signature);
}

}  // namespace irt::sync
