#include "crypto/hash.h"

#include <sodium.h>

#include <stdexcept>

namespace irt::crypto {

static_assert(sizeof(crypto_generichash_state) <= 384);
static_assert(sizeof(crypto_hash_sha256_state) <= 128);

Blake2b::Blake2b(std::string_view domain) {
  ensure_initialised();
  if (domain.empty() || domain.size() > 255) throw std::invalid_argument("hash domain must be 1..255 bytes");
  auto* st = reinterpret_cast<crypto_generichash_state*>(state_);
  crypto_generichash_init(st, nullptr, 0, 32);
  const auto len = static_cast<std::uint8_t>(domain.size());
  crypto_generichash_update(st, &len, 1);
  crypto_generichash_update(st, reinterpret_cast<const unsigned char*>(domain.data()), domain.size());
}

Blake2b& Blake2b::update(ByteView part) {
  crypto_generichash_update(reinterpret_cast<crypto_generichash_state*>(state_), part.data(), part.size());
  return *this;
}

Hash Blake2b::finish() {
  Hash h;
  crypto_generichash_final(reinterpret_cast<crypto_generichash_state*>(state_), h.data(), h.size());
  return h;
}

Hash hash_domain(std::string_view domain, ByteView message) { return Blake2b(domain).update(message).finish(); }

Bytes blake2b(ByteView message, std::size_t out_len, ByteView key) {
  ensure_initialised();
  if (out_len < crypto_generichash_BYTES_MIN || out_len > crypto_generichash_BYTES_MAX)
    throw std::invalid_argument("BLAKE2b output length must be 16..64 bytes");
  if (!key.empty() && (key.size() < crypto_generichash_KEYBYTES_MIN || key.size() > crypto_generichash_KEYBYTES_MAX))
    throw std::invalid_argument("BLAKE2b key must be 16..64 bytes");
  Bytes out(out_len);
  crypto_generichash(out.data(), out_len, message.data(), message.size(), key.empty() ? nullptr : key.data(),
                     key.size());
  return out;
}

Sha256::Sha256() {
  ensure_initialised();
  crypto_hash_sha256_init(reinterpret_cast<crypto_hash_sha256_state*>(state_));
}

Sha256& Sha256::update(ByteView part) {
  crypto_hash_sha256_update(reinterpret_cast<crypto_hash_sha256_state*>(state_), part.data(), part.size());
  return *this;
}

Hash Sha256::finish() {
  Hash h;
  crypto_hash_sha256_final(reinterpret_cast<crypto_hash_sha256_state*>(state_), h.data());
  return h;
}

Hash sha256(ByteView message) { return Sha256().update(message).finish(); }

}  // namespace irt::crypto
