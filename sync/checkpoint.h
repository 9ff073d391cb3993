// Signed tree heads in the C2SP checkpoint / signed-note text format:
//
//   <origin>\n<tree size>\n<base64 root hash>\n
//   \n
//   — <key name> <base64(key id (4 bytes) || Ed25519 signature)>\n
//
// key id = first 4 bytes of SHA-256(key name || "\n" || 0x01 || public key);
// the signature covers the first three lines (the note text, newline included).
// An auditor can check a checkpoint with the hub's public key alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "crypto/hash.h"
#include "crypto/sign.h"

namespace irt::sync {

struct Checkpoint {
  std::string origin;  // e.g. "irt.hub/STUDY-ID"
  std::uint64_t size = 0;
  crypto::Hash root;
};

std::string sign_checkpoint(const Checkpoint& cp, const std::string& key_name, const crypto::SigningKey& key);
// nullopt unless well-formed and signed by `key` under `key_name`.
std::optional<Checkpoint> open_checkpoint(const std::string& text, const std::string& key_name,
                                          const crypto::PublicKey& key);

}  // namespace irt::sync
