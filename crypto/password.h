// Argon2id: key derivation from a passphrase, and password hashes for user
// logins (libsodium's crypto_pwhash_str format, "$argon2id$v=19$m=...").
//
// Cost levels: kInteractive for logins on tablets, kModerate for the node's
// key-encryption key, kTest for test suites only (fast, never in production
// files: wrap_key records the cost it used, so a file made with kTest says so).
// Thread-safety: stateless; each call allocates its own Argon2 memory.
#pragma once

#include <string>
#include <string_view>

#include "crypto/bytes.h"

namespace irt::crypto {

struct PwhashCost {
  std::uint64_t opslimit;
  std::size_t memlimit;
};

extern const PwhashCost kInteractive;  // libsodium's interactive limits (64 MiB)
extern const PwhashCost kModerate;     // libsodium's moderate limits (256 MiB)
extern const PwhashCost kTest;         // minimum limits; for tests

using Salt = Fixed<16>;

Salt random_salt();
// Throws std::runtime_error only when the system cannot provide the memory.
SecretBytes derive_key(std::string_view passphrase, const Salt& salt, const PwhashCost& cost,
                       std::size_t key_len = 32);

std::string password_hash(std::string_view password, const PwhashCost& cost);
bool password_verify(std::string_view hash, std::string_view password);

}  // namespace irt::crypto
