#include "crypto/sign.h"

#include <sodium.h>

#include <stdexcept>

namespace irt::crypto {

SigningKey SigningKey::generate() {
  return from_seed(SecretBytes::random(crypto_sign_SEEDBYTES).view());
}

SigningKey SigningKey::from_seed(ByteView seed32) {
  ensure_initialised();
  if (seed32.size() != crypto_sign_SEEDBYTES)
    throw std::invalid_argument("an Ed25519 seed is 32 bytes");
  SigningKey k;
  k.secret_ = SecretBytes(crypto_sign_SECRETKEYBYTES);
  crypto_sign_seed_keypair(k.public_key_.data(), k.secret_.data(), seed32.data());
  return k;
}

Signature SigningKey::sign(ByteView message) const {
  Signature s;
  crypto_sign_detached(s.data(), nullptr, message.data(), message.size(), secret_.data());
  return s;
}

SecretBytes SigningKey::seed() const {
  SecretBytes seed(crypto_sign_SEEDBYTES);
  crypto_sign_ed25519_sk_to_seed(seed.data(), secret_.data());
  return seed;
}

bool verify(const PublicKey& key, ByteView message, const Signature& signature) {
  ensure_initialised();
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(), key.data()) == 0;
}

}  // namespace irt::crypto
