#include "sync/checkpoint.h"

#include <charconv>

namespace irt::sync {

namespace {
const std::string kDash = "\xE2\x80\x94 ";  // U+2014 EM DASH and a space

std::array<std::uint8_t, 4> key_id(const std::string& name, const crypto::PublicKey& key) {
  crypto::Sha256 h;
  h.update(crypto::as_bytes(name)).update(crypto::as_bytes("\n"));
  const std::uint8_t alg = 0x01;
  h.update({&alg, 1}).update(key.view());
  auto d = h.finish();
  return {d.bytes[0], d.bytes[1], d.bytes[2], d.bytes[3]};
}

std::string note_text(const Checkpoint& cp) {
  return cp.origin + "\n" + std::to_string(cp.size) + "\n" + crypto::to_base64(cp.root.view()) + "\n";
}

// What the audit head line signs: the note text and the head.
std::string audit_head_signed_text(const std::string& note, const AuditHead& head) {
  return note + "audit " + std::to_string(head.entries) + " " + head.last.hex() + "\n";
}

constexpr std::size_t kAuditHeadBlobSize = 4 + 8 + 32 + 64;
}  // namespace

std::string sign_checkpoint(const Checkpoint& cp, const std::string& key_name, const crypto::SigningKey& key) {
  std::string text = note_text(cp);
  auto sig = key.sign(crypto::as_bytes(text));
  auto id = key_id(key_name, key.public_key());
  crypto::Bytes blob(id.begin(), id.end());
  blob.insert(blob.end(), sig.bytes.begin(), sig.bytes.end());
  std::string out = text + "\n" + kDash + key_name + " " + crypto::to_base64(blob) + "\n";
  if (cp.audit) {
    auto audit_id = key_id(kAuditHeadKeyName, key.public_key());
    crypto::Bytes line(audit_id.begin(), audit_id.end());
    for (int shift = 56; shift >= 0; shift -= 8) line.push_back(static_cast<std::uint8_t>(cp.audit->entries >> shift));
    line.insert(line.end(), cp.audit->last.bytes.begin(), cp.audit->last.bytes.end());
    auto audit_sig = key.sign(crypto::as_bytes(audit_head_signed_text(text, *cp.audit)));
    line.insert(line.end(), audit_sig.bytes.begin(), audit_sig.bytes.end());
    out += kDash + std::string(kAuditHeadKeyName) + " " + crypto::to_base64(line) + "\n";
  }
  return out;
}

std::optional<Checkpoint> open_checkpoint(const std::string& text, const std::string& key_name,
                                          const crypto::PublicKey& key) {
  auto split = text.find("\n\n");
  if (split == std::string::npos) return std::nullopt;
  std::string body = text.substr(0, split + 1);
  std::string sigline_prefix = kDash + key_name + " ";
  const std::string audit_prefix = kDash + kAuditHeadKeyName + " ";
  std::string rest = text.substr(split + 2);
  // Several signature lines may follow; use the one for our key name, and the audit head's.
  std::size_t at = 0;
  std::optional<crypto::Bytes> blob, audit_blob;
  bool has_audit = false;
  while (at < rest.size()) {
    auto nl = rest.find('\n', at);
    if (nl == std::string::npos) return std::nullopt;
    std::string line = rest.substr(at, nl - at);
    if (line.rfind(sigline_prefix, 0) == 0) blob = crypto::from_base64(line.substr(sigline_prefix.size()));
    if (line.rfind(audit_prefix, 0) == 0) {
      has_audit = true;
      audit_blob = crypto::from_base64(line.substr(audit_prefix.size()));
    }
    at = nl + 1;
  }
  if (!blob || blob->size() != 4 + crypto::Signature::size()) return std::nullopt;
  auto id = key_id(key_name, key);
  if (!std::equal(id.begin(), id.end(), blob->begin())) return std::nullopt;
  auto sig = crypto::Signature::from_view(crypto::ByteView(*blob).subspan(4));
  if (!crypto::verify(key, crypto::as_bytes(body), *sig)) return std::nullopt;

  Checkpoint cp;
  auto l1 = body.find('\n'), l2 = body.find('\n', l1 + 1), l3 = body.find('\n', l2 + 1);
  if (l3 == std::string::npos || l3 + 1 != body.size()) return std::nullopt;
  cp.origin = body.substr(0, l1);
  std::string size = body.substr(l1 + 1, l2 - l1 - 1);
  auto [p, ec] = std::from_chars(size.data(), size.data() + size.size(), cp.size);
  if (ec != std::errc() || p != size.data() + size.size()) return std::nullopt;
  auto root = crypto::from_base64(body.substr(l2 + 1, l3 - l2 - 1));
  if (!root || root->size() != 32) return std::nullopt;
  cp.root = *crypto::Hash::from_view(*root);
  if (has_audit) {
    if (!audit_blob || audit_blob->size() != kAuditHeadBlobSize) return std::nullopt;
    auto audit_id = key_id(kAuditHeadKeyName, key);
    if (!std::equal(audit_id.begin(), audit_id.end(), audit_blob->begin())) return std::nullopt;
    AuditHead head;
    for (std::size_t i = 4; i < 12; ++i) head.entries = (head.entries << 8) | (*audit_blob)[i];
    head.last = *crypto::Hash::from_view(crypto::ByteView(*audit_blob).subspan(12, 32));
    auto audit_sig = crypto::Signature::from_view(crypto::ByteView(*audit_blob).subspan(44));
    if (!audit_sig || !crypto::verify(key, crypto::as_bytes(audit_head_signed_text(body, head)), *audit_sig))
      return std::nullopt;
    cp.audit = head;
  }
  return cp;
}

}  // namespace irt::sync
