#include "crypto/bytes.h"

#include <sodium.h>

#include <new>
#include <stdexcept>
#include <utility>

namespace irt::crypto {

void ensure_initialised() {
  static const bool ok = sodium_init() >= 0;
  if (!ok) throw std::runtime_error("libsodium failed to initialise (no system random source)");
}

std::string to_hex(ByteView b) {
  if (b.empty()) return {};  // an empty span may carry a null pointer, which libsodium must not get
  std::string out(b.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), b.data(), b.size());
  out.pop_back();
  return out;
}

std::optional<Bytes> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  if (hex.empty()) return Bytes{};
  Bytes out(hex.size() / 2);
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &len, &end) != 0 ||
      len != out.size() || end != hex.data() + hex.size())
    return std::nullopt;
  return out;
}

std::string to_base64(ByteView b) {
  if (b.empty()) return {};
  const int variant = sodium_base64_VARIANT_ORIGINAL;
  std::string out(sodium_base64_ENCODED_LEN(b.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), b.data(), b.size(), variant);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::optional<Bytes> from_base64(std::string_view b64) {
  Bytes out(b64.size() / 4 * 3 + 3);
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), b64.data(), b64.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != b64.data() + b64.size())
    return std::nullopt;
  out.resize(len);
  return out;
}

bool equal_ct(ByteView a, ByteView b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

SecretBytes::SecretBytes(std::size_t size) : size_(size) {
  ensure_initialised();
  if (size == 0) return;
  data_ = static_cast<std::uint8_t*>(sodium_malloc(size));
  if (!data_) throw std::bad_alloc();
  sodium_memzero(data_, size);
}

SecretBytes SecretBytes::random(std::size_t size) {
  SecretBytes s(size);
  randombytes_buf(s.data_, size);
  return s;
}

SecretBytes SecretBytes::copy_of(ByteView b) {
  SecretBytes s(b.size());
  std::copy(b.begin(), b.end(), s.data_);
  return s;
}

SecretBytes::~SecretBytes() {
  if (data_) sodium_free(data_);  // zeroes before freeing
}

SecretBytes::SecretBytes(SecretBytes&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& o) noexcept {
  if (this != &o) {
    if (data_) sodium_free(data_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

Bytes random_bytes(std::size_t n) {
  ensure_initialised();
  Bytes b(n);
  randombytes_buf(b.data(), n);
  return b;
}

void secure_zero(void* p, std::size_t n) { sodium_memzero(p, n); }

}  // namespace irt::crypto
