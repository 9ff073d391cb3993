// A real hub data directory in a temporary folder, for the hub's unit tests.
// The tests run twice (tests/CMakeLists.txt): "hub:" with the hub's tables in
// DATA/hub.db, and "hub-postgresql:" (IRT_TEST_HUB_ENGINE=postgresql) with
// them in a fresh schema of the PostgreSQL test cluster, as `irt-hub init --db`
// keeps them there.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "crypto/password.h"
#include "hub/hub_state.h"
#include "hub/users.h"
#include "sync/directive.h"
#include "tests/support/postgres_database.h"
#include "tests/support/test_support.h"

namespace irt::test {

inline constexpr std::int64_t kHubNow = 1767225600000;  // 2026-01-01T00:00:00Z
inline constexpr std::int64_t kHour = 3600 * 1000;
// The password of the users HubFixture::add_user adds.
inline const std::string kUserPassword = "a long enough password";

// The X25519 key of each node a test enrolled, by node id (the last one
// enrolled under that id): what opens its directives' sealed fields.
inline std::map<std::string, std::shared_ptr<const crypto::BoxKeyPair>>& enrolled_box_keys() {
  static std::map<std::string, std::shared_ptr<const crypto::BoxKeyPair>> keys;
  return keys;
}
inline void remember_node_key(const std::string& node_id, const crypto::SigningKey& key) {
  enrolled_box_keys()[node_id] = std::make_shared<const crypto::BoxKeyPair>(crypto::BoxKeyPair::from_signing_key(key));
}
// A directive's payload with its sealed fields opened as its node opens them
// (the node's key remembered by remember_node_key).
inline std::string opened_payload(const sync::SignedDirective& d) {
  auto text = crypto::to_string(d.body.payload);
  auto key = enrolled_box_keys().find(d.body.node_id);
  if (key == enrolled_box_keys().end()) {
    const std::string unknown = "no key remembered for node " + d.body.node_id;
    CHECK_MESSAGE(text.find("\"sealed\"") == std::string::npos, unknown);
    return text;
  }
  auto opened = sync::open_sealed_fields(text, *key->second);
  REQUIRE_MESSAGE(opened.ok(), opened.error().message);
  return *opened;
}

// A fresh PostgreSQL schema when the run puts the hub there, else nullptr (SQLite).
inline std::unique_ptr<PostgresSchema> hub_postgres() {
  return hub_engine_is_postgresql() ? std::make_unique<PostgresSchema>() : nullptr;
}

struct HubFixture {
  TempDir dir;
  std::unique_ptr<PostgresSchema> pg = hub_postgres();  // outlives the hub, which holds a connection to it
  std::unique_ptr<hub::HubState> hub;

  // A study document given whole (an example changed by the test).
  struct StudyText {
    std::string text;
  };

  explicit HubFixture(const std::string& study = "packaging/examples/study-blocks.json")
      : HubFixture(StudyText{read_file(source_path(study))}) {}
  explicit HubFixture(const StudyText& study) {
    auto created = hub::HubState::create(dir / "hub", study.text, "tester", kHubNow, test::kHubPassphrase, crypto::kTest, pg ? pg->url() : "");
    REQUIRE_MESSAGE(created.ok(), created.error().message);
    hub = std::move(created.value());
  }

  // A hub user with the password kUserPassword, added by "tester".
  void add_user(const std::string& name, const std::string& role, std::vector<std::string> sites = {}) {
    auto r = hub::add_user(*hub, {name, role, std::move(sites), kUserPassword}, crypto::kTest, "tester", kHubNow);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
  }
};

// A fresh, empty database on the run's engine, for tests of a module's tables without a hub.
struct HubDatabase {
  TempDir dir;
  std::unique_ptr<PostgresSchema> pg = hub_postgres();
  storage::Database db = open();

 private:
  storage::Database open() {
    if (pg) return pg->open();
    auto opened = storage::Database::open(dir / "hub.db");
    REQUIRE_MESSAGE(opened.ok(), opened.error().message);
    return std::move(opened).value();
  }
};

inline bool has_table(storage::Database& db, const std::string& name) {
  auto tables = db.tables();
  return std::find(tables.begin(), tables.end(), name) != tables.end();
}

}  // namespace irt::test
