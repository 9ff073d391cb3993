// The hub's central ledger is a Merkle tree hashed as RFC 6962 / RFC 9162
// specify (SHA-256; leaf = H(0x00 || entry), node = H(0x01 || left || right)),
// so the RFC's test vectors and any RFC 9162 verifier apply to it.
//
// CompactRange keeps only the roots of the perfect subtrees of the current
// tree (at most 64 hashes), so an append and the root cost O(log n). Inclusion
// proofs are computed from the stored leaf hashes. Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "crypto/hash.h"
#include "shared/result.h"

namespace irt::sync {

using crypto::Hash;

Hash merkle_leaf_hash(crypto::ByteView entry);
Hash merkle_node_hash(const Hash& left, const Hash& right);
Hash merkle_root(std::span<const Hash> leaf_hashes);  // MTH; of no leaves: SHA-256("")

std::vector<Hash> inclusion_proof(std::span<const Hash> leaf_hashes, std::uint64_t index);
bool verify_inclusion(const Hash& leaf_hash, std::uint64_t index, std::uint64_t tree_size,
                      std::span<const Hash> proof, const Hash& root);

class CompactRange {
 public:
  void append(const Hash& leaf_hash);
  Hash root() const;
  std::uint64_t size() const { return size_; }
  // Serialised as u64 size followed by the subtree roots, for storage.
  crypto::Bytes encode() const;
  // integrity when the bytes are not an encoded range (a damaged database).
  static shared::Result<CompactRange> decode(crypto::ByteView bytes);

 private:
  std::uint64_t size_ = 0;
  std::vector<Hash> roots_;  // left to right, largest subtree first
};

}  // namespace irt::sync
