// Hashing: BLAKE2b with domain separation for the project's own structures,
// raw BLAKE2b for known-answer tests, and SHA-256 where a standard demands it
// (RFC 6962 Merkle trees, certificate fingerprints).
//
// Domain separation: hash_domain(d, m) = BLAKE2b-256(key = none,
// input = u8(len(d)) || d || m). A domain is a short fixed ASCII label such as
// "irt/event/v1"; two structures with different labels never collide by
// construction. Thread-safety: stateless functions; Blake2b objects are not shared.
#pragma once

#include <string_view>

#include "crypto/bytes.h"

namespace irt::crypto {

using Hash = Fixed<32>;

Hash hash_domain(std::string_view domain, ByteView message);
Bytes blake2b(ByteView message, std::size_t out_len, ByteView key = {});  // 1..64 bytes
Hash sha256(ByteView message);

// Incremental domain-separated BLAKE2b-256, for hashing several parts.
class Blake2b {
 public:
  explicit Blake2b(std::string_view domain);
  Blake2b& update(ByteView part);
  Hash finish();

 private:
  alignas(64) unsigned char state_[384];
};

// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  Sha256& update(ByteView part);
  Hash finish();

 private:
  alignas(16) unsigned char state_[128];
};

}  // namespace irt::crypto
