// Binary encoding for signed records (events, directives, certificates,
// batches). Integers are big-endian; strings carry a u16 length, blobs a u32
// length. Records are parsed from the exact bytes that were signed and never
// re-serialised before verification (docs/sync-protocol.md).
//
// Reader never reads past its input: a short or malformed record sets ok() to
// false and every later read returns zero values. Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/bytes.h"

namespace irt::sync {

using crypto::Bytes;
using crypto::ByteView;

class Writer {
 public:
  Writer& u8(std::uint8_t v);
  Writer& u16(std::uint16_t v);
  Writer& u32(std::uint32_t v);
  Writer& u64(std::uint64_t v);
  Writer& i64(std::int64_t v) { return u64(static_cast<std::uint64_t>(v)); }
  Writer& raw(ByteView b);
  Writer& str16(std::string_view s);  // throws std::length_error over 65535 bytes
  Writer& blob32(ByteView b);
  const Bytes& bytes() const { return out_; }
  Bytes take() { return std::move(out_); }
  std::size_t size() const { return out_.size(); }

 private:
  Bytes out_;
};

class Reader {
 public:
  explicit Reader(ByteView in) : in_(in) {}
  std::uint8_t u8();
  std::uint16_t u16();
  std::uint32_t u32();
  std::uint64_t u64();
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  ByteView raw(std::size_t n);
  std::string str16(std::size_t max_len);
  ByteView blob32(std::size_t max_len);
  template <class F>
  F fixed() {
    auto b = raw(F::size());
    F f;
    if (ok_) std::copy(b.begin(), b.end(), f.bytes.begin());
    return f;
  }
  bool ok() const { return ok_; }
  std::size_t position() const { return pos_; }
  bool at_end() const { return pos_ == in_.size(); }
  void fail() { ok_ = false; }

 private:
  bool need(std::size_t n);
  ByteView in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace irt::sync
