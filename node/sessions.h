// Login sessions of the node's local API: random bearer tokens (32 bytes from
// the system's generator, hex), held only in memory, so a restart logs
// everyone out. A session expires after kSessionIdleMs (node/tuning.h, 15
// minutes, or the idle time `irt-node serve --session-idle` sets) idle; every
// authenticated request moves its idle timer except the ones a page makes on
// its own (the status poll: Use::poll), so an unattended tablet logs out.
// Whatever its use, a session ends kSessionLifetimeMs after login, and at the
// kMaxWrongSignatures-th wrong e-signature given in it (shared/sign_in_guard.h).
// Tokens never reach a log or an error message.
// Thread-safety: every method may be called from any thread (one mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "node/site_operations.h"
#include "node/tuning.h"
#include "shared/sign_in_guard.h"
#include "sync/hlc.h"

namespace irt::node {

class Sessions {
 public:
  explicit Sessions(sync::WallClock clock = sync::system_millis, std::int64_t idle_ms = kSessionIdleMs)
      : clock_(std::move(clock)), idle_ms_(idle_ms) {}

  // What a request does to the session's idle timer.
  enum class Use { person, poll };
  std::int64_t idle_ms() const { return idle_ms_; }
  std::string open(const Actor& actor);
  // The session's actor, its idle timer restarted unless `use` is a poll;
  // nullopt when the token is unknown or the session has been idle too long
  // (it is then forgotten).
  std::optional<Actor> touch(const std::string& token, Use use = Use::person);
  void close(const std::string& token);
  // Counts a wrong e-signature given in the session; true when that ended it.
  bool wrong_signature(const std::string& token);
  std::size_t size();

 private:
  struct Session {
    Actor actor;
    std::int64_t last_used_ms = 0;
    std::int64_t opened_ms = 0;
    int wrong_signatures = 0;
  };
  bool expired(const Session& s, std::int64_t now) const {
    return now - s.last_used_ms > idle_ms_ || now - s.opened_ms > shared::kSessionLifetimeMs;
  }
  sync::WallClock clock_;
  std::int64_t idle_ms_;
  std::mutex mutex_;
  std::map<std::string, Session> sessions_;  // by token
};

}  // namespace irt::node
