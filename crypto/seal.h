// Sealed boxes (X25519 + XSalsa20-Poly1305, libsodium's crypto_box_seal):
// anyone with the public key can seal; only the key pair's holder can open.
// Used for the arm-revealing fields of a node's events, sealed to the hub's
// unblinding key so the ledger itself can be shown to blinded roles, and for
// the secret fields of the hub's directives, sealed to the receiving node's
// Ed25519 identity converted to X25519 (docs/security.md, "Network attacker").
// Thread-safety: const methods may be called concurrently.
#pragma once

#include "crypto/bytes.h"
#include "crypto/sign.h"

namespace irt::crypto {

using BoxPublicKey = Fixed<32>;

class BoxKeyPair {
 public:
  static BoxKeyPair generate();
  static BoxKeyPair from_secret(SecretBytes secret32);  // derives the public key
  // The X25519 key pair birationally equivalent to an Ed25519 identity
  // (crypto_sign_ed25519_sk_to_curve25519): what was sealed to
  // box_key_of(key.public_key()) opens with it.
  static BoxKeyPair from_signing_key(const SigningKey& key);
  const BoxPublicKey& public_key() const { return public_key_; }
  const SecretBytes& secret() const { return secret_; }

 private:
  BoxPublicKey public_key_;
  SecretBytes secret_;
};

inline constexpr std::size_t kSealOverhead = 48;

// The X25519 public key of an Ed25519 public key; nullopt for a point that is
// not a valid Ed25519 key (crypto_sign_ed25519_pk_to_curve25519 refuses it).
std::optional<BoxPublicKey> box_key_of(const PublicKey& signing_public_key);

Bytes seal_to(const BoxPublicKey& recipient, ByteView plaintext);
std::optional<Bytes> open_sealed(const BoxKeyPair& recipient, ByteView sealed);

}  // namespace irt::crypto
