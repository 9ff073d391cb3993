#include "sync/event.h"

#include "sync/wire.h"

namespace irt::sync {

namespace {
constexpr std::uint8_t kEventMagic[4] = {'I', 'R', 'T', 'E'};
constexpr std::uint8_t kEventVersion = 1;
constexpr const char* kDomain = "irt/event/v1";

Bytes encode_body(const EventBody& b) {
  Writer w;
  w.raw(kEventMagic).u8(kEventVersion).str16(b.node_id).u64(b.seq).raw(b.prev_hash.view()).u64(b.hlc).i64(b.device_time_ms);
  w.str16(b.actor).str16(b.type).u64(b.directive_seq).blob32(b.payload);
  return w.take();
}
}  // namespace

SignedEvent sign_event(EventBody body, const crypto::SigningKey& key) {
  SignedEvent e;
  e.record = encode_body(body);
  e.hash = crypto::hash_domain(kDomain, e.record);
  e.signature = key.sign(e.record);
  e.record.insert(e.record.end(), e.signature.bytes.begin(), e.signature.bytes.end());
  e.body = std::move(body);
  return e;
}

shared::Status check_event_limits(const EventBody& b) {
  auto over = [](const char* field, std::size_t size, std::size_t limit) {
    return shared::make_error(shared::Errc::invalid_input,
                              std::string("the event's ") + field + " is " + std::to_string(size) +
                                  " bytes, over the limit of " + std::to_string(limit) + " bytes that the hub accepts");
  };
  if (b.node_id.size() > kMaxIdLength) return over("node id", b.node_id.size(), kMaxIdLength);
  if (b.actor.size() > kMaxActorLength) return over("actor", b.actor.size(), kMaxActorLength);
  if (b.type.size() > kMaxIdLength) return over("type", b.type.size(), kMaxIdLength);
  if (b.payload.size() > kMaxPayload) return over("payload", b.payload.size(), kMaxPayload);
  return {};
}

shared::Result<SignedEvent> parse_event(ByteView record, EventLimits limits) {
  Reader r(record);
  SignedEvent e;
  auto magic = r.raw(4);
  if (!r.ok() || !std::equal(magic.begin(), magic.end(), kEventMagic))
    return shared::make_error(shared::Errc::invalid_input, "not an event record (bad magic)");
  if (r.u8() != kEventVersion)
    return shared::make_error(shared::Errc::invalid_input,
                              "event record version is not 1; upgrade the hub before syncing this node");
  // Sizes are read in full and checked afterwards, so an oversized field is
  // named as such rather than reported as a truncated record.
  constexpr std::size_t kAny16 = 0xFFFF;
  auto& b = e.body;
  b.node_id = r.str16(kAny16);
  b.seq = r.u64();
  b.prev_hash = r.fixed<crypto::Hash>();
  b.hlc = r.u64();
  b.device_time_ms = r.i64();
  b.actor = r.str16(kAny16);
  b.type = r.str16(kAny16);
  b.directive_seq = r.u64();
  auto payload = r.blob32(record.size());
  b.payload.assign(payload.begin(), payload.end());
  std::size_t body_end = r.position();
  e.signature = r.fixed<crypto::Signature>();
  if (!r.ok() || !r.at_end())
    return shared::make_error(shared::Errc::invalid_input, "event record is truncated or has trailing bytes");
  if (b.seq == 0) return shared::make_error(shared::Errc::invalid_input, "event sequence numbers start at 1");
  if (limits == EventLimits::enforced)
    if (auto st = check_event_limits(b); !st) return st.error();
  e.record.assign(record.begin(), record.end());
  e.hash = crypto::hash_domain(kDomain, record.first(body_end));
  return e;
}

bool verify_event(const SignedEvent& event, const crypto::PublicKey& key) {
  return crypto::verify(key, event.body_bytes(), event.signature);
}

}  // namespace irt::sync
