#include "crypto/sign.h"

#include <stdexcept>

#include <doctest/doctest.h>

using namespace irt::crypto;

namespace {

struct Vector {
  const char* name;
  const char* secret;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032, section 7.1 (Ed25519): TEST 1, TEST 2, TEST 3 and TEST SHA(abc).
const Vector kRfc8032[] = {
    {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24"
     "655141438e7a100b"},
    {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb0"
     "0d291612bb0c00"},
    {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc0"
     "27beceea1ec40a"},
    {"TEST SHA(abc)", "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a"
     "9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9"
     "bef1177331a704"},
};

}  // namespace

TEST_CASE("RFC 8032 section 7.1 vectors: public key, signature and verification") {
  for (const auto& v : kRfc8032) {
    CAPTURE(v.name);
    auto key = SigningKey::from_seed(*from_hex(v.secret));
    CHECK(key.public_key().hex() == v.public_key);
    Bytes message = *from_hex(v.message);
    Signature sig = key.sign(message);
    CHECK(sig.hex() == v.signature);
    CHECK(verify(*PublicKey::from_hex(v.public_key), message, *Signature::from_hex(v.signature)));
  }
}

TEST_CASE("a signature does not verify after one bit of the message, key or signature changes") {
  auto key = SigningKey::generate();
  Bytes message = {1, 2, 3, 4, 5};
  Signature sig = key.sign(message);
  REQUIRE(verify(key.public_key(), message, sig));

  Bytes altered = message;
  altered[2] ^= 0x01;
  CHECK_FALSE(verify(key.public_key(), altered, sig));

  Signature bad_sig = sig;
  bad_sig.bytes[10] ^= 0x80;
  CHECK_FALSE(verify(key.public_key(), message, bad_sig));

  CHECK_FALSE(verify(SigningKey::generate().public_key(), message, sig));
}

TEST_CASE("a key rebuilt from its seed signs identically") {
  auto key = SigningKey::generate();
  auto again = SigningKey::from_seed(key.seed().view());
  CHECK(again.public_key() == key.public_key());
  Bytes message = {9, 9, 9};
  CHECK(again.sign(message) == key.sign(message));  // Ed25519 is deterministic
}

TEST_CASE("a seed of the wrong length is refused") {
  Bytes short_seed(31, 0);
  CHECK_THROWS_AS(SigningKey::from_seed(short_seed), std::invalid_argument);
}
