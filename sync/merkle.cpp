#include "sync/merkle.h"

#include <bit>
#include <stdexcept>

#include "sync/wire.h"

namespace irt::sync {

Hash merkle_leaf_hash(crypto::ByteView entry) {
  const std::uint8_t prefix = 0x00;
  return crypto::Sha256().update({&prefix, 1}).update(entry).finish();
}

Hash merkle_node_hash(const Hash& left, const Hash& right) {
  const std::uint8_t prefix = 0x01;
  return crypto::Sha256().update({&prefix, 1}).update(left.view()).update(right.view()).finish();
}

namespace {
// The largest power of two strictly less than n (n >= 2).
std::size_t split_point(std::size_t n) { return std::bit_floor(n - 1); }
}  // namespace

Hash merkle_root(std::span<const Hash> leaves) {
  if (leaves.empty()) return crypto::sha256({});
  if (leaves.size() == 1) return leaves[0];
  std::size_t k = split_point(leaves.size());
  return merkle_node_hash(merkle_root(leaves.first(k)), merkle_root(leaves.subspan(k)));
}

std::vector<Hash> inclusion_proof(std::span<const Hash> leaves, std::uint64_t index) {
  if (index >= leaves.size()) throw std::out_of_range("inclusion proof for a leaf past the tree");
  std::vector<Hash> path;
  // RFC 6962 section 2.1.1, PATH(m, D[n]), built bottom-up.
  std::vector<std::pair<std::span<const Hash>, std::size_t>> frames;
  std::span<const Hash> d = leaves;
  std::size_t m = index;
  while (d.size() > 1) {
    std::size_t k = split_point(d.size());
    if (m < k) {
      frames.push_back({d.subspan(k), 0});
      d = d.first(k);
    } else {
      frames.push_back({d.first(k), 0});
      d = d.subspan(k);
      m -= k;
    }
  }
  for (auto it = frames.rbegin(); it != frames.rend(); ++it) path.push_back(merkle_root(it->first));
  return path;
}

bool verify_inclusion(const Hash& leaf_hash, std::uint64_t index, std::uint64_t tree_size,
                      std::span<const Hash> proof, const Hash& root) {
  // RFC 9162 section 2.1.3.2.
  if (index >= tree_size) return false;
  std::uint64_t fn = index, sn = tree_size - 1;
  Hash r = leaf_hash;
  for (const auto& p : proof) {
    if (sn == 0) return false;
    if ((fn & 1) || fn == sn) {
      r = merkle_node_hash(p, r);
      if (!(fn & 1)) {
        while (fn != 0 && !(fn & 1)) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = merkle_node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

void CompactRange::append(const Hash& leaf_hash) {
  roots_.push_back(leaf_hash);
  // Merge equal-sized perfect subtrees: the carries of a binary increment.
  for (std::uint64_t s = size_; s & 1; s >>= 1) {
    Hash right = roots_.back();
    roots_.pop_back();
    roots_.back() = merkle_node_hash(roots_.back(), right);
  }
  ++size_;
}

Hash CompactRange::root() const {
  if (roots_.empty()) return crypto::sha256({});
  Hash h = roots_.back();
  for (auto it = roots_.rbegin() + 1; it != roots_.rend(); ++it) h = merkle_node_hash(*it, h);
  return h;
}

crypto::Bytes CompactRange::encode() const {
  Writer w;
  w.u64(size_);
  for (const auto& h : roots_) w.raw(h.view());
  return w.take();
}

shared::Result<CompactRange> CompactRange::decode(crypto::ByteView bytes) {
  Reader r(bytes);
  CompactRange c;
  c.size_ = r.u64();
  for (int i = 0; r.ok() && i < std::popcount(c.size_); ++i) c.roots_.push_back(r.fixed<Hash>());
  if (!r.ok() || !r.at_end())
    return shared::make_error(shared::Errc::integrity,
                              "the stored Merkle frontier is malformed (" + std::to_string(bytes.size()) +
                                  " bytes, not the 8-byte size and one 32-byte hash per perfect subtree)");
  return c;
}

}  // namespace irt::sync
