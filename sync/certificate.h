// A node certificate: the hub's signed statement that a public key belongs to
// a node of a site, for a period. Made at enrollment; presented with every
// push and pull; checked against the hub's key and its revocation list.
//
// Record layout, version 1:
//   "IRTC" | u8 version=1 | str16 node_id | str16 site_id | str16 kind |
//   32 node public key | u64 serial | i64 valid_from_ms | i64 valid_until_ms |
//   64 hub signature (over everything before it)
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>

#include "crypto/sign.h"
#include "shared/result.h"

namespace irt::sync {

struct NodeCertificate {
  std::string node_id;
  std::string site_id;
  std::string kind;  // "site" or "nurse"
  crypto::PublicKey node_key;
  std::uint64_t serial = 0;
  std::int64_t valid_from_ms = 0;
  std::int64_t valid_until_ms = 0;
  crypto::Bytes record;  // exact signed bytes, filled by sign/parse
};

NodeCertificate sign_certificate(NodeCertificate cert, const crypto::SigningKey& hub_key);
shared::Result<NodeCertificate> parse_certificate(crypto::ByteView record);
// Checks the hub's signature and the validity period at `now_ms`.
shared::Status check_certificate(const NodeCertificate& cert, const crypto::PublicKey& hub_key, std::int64_t now_ms);

}  // namespace irt::sync
