#include "sync/wire.h"

#include <stdexcept>

namespace irt::sync {

Writer& Writer::u8(std::uint8_t v) {
  out_.push_back(v);
  return *this;
}
Writer& Writer::u16(std::uint16_t v) {
  out_.push_back(static_cast<std::uint8_t>(v >> 8));
  out_.push_back(static_cast<std::uint8_t>(v));
  return *this;
}
Writer& Writer::u32(std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out_.push_back(static_cast<std::uint8_t>(v >> s));
  return *this;
}
Writer& Writer::u64(std::uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out_.push_back(static_cast<std::uint8_t>(v >> s));
  return *this;
}
Writer& Writer::raw(ByteView b) {
  out_.insert(out_.end(), b.begin(), b.end());
  return *this;
}
Writer& Writer::str16(std::string_view s) {
  if (s.size() > 0xffff) throw std::length_error("string longer than 65535 bytes in a signed record");
  u16(static_cast<std::uint16_t>(s.size()));
  return raw(crypto::as_bytes(s));
}
Writer& Writer::blob32(ByteView b) {
  if (b.size() > 0xffffffffu) throw std::length_error("blob longer than 4 GiB in a signed record");
  u32(static_cast<std::uint32_t>(b.size()));
  return raw(b);
}

bool Reader::need(std::size_t n) {
  if (!ok_ || in_.size() - pos_ < n) {
    ok_ = false;
    return false;
  }
  return true;
}
std::uint8_t Reader::u8() { return need(1) ? in_[pos_++] : 0; }
std::uint16_t Reader::u16() {
  if (!need(2)) return 0;
  auto v = static_cast<std::uint16_t>((in_[pos_] << 8) | in_[pos_ + 1]);
  pos_ += 2;
  return v;
}
std::uint32_t Reader::u32() {
  if (!need(4)) return 0;
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | in_[pos_++];
  return v;
}
std::uint64_t Reader::u64() {
  if (!need(8)) return 0;
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | in_[pos_++];
  return v;
}
ByteView Reader::raw(std::size_t n) {
  if (!need(n)) return {};
  auto b = in_.subspan(pos_, n);
  pos_ += n;
  return b;
}
std::string Reader::str16(std::size_t max_len) {
  std::size_t n = u16();
  if (n > max_len) {
    ok_ = false;
    return {};
  }
  return crypto::to_string(raw(n));
}
ByteView Reader::blob32(std::size_t max_len) {
  std::size_t n = u32();
  if (n > max_len) {
    ok_ = false;
    return {};
  }
  return raw(n);
}

}  // namespace irt::sync
