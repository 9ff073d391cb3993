#include "crypto/hash.h"

#include <doctest/doctest.h>

#include <numeric>

using namespace irt::crypto;

TEST_CASE("BLAKE2b-512 matches RFC 7693 appendix A and the reference empty-input digest") {
  CHECK(to_hex(blake2b(as_bytes("abc"), 64)) ==
        "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925a"
        "b92386edd4009923");
  CHECK(to_hex(blake2b({}, 64)) ==
        "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419d25e1031afee585313896444934eb04b903a685b1448b755"
        "d56f701afe9be2ce");
}

TEST_CASE("keyed BLAKE2b-512 matches the reference implementation's known-answer vectors") {
  // blake2b-kat.txt: key = 00 01 .. 3f, input = 00 01 .. (n-1).
  Bytes key(64);
  std::iota(key.begin(), key.end(), std::uint8_t{0});
  CHECK(to_hex(blake2b({}, 64, key)) ==
        "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df"
        "7aefcbc13fc51568");
  Bytes one = {0x00};
  CHECK(to_hex(blake2b(one, 64, key)) ==
        "961f6dd1e4dd30f63901690c512e78e4b45e4742ed197c3c5e45c549fd25f2e4187b0bc9fe30492b16b0d0bc4ef9b0f34c7003fac09a5ef1"
        "532e69430234cebd");
}

TEST_CASE("SHA-256 matches FIPS 180-2 for 'abc'") {
  CHECK(sha256(as_bytes("abc")).hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("domain separation: the same bytes under two domains hash differently") {
  auto m = as_bytes("payload");
  CHECK(hash_domain("irt/event/v1", m) != hash_domain("irt/directive/v1", m));
  CHECK(hash_domain("irt/event/v1", m) == hash_domain("irt/event/v1", m));
}

TEST_CASE("incremental hashing equals one-shot hashing") {
  CHECK(Blake2b("d").update(as_bytes("ab")).update(as_bytes("c")).finish() == hash_domain("d", as_bytes("abc")));
  CHECK(Sha256().update(as_bytes("a")).update(as_bytes("bc")).finish() == sha256(as_bytes("abc")));
}
