#include "crypto/bytes.h"

#include <doctest/doctest.h>
#include <sodium.h>

#include "crypto/deterministic_stream.h"

using namespace irt::crypto;

TEST_CASE("hex and base64 round-trip and refuse malformed input") {
  Bytes b = {0x00, 0xff, 0x10, 0x7f};
  CHECK(to_hex(b) == "00ff107f");
  CHECK(*from_hex("00ff107f") == b);
  CHECK_FALSE(from_hex("0"));
  CHECK_FALSE(from_hex("zz"));
  CHECK(*from_base64(to_base64(b)) == b);
  CHECK_FALSE(from_base64("not base64!"));
}

TEST_CASE("secret bytes move without copying and start zeroed") {
  SecretBytes s(16);
  CHECK(s.view()[0] == 0);
  s.data()[0] = 7;
  SecretBytes t = std::move(s);
  CHECK(t.size() == 16);
  CHECK(t.data()[0] == 7);
  CHECK(s.empty());  // NOLINT: moved-from state is specified as empty
}

TEST_CASE("the deterministic stream equals libsodium's deterministic generator, read in any pieces") {
  Bytes seed(32);
  for (std::size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<std::uint8_t>(i * 7);
  Bytes expected(10000);
  randombytes_buf_deterministic(expected.data(), expected.size(), seed.data());

  DeterministicStream stream(seed);
  Bytes got(expected.size());
  std::size_t at = 0;
  for (std::size_t piece : {1u, 63u, 64u, 4000u, 4097u}) {
    stream.fill(std::span(got.data() + at, piece));
    at += piece;
  }
  stream.fill(std::span(got.data() + at, got.size() - at));
  CHECK(got == expected);
  CHECK(stream.position() == expected.size());
}
