#include "crypto/password.h"

#include <sodium.h>

#include <stdexcept>

namespace irt::crypto {

const PwhashCost kInteractive{crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE};
const PwhashCost kModerate{crypto_pwhash_OPSLIMIT_MODERATE, crypto_pwhash_MEMLIMIT_MODERATE};
const PwhashCost kTest{crypto_pwhash_OPSLIMIT_MIN, 8192};

Salt random_salt() {
  Salt s;
  ensure_initialised();
  randombytes_buf(s.data(), s.size());
  return s;
}

SecretBytes derive_key(std::string_view passphrase, const Salt& salt, const PwhashCost& cost,
                       std::size_t key_len) {
  SecretBytes key(key_len);
  if (crypto_pwhash(key.data(), key_len, passphrase.data(), passphrase.size(), salt.data(), cost.opslimit,
                    cost.memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0)
    throw std::runtime_error("Argon2id could not allocate its memory; free memory and retry");
  return key;
}

std::string password_hash(std::string_view password, const PwhashCost& cost) {
  ensure_initialised();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), cost.opslimit, cost.memlimit,
                            crypto_pwhash_ALG_ARGON2ID13) != 0)
    throw std::runtime_error("Argon2id could not allocate its memory; free memory and retry");
  return out;
}

bool password_verify(std::string_view hash, std::string_view password) {
  ensure_initialised();
  std::string h(hash);  // needs a NUL-terminated copy
  return crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
}

}  // namespace irt::crypto
