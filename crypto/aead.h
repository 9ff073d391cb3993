// XChaCha20-Poly1305 authenticated encryption with associated data.
//
// Sealed layout: nonce (24 random bytes) || ciphertext || tag (16 bytes). The
// associated data binds a ciphertext to where it lives (table, row identity,
// column), so a row copied elsewhere or edited fails to open. Random 192-bit
// nonces make nonce reuse negligible without any state. Thread-safety: an
// AeadKey may be used from several threads at once.
#pragma once

#include "crypto/bytes.h"

namespace irt::crypto {

class AeadKey {
 public:
  static constexpr std::size_t kSize = 32;
  static AeadKey generate();
  static AeadKey from(SecretBytes key);  // throws std::invalid_argument unless 32 bytes
  const SecretBytes& bytes() const { return key_; }
  // A key for another use, derived from this one (libsodium's crypto_kdf,
  // BLAKE2b): the same key, id and 8-character context give the same subkey;
  // a subkey reveals nothing of this key or of its other subkeys.
  AeadKey subkey(std::uint64_t id, const char (&context)[9]) const;

 private:
  SecretBytes key_;
};

inline constexpr std::size_t kAeadOverhead = 24 + 16;

Bytes aead_seal(const AeadKey& key, ByteView plaintext, ByteView associated_data);
// nullopt when the tag does not verify (wrong key, wrong associated data, edited bytes).
std::optional<Bytes> aead_open(const AeadKey& key, ByteView sealed, ByteView associated_data);
// The same, for plaintexts that are themselves secrets (keys).
std::optional<SecretBytes> aead_open_secret(const AeadKey& key, ByteView sealed, ByteView associated_data);

}  // namespace irt::crypto
