// A node's event: one signed, hash-chained entry of its log.
//
// Record layout, version 1 (docs/sync-protocol.md has a worked example):
//   "IRTE" | u8 version=1 | str16 node_id | u64 seq | 32 prev_hash | u64 hlc |
//   i64 device_time_ms | str16 actor | str16 type | u64 directive_seq |
//   blob32 payload | 64 signature
// The body is every byte before the signature. signature = Ed25519(node key,
// body); hash = BLAKE2b-256 over the body under domain "irt/event/v1". Event
// seq starts at 1; event 1's prev_hash is 32 zero bytes; every later event's
// prev_hash is the hash of the event before it. directive_seq is the last hub
// directive the node had applied when it recorded the event, so the hub knows
// what the node knew. The sizes of node_id, actor, type and payload are
// bounded by sync/field_limits.h, on both sides.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>

#include "crypto/hash.h"
#include "crypto/sign.h"
#include "shared/result.h"
#include "sync/field_limits.h"

namespace irt::sync {

using crypto::Bytes;
using crypto::ByteView;

struct EventBody {
  std::string node_id;
  std::uint64_t seq = 0;
  crypto::Hash prev_hash;
  std::uint64_t hlc = 0;
  std::int64_t device_time_ms = 0;
  std::string actor;  // user id, or "system" for the node's own actions
  std::string type;   // "node.enrolled", "site.note", "directive.applied", ...
  std::uint64_t directive_seq = 0;
  Bytes payload;      // UTF-8 JSON; arm-revealing fields are sealed to the hub
};

struct SignedEvent {
  EventBody body;
  Bytes record;  // the exact bytes: body followed by the signature
  crypto::Hash hash;
  crypto::Signature signature;
  ByteView body_bytes() const { return ByteView(record).first(record.size() - crypto::Signature::size()); }
};

SignedEvent sign_event(EventBody body, const crypto::SigningKey& key);

// Refuses a body whose node id, actor, type or payload is larger than the hub
// accepts (sync/field_limits.h), naming the field, its size and the limit.
// The hub applies it to every record it receives, the node before it signs.
shared::Status check_event_limits(const EventBody& body);

// Parses a record's structure and computes its hash; does not check the
// signature (the caller knows which key should have made it). With
// EventLimits::ignored the sizes are not checked, so a node can still verify
// an oversized record an older version of it wrote; the hub always checks them.
enum class EventLimits { enforced, ignored };
shared::Result<SignedEvent> parse_event(ByteView record, EventLimits limits = EventLimits::enforced);
bool verify_event(const SignedEvent& event, const crypto::PublicKey& key);

}  // namespace irt::sync
