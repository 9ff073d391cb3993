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

// The hub's audit trail's head when the checkpoint was signed (hub/audit.h):
// how many entries, and the chain hash of the last (zero when none).
struct AuditHead {
  std::uint64_t entries = 0;
  crypto::Hash last;
};

struct Checkpoint {
  std::string origin;  // e.g. "irt.hub/STUDY-ID"
  std::uint64_t size = 0;
  crypto::Hash root;
  std::optional<AuditHead> audit;
};

// A checkpoint that commits to the audit head carries a second signature
// line, under this key name and the same hub key:
//   — irt-hub-audit <base64(key id (4) || u64 entries, big-endian (8) ||
//                           last hash (32) || Ed25519 signature (64))>
// the signature over the note text followed by "audit <entries> <last hash
// hex>\n". A reader that knows only "irt-hub" ignores the line (a signed
// note's verifier skips signatures of keys it does not know), so nodes of an
// earlier release accept these checkpoints unchanged.
inline constexpr const char* kAuditHeadKeyName = "irt-hub-audit";

std::string sign_checkpoint(const Checkpoint& cp, const std::string& key_name, const crypto::SigningKey& key);
// nullopt unless well-formed and signed by `key` under `key_name`, and,
// when it has an audit head line, that line signed by `key` too.
std::optional<Checkpoint> open_checkpoint(const std::string& text, const std::string& key_name,
                                          const crypto::PublicKey& key);

}  // namespace irt::sync
