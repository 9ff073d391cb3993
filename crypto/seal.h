// Sealed boxes (X25519 + XSalsa20-Poly1305, libsodium's crypto_box_seal):
// anyone with the public key can seal; only the key pair's holder can open.
// Used for the arm-revealing fields of a node's events, sealed to the hub's
// unblinding key so the ledger itself can be shown to blinded roles.
// Thread-safety: const methods may be called concurrently.
#pragma once

#include "crypto/bytes.h"

namespace irt::crypto {

using BoxPublicKey = Fixed<32>;

class BoxKeyPair {
 public:
  static BoxKeyPair generate();
  static BoxKeyPair from_secret(SecretBytes secret32);  // derives the public key
  const BoxPublicKey& public_key() const { return public_key_; }
  const SecretBytes& secret() const { return secret_; }

 private:
  BoxPublicKey public_key_;
  SecretBytes secret_;
};

inline constexpr std::size_t kSealOverhead = 48;

Bytes seal_to(const BoxPublicKey& recipient, ByteView plaintext);
std::optional<Bytes> open_sealed(const BoxKeyPair& recipient, ByteView sealed);

}  // namespace irt::crypto
