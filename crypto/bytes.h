// Byte types shared by every crypto wrapper: owned byte strings, fixed-size
// values (public keys, signatures, hashes) and SecretBytes, which lives in
// locked, guarded memory and is zeroed when freed.
//
// Secrets never reach a log, an exception message or operator<<: SecretBytes has
// no stream operator and no hex(). Thread-safety: plain values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace irt::crypto {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

// Initialises libsodium once; every entry point calls it, so callers need not.
void ensure_initialised();

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string to_string(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

std::string to_hex(ByteView b);
std::optional<Bytes> from_hex(std::string_view hex);  // nullopt unless even-length hex
std::string to_base64(ByteView b);                      // standard alphabet, padded
std::optional<Bytes> from_base64(std::string_view b64);

// Constant-time comparison of equal-length byte strings.
bool equal_ct(ByteView a, ByteView b);

// A fixed-size public value: keys, signatures, hashes.
template <std::size_t N>
struct Fixed {
  std::array<std::uint8_t, N> bytes{};
  static constexpr std::size_t size() { return N; }
  ByteView view() const { return {bytes.data(), N}; }
  std::uint8_t* data() { return bytes.data(); }
  const std::uint8_t* data() const { return bytes.data(); }
  std::string hex() const { return to_hex(view()); }
  static std::optional<Fixed> from_view(ByteView b) {
    if (b.size() != N) return std::nullopt;
    Fixed f;
    std::copy(b.begin(), b.end(), f.bytes.begin());
    return f;
  }
  static std::optional<Fixed> from_hex(std::string_view h) {
    auto b = crypto::from_hex(h);
    if (!b) return std::nullopt;
    return from_view(*b);
  }
  friend bool operator==(const Fixed&, const Fixed&) = default;
  friend auto operator<=>(const Fixed&, const Fixed&) = default;
};

// Bytes in sodium_malloc'd memory: guard pages, mlock'ed, zeroed on free.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t size);  // zero-filled
  static SecretBytes random(std::size_t size);
  static SecretBytes copy_of(ByteView b);
  ~SecretBytes();
  SecretBytes(SecretBytes&& o) noexcept;
  SecretBytes& operator=(SecretBytes&& o) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::uint8_t* data() { return data_; }
  const std::uint8_t* data() const { return data_; }
  ByteView view() const { return {data_, size_}; }

 private:
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// Cryptographically secure random bytes from the system.
Bytes random_bytes(std::size_t n);

// Overwrites memory in a way the compiler cannot elide.
void secure_zero(void* p, std::size_t n);

}  // namespace irt::crypto
