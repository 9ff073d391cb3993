// Sessions of the hub's API (hub/sessions.h) and the study setting that times them.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "hub/sessions.h"
#include "tests/hub/hub_fixture.h"

using namespace irt;
using nlohmann::json;
using test::HubFixture;
using test::kHubNow;

TEST_CASE("a session ends once unused for the idle time, counted from its last use, and never comes back") {
  HubFixture f;
  auto& db = f.hub->db();
  const auto idle = hub::session_idle_ms(f.hub->study());
  CHECK(idle == 15 * 60 * 1000);
  auto s = hub::open_session(db, "ada", kHubNow);
  CHECK(hub::touch_session(db, s.token, idle, kHubNow + idle - 1));
  // Used at kHubNow + idle - 1: the idle time counts from there.
  CHECK(hub::touch_session(db, s.token, idle, kHubNow + 2 * idle - 2));
  CHECK_FALSE(hub::touch_session(db, s.token, idle, kHubNow + 4 * idle));
  CHECK_FALSE(hub::touch_session(db, s.token, idle, kHubNow));  // ended: never back
  CHECK_FALSE(hub::touch_session(db, "not a token", idle, kHubNow));

}

TEST_CASE("a session in constant use ends a working day after its login") {
  HubFixture f;
  auto& db = f.hub->db();
  const auto idle = hub::session_idle_ms(f.hub->study());
  auto s = hub::open_session(db, "ada", kHubNow);
  for (std::int64_t used = idle / 2; used <= shared::kSessionLifetimeMs; used += idle / 2)
    REQUIRE(hub::touch_session(db, s.token, idle, kHubNow + used));
  CHECK_FALSE(hub::touch_session(db, s.token, idle, kHubNow + shared::kSessionLifetimeMs + 1));
}

TEST_CASE("the third wrong e-signature given in a session ends it, and only that session") {
  HubFixture f;
  auto& db = f.hub->db();
  const auto idle = hub::session_idle_ms(f.hub->study());
  auto a = hub::open_session(db, "ada", kHubNow);
  auto b = hub::open_session(db, "ada", kHubNow);
  CHECK_FALSE(hub::wrong_signature(db, a.id));
  CHECK_FALSE(hub::wrong_signature(db, a.id));
  CHECK(hub::touch_session(db, a.token, idle, kHubNow));
  CHECK(hub::wrong_signature(db, a.id));
  CHECK_FALSE(hub::touch_session(db, a.token, idle, kHubNow));
  CHECK(hub::touch_session(db, b.token, idle, kHubNow));
}

TEST_CASE("ending a user's sessions keeps only the one named, and no other user's") {
  HubFixture f;
  auto& db = f.hub->db();
  const auto idle = hub::session_idle_ms(f.hub->study());
  auto a = hub::open_session(db, "ada", kHubNow), b = hub::open_session(db, "ada", kHubNow),
       c = hub::open_session(db, "bob", kHubNow);
  CHECK(hub::end_sessions_of(db, "ada", a.id) == 1);
  CHECK(hub::touch_session(db, a.token, idle, kHubNow));
  CHECK_FALSE(hub::touch_session(db, b.token, idle, kHubNow));
  CHECK(hub::touch_session(db, c.token, idle, kHubNow));
}

TEST_CASE("the study's session_idle_minutes sets the idle time") {
  auto doc = json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
  doc["session_idle_minutes"] = 2;
  auto load = shared::load_study(doc.dump());
  REQUIRE(load.study);
  CHECK(hub::session_idle_ms(*load.study) == 2 * 60 * 1000);
  doc["session_idle_minutes"] = 0;
  auto bad = shared::load_study(doc.dump());
  REQUIRE_FALSE(bad.study);
  CHECK(bad.errors.front().find("session_idle_minutes") != std::string::npos);
}

