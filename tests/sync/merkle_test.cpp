#include "sync/merkle.h"

#include <doctest/doctest.h>

using namespace irt::sync;
using irt::crypto::from_hex;

namespace {

// The eight-entry test tree used by RFC 6962 implementations
// (certificate-transparency's merkle tree test data).
const char* const kLeaves[] = {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                               "606162636465666768696a6b6c6d6e6f"};
const char* const kRoots[] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

std::vector<Hash> leaf_hashes(std::size_t n) {
  std::vector<Hash> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(merkle_leaf_hash(*from_hex(kLeaves[i])));
  return out;
}

}  // namespace

TEST_CASE("the root of each prefix of the RFC 6962 test tree matches the reference") {
  auto leaves = leaf_hashes(8);
  for (std::size_t n = 1; n <= 8; ++n) {
    CAPTURE(n);
    CHECK(merkle_root(std::span(leaves).first(n)).hex() == kRoots[n - 1]);
  }
  CHECK(merkle_root({}).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("the compact range gives the same root as the full tree at every size") {
  auto leaves = leaf_hashes(8);
  CompactRange range;
  for (std::size_t n = 1; n <= 8; ++n) {
    range.append(leaves[n - 1]);
    CHECK(range.root().hex() == kRoots[n - 1]);
  }
  auto again = CompactRange::decode(range.encode());
  REQUIRE(again.ok());
  CHECK(again->root() == range.root());
  CHECK(again->size() == 8);
}

TEST_CASE("a compact range that is truncated or too long decodes to an integrity error naming its size") {
  auto leaves = leaf_hashes(7);  // size 7: three subtree roots
  CompactRange range;
  for (const auto& l : leaves) range.append(l);
  auto bytes = range.encode();
  REQUIRE(bytes.size() == 8 + 3 * 32);
  irt::crypto::Bytes shorter(bytes.begin(), bytes.begin() + 8 + 2 * 32 + 31);
  irt::crypto::Bytes longer = bytes;
  longer.push_back(0);
  for (const auto& bad : {shorter, longer, irt::crypto::Bytes{1, 2, 3}}) {
    auto r = CompactRange::decode(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == irt::shared::Errc::integrity);
    CHECK(r.error().message == "the stored Merkle frontier is malformed (" + std::to_string(bad.size()) +
                                   " bytes, not the 8-byte size and one 32-byte hash per perfect subtree)");
  }
}

TEST_CASE("every inclusion proof verifies, and fails for another leaf, index or root") {
  std::vector<Hash> leaves;
  for (int i = 0; i < 37; ++i) {
    std::uint8_t b = static_cast<std::uint8_t>(i);
    leaves.push_back(merkle_leaf_hash({&b, 1}));
  }
  for (std::size_t size = 1; size <= leaves.size(); ++size) {
    auto tree = std::span(leaves).first(size);
    Hash root = merkle_root(tree);
    for (std::size_t i = 0; i < size; ++i) {
      auto proof = inclusion_proof(tree, i);
      CHECK(verify_inclusion(leaves[i], i, size, proof, root));
      if (size > 1) {
        CHECK_FALSE(verify_inclusion(leaves[(i + 1) % size], i, size, proof, root));
        CHECK_FALSE(verify_inclusion(leaves[i], (i + 1) % size, size, proof, root));
      }
      Hash other = root;
      other.bytes[0] ^= 1;
      CHECK_FALSE(verify_inclusion(leaves[i], i, size, proof, other));
    }
  }
}

TEST_CASE("an inclusion proof from the RFC 6962 test tree has the reference length") {
  auto leaves = leaf_hashes(8);
  CHECK(inclusion_proof(leaves, 0).size() == 3);
  CHECK(inclusion_proof(std::span(leaves).first(5), 4).size() == 1);
  CHECK(inclusion_proof(std::span(leaves).first(7), 6).size() == 2);
}
