#include "shared/sign_in_guard.h"

#include <algorithm>

namespace irt::shared {

std::int64_t SignInGuard::next_allowed_ms(const Failures& f, int factor) {
  if (f.count >= kLockAfter * factor) return f.last_ms + kLockMs;
  if (f.count < kFreeFailures * factor) return 0;
  const int doublings = std::min((f.count - kFreeFailures * factor) / factor, 20);
  return f.last_ms + std::min(kLockMs, kFirstWaitMs << doublings);
}

SignInGuard::Failures* SignInGuard::current(std::map<std::string, Failures>& by, const std::string& key,
                                            std::int64_t now_ms) {
  auto it = by.find(key);
  if (it == by.end()) return nullptr;
  if (now_ms - it->second.last_ms >= kLockMs) {
    by.erase(it);
    return nullptr;
  }
  return &it->second;
}

Status SignInGuard::check(const std::string& user, const std::string& source, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  std::int64_t until = 0;
  if (auto* f = current(users_, user, now_ms)) until = next_allowed_ms(*f, 1);
  if (auto* f = current(sources_, source, now_ms)) until = std::max(until, next_allowed_ms(*f, kSourceFactor));
  if (until <= now_ms) return {};
  const auto seconds = (until - now_ms + 999) / 1000;
  return make_error(Errc::rate_limited, "too many failed sign-ins for this user or from this device; try again in " +
                                            std::to_string(seconds) + " s, or ask the study admin to check the "
                                            "account");
}

void SignInGuard::failed(const std::string& user, const std::string& source, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  for (auto* by : {&users_, &sources_}) {
    const auto& key = by == &users_ ? user : source;
    auto* f = current(*by, key, now_ms);
    if (!f) f = &(*by)[key];
    ++f->count;
    f->last_ms = now_ms;
  }
}

void SignInGuard::succeeded(const std::string& user) {
  std::lock_guard lock(mutex_);
  users_.erase(user);
}

}  // namespace irt::shared
