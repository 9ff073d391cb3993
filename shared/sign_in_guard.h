// Failed sign-ins slow, then lock, further attempts: per user name and per
// source address, so that nobody can guess a password at the speed of the
// network, whether they try one user from many places or many users from one.
//
// A sign-in is a login or an e-signature (a password given to sign a change).
// After kFreeFailures failures in a row a user (or a source) waits
// kFirstWaitMs before the next check, doubled at each further failure; after
// kLockAfter failures it is locked for kLockMs. A source may fail
// kSourceFactor times as often as a user before it waits, since one site
// tablet serves several people. A success clears the user's count; a record
// with no failure for kLockMs is forgotten. The refusal says how long to wait
// and never whether the user exists. Kept in memory: a restart clears it.
// Thread-safety: every method may be called from any thread (one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "shared/result.h"

namespace irt::shared {

// For the node's and the hub's sessions alike: however busy, a session ends a
// working day after its login, and at the kMaxWrongSignatures-th wrong
// e-signature given in it (someone other than its user may be at the screen).
inline constexpr std::int64_t kSessionLifetimeMs = 12 * 60 * 60 * 1000;
inline constexpr int kMaxWrongSignatures = 3;

class SignInGuard {
 public:
  static constexpr int kFreeFailures = 3;
  static constexpr std::int64_t kFirstWaitMs = 1000;
  static constexpr int kLockAfter = 10;
  static constexpr std::int64_t kLockMs = 15 * 60 * 1000;
  static constexpr int kSourceFactor = 4;

  // rate_limited when `user` or `source` must still wait; success when a
  // password check may run.
  Status check(const std::string& user, const std::string& source, std::int64_t now_ms);
  void failed(const std::string& user, const std::string& source, std::int64_t now_ms);
  void succeeded(const std::string& user);

 private:
  struct Failures {
    int count = 0;
    std::int64_t last_ms = 0;
  };
  // When the next check may run after `f`, with the thresholds scaled by `factor`.
  static std::int64_t next_allowed_ms(const Failures& f, int factor);
  static Failures* current(std::map<std::string, Failures>& by, const std::string& key, std::int64_t now_ms);

  std::mutex mutex_;
  std::map<std::string, Failures> users_;
  std::map<std::string, Failures> sources_;
};

}  // namespace irt::shared
