#include "crypto/key_wrap.h"

#include <cstring>

#include "crypto/aead.h"

namespace irt::crypto {

namespace {
constexpr std::uint8_t kMagic[4] = {'I', 'R', 'T', 'W'};
constexpr std::uint8_t kVersion = 1;
constexpr std::uint8_t kKdfArgon2id13 = 1;
constexpr std::size_t kHeader = 38;

void put_u64(Bytes& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
std::uint64_t get_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
}  // namespace

Bytes wrap_key(const SecretBytes& secret, std::string_view passphrase, const PwhashCost& cost) {
  Salt salt = random_salt();
  Bytes out(kMagic, kMagic + 4);
  out.push_back(kVersion);
  out.push_back(kKdfArgon2id13);
  put_u64(out, cost.opslimit);
  put_u64(out, cost.memlimit);
  out.insert(out.end(), salt.bytes.begin(), salt.bytes.end());
  auto kek = AeadKey::from(derive_key(passphrase, salt, cost));
  Bytes sealed = aead_seal(kek, secret.view(), ByteView(out.data(), kHeader));
  out.insert(out.end(), sealed.begin(), sealed.end());
  return out;
}

const char* unwrap_error_message(UnwrapError e) {
  switch (e) {
    case UnwrapError::wrong_passphrase:
      return "the passphrase is wrong (or the key file was altered); check IRT_PASSPHRASE or --passphrase-file";
    case UnwrapError::unsupported_version:
      return "the key file was written by a newer version of this software; upgrade before opening it";
    case UnwrapError::malformed:
      break;
  }
  return "the key file is not a wrapped key (truncated or corrupt); restore it from backup or re-enroll";
}

Unwrapped unwrap_key(ByteView wrapped, std::string_view passphrase) {
  Unwrapped r;
  if (wrapped.size() < kHeader + kAeadOverhead || std::memcmp(wrapped.data(), kMagic, 4) != 0) {
    r.error = UnwrapError::malformed;
    return r;
  }
  if (wrapped[4] != kVersion || wrapped[5] != kKdfArgon2id13) {
    r.error = UnwrapError::unsupported_version;
    return r;
  }
  PwhashCost cost{get_u64(wrapped.data() + 6), static_cast<std::size_t>(get_u64(wrapped.data() + 14))};
  // Refuse absurd costs from a corrupted header before allocating for them.
  if (cost.memlimit > (std::size_t{1} << 32) || cost.opslimit > 64 || cost.opslimit == 0) {
    r.error = UnwrapError::malformed;
    return r;
  }
  auto salt = Salt::from_view(wrapped.subspan(22, 16));
  auto kek = AeadKey::from(derive_key(passphrase, *salt, cost));
  r.secret = aead_open_secret(kek, wrapped.subspan(kHeader), wrapped.subspan(0, kHeader));
  if (!r.secret) r.error = UnwrapError::wrong_passphrase;
  return r;
}

}  // namespace irt::crypto
