// A hub directive: a decision sent to one node (a grant, a revocation, a study
// configuration version, the user roster, a release of quarantined kits),
// signed by the hub and sequenced per node. The node applies each exactly once,
// in order, in the transaction that records its directive cursor.
//
// Record layout, version 1:
//   "IRTD" | u8 version=1 | str16 node_id | u64 seq | u64 hlc | i64 issued_ms |
//   str16 type | blob32 payload | 64 signature
// signature = Ed25519(hub key, body). Directive seq starts at 1 per node.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>

#include "crypto/hash.h"
#include "crypto/sign.h"
#include "shared/result.h"

namespace irt::sync {

using crypto::Bytes;
using crypto::ByteView;

struct DirectiveBody {
  std::string node_id;
  std::uint64_t seq = 0;
  std::uint64_t hlc = 0;
  std::int64_t issued_ms = 0;
  std::string type;  // "study.config", "roster", "grant.slots", "shipment", "revoke", ...
  Bytes payload;     // UTF-8 JSON
};

struct SignedDirective {
  DirectiveBody body;
  Bytes record;
  crypto::Signature signature;
  ByteView body_bytes() const { return ByteView(record).first(record.size() - crypto::Signature::size()); }
};

SignedDirective sign_directive(DirectiveBody body, const crypto::SigningKey& hub_key);
shared::Result<SignedDirective> parse_directive(ByteView record);
bool verify_directive(const SignedDirective& d, const crypto::PublicKey& hub_key);

}  // namespace irt::sync
