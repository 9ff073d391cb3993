// A refusal of a /sync/v1 request: the stable wire code (sync/protocol.h,
// wire_error), the HTTP status that goes with it, a message for people, and
// the sequence numbers a node needs to recover (the expected seq of a gap, the
// seq of the event that was refused).
//
// shared::Result carries a project-wide Errc; the sync protocol needs a finer,
// stable code that nodes match on, so the hub's ingest and enrollment logic
// answer with Refusable<T>. The HTTP layer turns a Refusal into
// {"error":{"code","message","expected_seq"?,"seq"?}} without interpreting it.
// Thread-safety: plain values.
#pragma once

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "shared/result.h"

namespace irt::sync {

struct Refusal {
  std::string code;  // a wire_error code
  int http_status = 400;
  std::string message;
  std::optional<std::uint64_t> expected_seq;  // sequence_gap: the seq the hub expects next
  std::optional<std::uint64_t> seq;           // the event the refusal is about, when there is one
};

// The shared::Errc family of a wire_error code (none for a code this
// version does not know), and its HTTP status, the family's: one table,
// docs/errors.md "Sync refusal codes". An unknown code is internal (500).
std::optional<shared::Errc> wire_family(std::string_view code);
int wire_status(std::string_view code);

// What a refusal received by a node means to it: unavailable for any 5xx, 408
// or 429 (the hub, or a proxy in front of it, failed or is busy), else the
// family of its code, else the family of its HTTP status.
shared::Errc refusal_family(std::string_view code, int http_status);

// Whether the same request can succeed later: the refusal is unavailable, or
// a sequence gap, which the node resolves by resending. Every other refusal (a
// record the hub cannot accept, a revoked or frozen node, a bad certificate or
// signature, ...) needs a person to act.
bool retry_can_fix(std::string_view code, int http_status);

// What the node's operator should do about a refusal retrying cannot fix.
std::string refusal_advice(std::string_view code);

inline Refusal refuse(const char* code, std::string message) {
  return Refusal{code, wire_status(code), std::move(message), std::nullopt, std::nullopt};
}

// {"error":{"code","message",...}}: the body of every /sync/v1 refusal.
std::string refusal_to_json(const Refusal& r);

template <class T>
class [[nodiscard]] Refusable {
 public:
  Refusable(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Refusable(Refusal refusal) : v_(std::move(refusal)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Refusal& refusal() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Refusal> v_;
};

}  // namespace irt::sync
