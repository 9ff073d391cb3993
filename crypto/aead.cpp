#include "crypto/aead.h"

#include <sodium.h>

#include <stdexcept>

namespace irt::crypto {

namespace {
constexpr std::size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(kNonce + kTag == kAeadOverhead);

// Decrypts into out (sealed.size() - overhead bytes); false when the tag fails.
bool open_into(const AeadKey& key, ByteView sealed, ByteView ad, std::uint8_t* out) {
  if (sealed.size() < kAeadOverhead) return false;
  unsigned long long len = 0;
  return crypto_aead_xchacha20poly1305_ietf_decrypt(out, &len, nullptr, sealed.data() + kNonce,
                                                    sealed.size() - kNonce, ad.data(), ad.size(),
                                                    sealed.data(), key.bytes().data()) == 0;
}
}  // namespace

AeadKey AeadKey::generate() { return from(SecretBytes::random(kSize)); }

AeadKey AeadKey::from(SecretBytes key) {
  if (key.size() != kSize) throw std::invalid_argument("an XChaCha20-Poly1305 key is 32 bytes");
  AeadKey k;
  k.key_ = std::move(key);
  return k;
}

AeadKey AeadKey::subkey(std::uint64_t id, const char (&context)[9]) const {
  static_assert(crypto_kdf_CONTEXTBYTES == 8 && crypto_kdf_KEYBYTES == kSize);
  SecretBytes out(kSize);
  crypto_kdf_derive_from_key(out.data(), kSize, id, context, key_.data());
  return from(std::move(out));
}

Bytes aead_seal(const AeadKey& key, ByteView plaintext, ByteView ad) {
  Bytes out(kNonce + plaintext.size() + kTag);
  randombytes_buf(out.data(), kNonce);
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + kNonce, &len, plaintext.data(), plaintext.size(),
                                             ad.data(), ad.size(), nullptr, out.data(), key.bytes().data());
  return out;
}

std::optional<Bytes> aead_open(const AeadKey& key, ByteView sealed, ByteView ad) {
  if (sealed.size() < kAeadOverhead) return std::nullopt;
  Bytes out(sealed.size() - kAeadOverhead);
  if (!open_into(key, sealed, ad, out.data())) return std::nullopt;
  return out;
}

std::optional<SecretBytes> aead_open_secret(const AeadKey& key, ByteView sealed, ByteView ad) {
  if (sealed.size() < kAeadOverhead) return std::nullopt;
  SecretBytes out(sealed.size() - kAeadOverhead);
  if (!open_into(key, sealed, ad, out.data())) return std::nullopt;
  return out;
}

}  // namespace irt::crypto
