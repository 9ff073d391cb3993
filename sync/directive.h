// A hub directive: a decision sent to one node (a grant, a revocation, a study
// configuration version, the user roster, a release of quarantined kits),
// signed by the hub and sequenced per node. The node applies each exactly once,
// in order, in the transaction that records its directive cursor.
//
// Record layout, version 1:
//   "IRTD" | u8 version=1 | str16 node_id | u64 seq | u64 hlc | i64 issued_ms |
//   str16 type | blob32 payload | 64 signature
// signature = Ed25519(hub key, body). Directive seq starts at 1 per node.
//
// Sealed fields: the payload's fields that reveal an allocation or a secret
// (sealed_field_names: slot arms, kit types and lots, the minimization seed,
// capped arms, the study document, password hashes) leave the JSON and travel
// in one field, "sealed": base64 of crypto_box_seal to the receiving node's
// identity key as X25519 (crypto::box_key_of), holding a JSON object that
// maps each removed field's JSON pointer to its value. The hub signs the
// payload with the sealed bytes in it, so neither the wire nor the hub's
// outbox table shows those fields and nobody can swap them; the node puts
// them back (open_sealed_fields) before it reads the payload.
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/hash.h"
#include "crypto/seal.h"
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

// The field names sealed in a directive of `type`, wherever they occur in
// its payload; empty for a type with nothing to hide.
const std::vector<std::string_view>& sealed_field_names(std::string_view type);
// The payload with the type's sealed fields moved into "sealed"; the payload
// unchanged when it holds none of them. Throws std::invalid_argument for a
// payload that is not a JSON object, or that has fields to seal and no key
// (a bug at the hub).
std::string seal_fields(std::string_view type, std::string_view payload_json,
                        const std::optional<crypto::BoxPublicKey>& node_key);
// The payload with its "sealed" fields put back; the payload unchanged when
// it has none. An error (integrity) when they do not open with this node's
// key: damaged, or sealed to another node.
shared::Result<std::string> open_sealed_fields(std::string_view payload_json, const crypto::BoxKeyPair& node_key);

}  // namespace irt::sync
