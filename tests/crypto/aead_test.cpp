#include "crypto/aead.h"

#include <doctest/doctest.h>

using namespace irt::crypto;

TEST_CASE("AEAD opens what it sealed with the same associated data") {
  auto key = AeadKey::generate();
  auto sealed = aead_seal(key, as_bytes("participant 101-004"), as_bytes("participants/17/identifier"));
  CHECK(sealed.size() == 19 + kAeadOverhead);
  auto opened = aead_open(key, sealed, as_bytes("participants/17/identifier"));
  REQUIRE(opened);
  CHECK(to_string(*opened) == "participant 101-004");
}

TEST_CASE("AEAD refuses other associated data, so a row moved elsewhere does not open") {
  auto key = AeadKey::generate();
  auto sealed = aead_seal(key, as_bytes("A"), as_bytes("slots/1/arm"));
  CHECK_FALSE(aead_open(key, sealed, as_bytes("slots/2/arm")));
}

TEST_CASE("AEAD refuses a flipped byte anywhere, a wrong key, and a truncated box") {
  auto key = AeadKey::generate();
  auto sealed = aead_seal(key, as_bytes("kit 48213 is arm B"), {});
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    auto bad = sealed;
    bad[i] ^= 0x01;
    CHECK_FALSE(aead_open(key, bad, {}));
  }
  CHECK_FALSE(aead_open(AeadKey::generate(), sealed, {}));
  CHECK_FALSE(aead_open(key, ByteView(sealed).first(kAeadOverhead - 1), {}));
}

TEST_CASE("two seals of the same plaintext differ (random nonces)") {
  auto key = AeadKey::generate();
  CHECK(aead_seal(key, as_bytes("x"), {}) != aead_seal(key, as_bytes("x"), {}));
}
