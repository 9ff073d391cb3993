#include "shared/sign_in_guard.h"

#include <doctest/doctest.h>

using irt::shared::Errc;
using irt::shared::SignInGuard;

TEST_CASE("failed sign-ins of a user are free three times, then wait doubling, then lock for 15 minutes") {
  SignInGuard g;
  std::int64_t t = 1'000'000;
  for (int i = 0; i < SignInGuard::kFreeFailures; ++i) {
    CHECK(g.check("ana", "10.0.0.1", t).ok());
    g.failed("ana", "10.0.0.1", t);
  }
  auto wait = g.check("ana", "10.0.0.2", t);
  REQUIRE_FALSE(wait.ok());
  CHECK(wait.error().code == Errc::rate_limited);
  CHECK(wait.error().message.find("try again in 1 s") != std::string::npos);
  CHECK(g.check("ben", "10.0.0.2", t).ok());  // another user from another device is not slowed
  CHECK(g.check("ana", "10.0.0.1", t + 1000).ok());
  g.failed("ana", "10.0.0.1", t + 1000);
  CHECK(g.check("ana", "10.0.0.1", t + 2999).error().message.find("try again in 1 s") != std::string::npos);
  CHECK(g.check("ana", "10.0.0.1", t + 3000).ok());
  for (int i = SignInGuard::kFreeFailures + 1; i < SignInGuard::kLockAfter; ++i) g.failed("ana", "x", t + 3000);
  auto locked = g.check("ana", "10.0.0.9", t + 3000 + 60'000);
  REQUIRE_FALSE(locked.ok());
  CHECK(locked.error().message.find("try again in 840 s") != std::string::npos);
  CHECK(g.check("ana", "10.0.0.9", t + 3000 + SignInGuard::kLockMs).ok());
}

TEST_CASE("a success clears the user's failures, not the source's") {
  SignInGuard g;
  const std::int64_t t = 5'000;
  for (int i = 0; i < SignInGuard::kFreeFailures; ++i) g.failed("ana", "tablet", t);
  g.succeeded("ana");
  CHECK(g.check("ana", "tablet", t).ok());
  for (int i = 0; i < SignInGuard::kFreeFailures * SignInGuard::kSourceFactor; ++i)
    g.failed("user" + std::to_string(i), "tablet", t);
  CHECK_FALSE(g.check("someone-else", "tablet", t).ok());  // many names guessed from one source
  CHECK(g.check("someone-else", "other-tablet", t).ok());
}
