#include "node/sessions.h"

#include <doctest/doctest.h>

using namespace irt;

TEST_CASE("a session ends after 15 idle minutes and each use restarts the timer") {
  std::int64_t now = 1'000'000;
  node::Sessions sessions([&] { return now; });
  auto token = sessions.open({"carla", "coordinator"});
  CHECK(token.size() == 64);
  now += node::kSessionIdleMs - 1;
  REQUIRE(sessions.touch(token));
  CHECK(sessions.touch(token)->user == "carla");
  now += node::kSessionIdleMs;
  CHECK(sessions.touch(token).has_value());
  now += node::kSessionIdleMs + 1;
  CHECK_FALSE(sessions.touch(token).has_value());
  CHECK_FALSE(sessions.touch(token).has_value());
  CHECK(sessions.size() == 0);
}

TEST_CASE("tokens are random - unknown and closed tokens are refused") {
  node::Sessions sessions;
  auto a = sessions.open({"carla", "coordinator"});
  auto b = sessions.open({"carla", "coordinator"});
  CHECK(a != b);
  CHECK_FALSE(sessions.touch("").has_value());
  CHECK_FALSE(sessions.touch(std::string(64, '0')).has_value());
  sessions.close(a);
  CHECK_FALSE(sessions.touch(a).has_value());
  CHECK(sessions.touch(b).has_value());
}

TEST_CASE("a poll (the page's status request) does not restart the idle timer - and the idle time is the server's") {
  std::int64_t now = 1'000'000;
  node::Sessions sessions([&] { return now; }, 5'000);
  CHECK(sessions.idle_ms() == 5'000);
  auto polled = sessions.open({"paul", "pharmacist"});
  auto used = sessions.open({"carla", "coordinator"});
  for (int i = 0; i < 4; ++i) {
    now += 1'500;
    CHECK(sessions.touch(polled, node::Sessions::Use::poll).has_value() == (i < 3));
    CHECK(sessions.touch(used).has_value());
  }
  CHECK_FALSE(sessions.touch(polled).has_value());
  CHECK(sessions.touch(used, node::Sessions::Use::poll).has_value());
}

TEST_CASE("a session in constant use ends a working day after its login") {
  std::int64_t now = 1'000'000;
  node::Sessions sessions([&] { return now; });
  auto token = sessions.open({"carla", "coordinator"});
  const std::int64_t step = node::kSessionIdleMs / 2;
  for (std::int64_t used = step; used <= shared::kSessionLifetimeMs; used += step) {
    now = 1'000'000 + used;
    REQUIRE(sessions.touch(token).has_value());
  }
  now = 1'000'000 + shared::kSessionLifetimeMs + 1;
  CHECK_FALSE(sessions.touch(token).has_value());
}

TEST_CASE("the third wrong e-signature given in a session ends it, and only that session") {
  node::Sessions sessions;
  auto a = sessions.open({"carla", "coordinator"});
  auto b = sessions.open({"carla", "coordinator"});
  CHECK_FALSE(sessions.wrong_signature(a));
  CHECK_FALSE(sessions.wrong_signature(a));
  CHECK(sessions.touch(a).has_value());
  CHECK(sessions.wrong_signature(a));
  CHECK_FALSE(sessions.touch(a).has_value());
  CHECK(sessions.touch(b).has_value());
  CHECK_FALSE(sessions.wrong_signature("unknown"));
}
