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

BoxKeyPair BoxKeyPair::from_signing_key(const SigningKey& key) {
  ensure_initialised();
  SecretBytes seed = key.seed();
  PublicKey ed_public;
  SecretBytes ed_secret(crypto_sign_SECRETKEYBYTES);
  crypto_sign_seed_keypair(ed_public.data(), ed_secret.data(), seed.data());
  SecretBytes x_secret(crypto_box_SECRETKEYBYTES);
  if (crypto_sign_ed25519_sk_to_curve25519(x_secret.data(), ed_secret.data()) != 0)
    throw std::runtime_error("libsodium could not convert an Ed25519 secret key to X25519");
  return from_secret(std::move(x_secret));
}

std::optional<BoxPublicKey> box_key_of(const PublicKey& signing_public_key) {
  ensure_initialised();
  BoxPublicKey out;
  if (crypto_sign_ed25519_pk_to_curve25519(out.data(), signing_public_key.data()) != 0) return std::nullopt;
  return out;
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
