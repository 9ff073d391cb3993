// Key wrapping: a secret (a node's data key, its signing seed) encrypted under
// a key derived with Argon2id from a passphrase, in a versioned file format.
//
// Format, version 1 (all integers little-endian):
//   offset  size  field
//   0       4     magic "IRTW"
//   4       1     format version (1)
//   5       1     KDF (1 = Argon2id v1.3)
//   6       8     Argon2 opslimit
//   14      8     Argon2 memlimit in bytes
//   22      16    salt
//   38      ...   XChaCha20-Poly1305 sealed secret (nonce 24 || ciphertext || tag 16),
//                 with bytes 0..37 (the header) as associated data
// Editing any header byte (to weaken the cost, say) makes the tag fail.
// Thread-safety: stateless.
#pragma once

#include <string_view>

#include "crypto/bytes.h"
#include "crypto/password.h"

namespace irt::crypto {

Bytes wrap_key(const SecretBytes& secret, std::string_view passphrase, const PwhashCost& cost);

enum class UnwrapError { wrong_passphrase, malformed, unsupported_version };
const char* unwrap_error_message(UnwrapError e);  // says what to do

struct Unwrapped {
  std::optional<SecretBytes> secret;  // set on success
  UnwrapError error = UnwrapError::malformed;
};

Unwrapped unwrap_key(ByteView wrapped, std::string_view passphrase);

}  // namespace irt::crypto
