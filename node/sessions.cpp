#include "node/sessions.h"

#include "crypto/bytes.h"

namespace irt::node {

std::string Sessions::open(const Actor& actor) {
  auto token = crypto::to_hex(crypto::random_bytes(32));
  std::lock_guard lock(mutex_);
  auto now = clock_();
  for (auto it = sessions_.begin(); it != sessions_.end();)  // forget the idle ones
    it = expired(it->second, now) ? sessions_.erase(it) : std::next(it);
  sessions_[token] = {actor, now, now, 0};
  return token;
}

std::optional<Actor> Sessions::touch(const std::string& token, Use use) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(token);
  if (it == sessions_.end()) return std::nullopt;
  auto now = clock_();
  if (expired(it->second, now)) {
    sessions_.erase(it);
    return std::nullopt;
  }
  if (use == Use::person) it->second.last_used_ms = now;
  return it->second.actor;
}

void Sessions::close(const std::string& token) {
  std::lock_guard lock(mutex_);
  sessions_.erase(token);
}

bool Sessions::wrong_signature(const std::string& token) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(token);
  if (it == sessions_.end()) return false;
  if (++it->second.wrong_signatures < shared::kMaxWrongSignatures) return false;
  sessions_.erase(it);
  return true;
}

std::size_t Sessions::size() {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

}  // namespace irt::node
