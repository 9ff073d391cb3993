#include "node/sessions.h"

#include "crypto/bytes.h"

namespace irt::node {

std::string Sessions::open(const Actor& actor) {
  auto token = crypto::to_hex(crypto::random_bytes(32));
  std::lock_guard lock(mutex_);
  auto now = clock_();
  for (auto it = sessions_.begin(); it != sessions_.end();)  // forget the idle ones
    it = now - it->second.last_used_ms > idle_ms_ ? sessions_.erase(it) : std::next(it);
  sessions_[token] = {actor, now};
  return token;
}

std::optional<Actor> Sessions::touch(const std::string& token, Use use) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(token);
  if (it == sessions_.end()) return std::nullopt;
  auto now = clock_();
  if (now - it->second.last_used_ms > idle_ms_) {
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

std::size_t Sessions::size() {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

}  // namespace irt::node
