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
