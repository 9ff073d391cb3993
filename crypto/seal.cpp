#include "crypto/seal.h"

#include <sodium.h>

#include <stdexcept>

namespace irt::crypto {

static_assert(crypto_box_SEALBYTES == kSealOverhead);

BoxKeyPair BoxKeyPair::generate() { return from_secret(SecretBytes::random(crypto_box_SECRETKEYBYTES)); }

BoxKeyPair BoxKeyPair::from_secret(SecretBytes secret32) {
  ensure_initialised();
  if (secret32.size() != crypto_box_SECRETKEYBYTES) throw std::invalid_argument("an X25519 secret key is 32 bytes");
  BoxKeyPair k;
  crypto_scalarmult_base(k.public_key_.data(), secret32.data());
  k.secret_ = std::move(secret32);
  return k;
}

Bytes seal_to(const BoxPublicKey& recipient, ByteView plaintext) {
  ensure_initialised();
  Bytes out(plaintext.size() + kSealOverhead);
  crypto_box_seal(out.data(), plaintext.data(), plaintext.size(), recipient.data());
  return out;
}

std::optional<Bytes> open_sealed(const BoxKeyPair& recipient, ByteView sealed) {
  if (sealed.size() < kSealOverhead) return std::nullopt;
  Bytes out(sealed.size() - kSealOverhead);
  if (crypto_box_seal_open(out.data(), sealed.data(), sealed.size(), recipient.public_key().data(),
                           recipient.secret().data()) != 0)
    return std::nullopt;
  return out;
}

}  // namespace irt::crypto
