#include "crypto/bytes.h"

#include <doctest/doctest.h>
#include <sodium.h>

#include <algorithm>
#include <stdexcept>

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

TEST_CASE("the deterministic stream seeks to any position, forwards and backwards, and reads what it would have") {
  Bytes seed(32, 0x5a);
  Bytes expected(20000);
  randombytes_buf_deterministic(expected.data(), expected.size(), seed.data());
  DeterministicStream stream(seed);
  for (std::uint64_t at : {std::uint64_t{12345}, std::uint64_t{0}, std::uint64_t{4095}, std::uint64_t{4096},
                           std::uint64_t{63}, std::uint64_t{19000}}) {
    stream.seek(at);
    CHECK(stream.position() == at);
    Bytes got(1000);
    stream.fill(got);
    CHECK(std::equal(got.begin(), got.end(), expected.begin() + static_cast<std::ptrdiff_t>(at)));
    CHECK(stream.position() == at + 1000);
  }
}

TEST_CASE("the deterministic stream seeks far in constant time and refuses to pass its end") {
  // 200 GiB in: block 3355443200 of the ChaCha20-IETF keystream, computed directly.
  Bytes seed(32, 0x11);
  const std::uint64_t at = std::uint64_t{200} << 30;
  const unsigned char nonce[12] = {'L', 'i', 'b', 's', 'o', 'd', 'i', 'u', 'm', 'D', 'R', 'G'};
  Bytes expected(128, 0);
  crypto_stream_chacha20_ietf_xor_ic(expected.data(), expected.data(), expected.size(), nonce,
                                     static_cast<std::uint32_t>(at / 64), seed.data());
  DeterministicStream stream(seed);
  stream.seek(at + 10);
  Bytes got(100);
  stream.fill(got);
  CHECK(std::equal(got.begin(), got.end(), expected.begin() + 10));
  CHECK_THROWS_AS(stream.seek(DeterministicStream::kMaxPosition + 1), std::length_error);
}
