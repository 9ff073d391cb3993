// Ed25519 identities and detached signatures (RFC 8032).
//
// A SigningKey holds its 32-byte seed in locked memory; the public key is a
// plain value. Verification takes exact bytes: callers sign and verify what
// they store, never a re-serialisation. Thread-safety: const methods may be
// called concurrently.
#pragma once

#include "crypto/bytes.h"

namespace irt::crypto {

using PublicKey = Fixed<32>;
using Signature = Fixed<64>;

class SigningKey {
 public:
  static SigningKey generate();
  static SigningKey from_seed(ByteView seed32);  // throws std::invalid_argument unless 32 bytes

  const PublicKey& public_key() const { return public_key_; }
  Signature sign(ByteView message) const;
  SecretBytes seed() const;  // for wrapping at rest

 private:
  SigningKey() = default;
  SecretBytes secret_;  // libsodium's 64-byte secret key (seed || public key)
  PublicKey public_key_;
};

bool verify(const PublicKey& key, ByteView message, const Signature& signature);

}  // namespace irt::crypto
