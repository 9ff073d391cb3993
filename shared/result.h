// Result<T> and Error: how every fallible call in the project reports an
// expected failure (bad input, not found, not allowed, offline, exhausted).
// Exceptions are kept for programming errors and truly exceptional I/O; they are
// caught at the process and HTTP boundaries. See docs/errors.md.
//
// An Error's message is shown to people: it names what was wrong and what to do.
// It never carries a secret, an arm or anything a blinded reader must not see.
// Thread-safety: plain values.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace irt::shared {

// Numbered in ranges so a code says its family at a glance; the HTTP status and
// the process exit code follow from the family (see http_status / exit_code).
enum class Errc : int {
  invalid_input = 100,    // the request or file is malformed or fails validation
  not_found = 200,        // the thing named does not exist
  unauthenticated = 300,  // no valid session or signature
  forbidden = 310,        // the actor's role may not do this
  rate_limited = 320,     // too many failed sign-ins for this user or source: wait
  conflict = 400,         // the current state does not allow it (already done, wrong status)
  exhausted = 410,        // a slice, a number range or a kit type ran out: sync to get more
  unavailable = 500,      // the other side cannot be reached; retry later
  integrity = 600,        // a signature, hash chain or AEAD tag did not verify
  internal = 900,         // a bug or an I/O failure; nothing was changed
};

// One table, docs/errors.md "Codes", used by the hub's sync server, the
// node's API and the node's sync client alike.
const char* errc_name(Errc code);  // "invalid_input", ...
int http_status(Errc code);        // 400, 404, 401, 403, 409, 409, 503, 422, 500
int exit_code(Errc code);          // 2 input, 3 unavailable, 1 otherwise
std::optional<Errc> errc_from_name(std::string_view name);  // the inverse of errc_name
// The family of an HTTP status that came without a code this side knows: the
// first code with that status (409 is conflict), else invalid_input for a 4xx
// and internal for anything else.
Errc errc_for_http_status(int status);

struct Error {
  Errc code = Errc::internal;
  std::string message;
};

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { assert(!ok_); return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace irt::shared
