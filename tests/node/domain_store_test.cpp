#include "node/domain_store.h"

#include <doctest/doctest.h>

#include "node/site_operations.h"
#include "tests/support/node_fixture.h"
#include "tests/support/test_support.h"

using namespace irt;
using test::kCoordinator;

namespace {

// Every file SQLite may have written for the database: main file, WAL, journal.
std::string raw_files(const std::filesystem::path& dir) {
  std::string all;
  for (const char* suffix : {"", "-wal", "-journal", "-shm"}) {
    auto p = dir / (std::string("node.db") + suffix);
    if (std::filesystem::exists(p)) all += test::read_file(p);
  }
  return all;
}

}  // namespace

TEST_CASE("the raw database - WAL and journal hold no participant number - arm or treatment") {
  test::TempDir tmp;
  test::NodeFixture fixture(tmp / "node");
  std::vector<std::string> numbers;
  {
    auto state = fixture.open();
    node::SiteOperations ops(*state);
    std::vector<std::string> yes(state->domain().study()->eligibility.size(), "yes");
    for (int i = 0; i < 6; ++i) {
      auto r = ops.screen(kCoordinator, {{{"diabetes", i % 2 ? "yes" : "no"}}, yes, ""});
      REQUIRE(r.ok());
      numbers.push_back(r->participant.number);
      auto signature = node::check_password(node::find_user(state->log(), kCoordinator.user), kCoordinator.user,
                                            test::kFixturePassword);
      REQUIRE(ops.randomize(kCoordinator, r->participant.number, signature).ok());
    }
    // Keep the WAL: read the files while the connection is open.
    auto raw = raw_files(tmp / "node");
    REQUIRE(raw.size() > 10000);
    const auto& study = *state->domain().study();
    std::vector<std::string> secrets = numbers;
    for (const auto& a : study.arms) {
      secrets.push_back(a.name);
      secrets.push_back("\"arm\":\"" + a.id + "\"");
    }
    // Ids in their JSON quotes: a bare 3-letter id ("PBO") turns up in random ciphertext now and then.
    for (const auto& k : study.kit_types) {
      secrets.push_back(k.name);
      secrets.push_back("\"" + k.id + "\"");
    }
    secrets.push_back("Velcardin");
    secrets.push_back("Placebo");
    for (const auto& s : secrets) CHECK_MESSAGE(raw.find(s) == std::string::npos, "found in clear: " << s);
  }
  auto raw = raw_files(tmp / "node");
  for (const auto& n : numbers) CHECK(raw.find(n) == std::string::npos);
  CHECK(raw.find("Velcardin") == std::string::npos);
}

TEST_CASE("a kit whose clear status is edited in the file no longer loads") {
  test::TempDir tmp;
  test::NodeFixture fixture(tmp / "node");
  std::string kit = fixture.first_shipment().kits[0].kit_number;
  {
    auto state = fixture.open();
    node::SiteOperations ops(*state);
    REQUIRE(ops.quarantine(kCoordinator, kit, "excursion", std::nullopt).ok());
    state->db().prepare("UPDATE node_kits SET status = 'available' WHERE kit_number = ?").bind_all(kit).run();
  }
  auto reopened = node::NodeState::open(tmp / "node", test::kFixturePassphrase);
  REQUIRE_FALSE(reopened.ok());
  CHECK(reopened.error().code == shared::Errc::integrity);
  CHECK(reopened.error().message.find("kit " + kit) != std::string::npos);
}

TEST_CASE("two participant rows swapped in the file fail to authenticate") {
  test::TempDir tmp;
  test::NodeFixture fixture(tmp / "node");
  {
    auto state = fixture.open();
    node::SiteOperations ops(*state);
    std::vector<std::string> yes(state->domain().study()->eligibility.size(), "yes");
    REQUIRE(ops.screen(kCoordinator, {{{"diabetes", "yes"}}, yes, ""}).ok());
    REQUIRE(ops.screen(kCoordinator, {{{"diabetes", "no"}}, yes, ""}).ok());
    state->db().exec("UPDATE node_participants SET sealed = (SELECT sealed FROM node_participants WHERE id = 2) "
                     "WHERE id = 1");
  }
  auto reopened = node::NodeState::open(tmp / "node", test::kFixturePassphrase);
  REQUIRE_FALSE(reopened.ok());
  CHECK(reopened.error().message.find("participant row 1") != std::string::npos);
}

TEST_CASE("a slot granted twice is refused and the directive is not applied") {
  test::TempDir tmp;
  test::NodeFixture fixture(tmp / "node");
  auto state = fixture.open();
  auto before = state->log().applied_directive_seq();
  shared::GrantSlots g;
  g.study_version = 1;
  g.grants.push_back({fixture.node_id(), 99, 0, state->domain().strata()->label(0), {{1, 1, 4, "A"}}});
  auto st = fixture.send(*state, "grant.slots", g);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("granted twice") != std::string::npos);
  CHECK(state->log().applied_directive_seq() == before);
}

TEST_CASE("voided slots are never used - used ones stay used") {
  test::TempDir tmp;
  test::NodeFixture fixture(tmp / "node");
  auto state = fixture.open();
  auto free = state->domain().free_slots(0);
  REQUIRE(free >= 2);
  shared::GrantSlots g;
  g.study_version = 1;
  g.voids.push_back({fixture.node_id(), 0, {1, 2}});
  REQUIRE(fixture.send(*state, "grant.slots", g).ok());
  CHECK(state->domain().free_slots(0) == free - 2);
  CHECK(state->domain().next_free_slot(0)->slot == 3);
}

TEST_CASE("participant numbers run out with a message that asks for a sync") {
  test::TempDir tmp;
  test::NodeFixtureOptions o;
  o.numbers = 2;
  test::NodeFixture fixture(tmp / "node", o);
  auto state = fixture.open();
  node::SiteOperations ops(*state);
  std::vector<std::string> yes(state->domain().study()->eligibility.size(), "yes");
  REQUIRE(ops.screen(kCoordinator, {{{"diabetes", "yes"}}, yes, ""}).ok());
  REQUIRE(ops.screen(kCoordinator, {{{"diabetes", "yes"}}, yes, ""}).ok());
  auto r = ops.screen(kCoordinator, {{{"diabetes", "yes"}}, yes, ""});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::exhausted);
  CHECK(r.error().message.find("sync with the hub to receive a new range") != std::string::npos);
  REQUIRE(fixture.send(*state, "grant.numbers", shared::NumberRangeGrant{2, "101", 500, 510, 3}).ok());
  CHECK(ops.screen(kCoordinator, {{{"diabetes", "yes"}}, yes, ""})->participant.number == "101-500");
}

namespace {

// Flips one byte of a sealed value's ciphertext in the closed database file
// itself: its nonce (the first 24 bytes, in the row's first page) locates it.
void flip_sealed_in_file(const std::filesystem::path& dir, const std::string& select) {
  crypto::Bytes sealed;
  {
    auto db = storage::Database::open(dir / "node.db", {.create = false});
    REQUIRE(db.ok());
    auto st = db->prepare(select);
    REQUIRE(st.step());
    sealed = st.blob(0);
  }
  REQUIRE_FALSE(std::filesystem::exists(dir / "node.db-wal"));  // every change is in the file
  REQUIRE(sealed.size() > 40);
  test::flip_byte_after(dir / "node.db", std::string(sealed.begin(), sealed.begin() + 24), 30);
}

}  // namespace

TEST_CASE("a study configuration with one byte changed in the file is an integrity error, never no study") {
  test::TempDir tmp;
  test::NodeFixture fixture(tmp / "node");
  flip_sealed_in_file(tmp / "node", "SELECT sealed FROM node_sealed WHERE key = 'study'");
  auto reopened = node::NodeState::open(tmp / "node", test::kFixturePassphrase);
  REQUIRE_FALSE(reopened.ok());
  CHECK(reopened.error().code == shared::Errc::integrity);
  CHECK(reopened.error().message ==
        "node data is damaged (the sealed record 'study' does not authenticate: edited, moved or corrupted); "
        "restore the data directory from backup and report it to the central team");
}

TEST_CASE("a roster with one byte changed in the file refuses every login as damage, not as an unknown user") {
  test::TempDir tmp;
  test::NodeFixture fixture(tmp / "node");
  flip_sealed_in_file(tmp / "node", "SELECT sealed FROM node_sealed WHERE key = 'roster'");
  auto state = fixture.open();  // the trial records still authenticate
  REQUIRE(state->domain().study() != nullptr);
  auto roster = node::load_roster(state->log());
  REQUIRE_FALSE(roster.ok());
  CHECK(roster.error().code == shared::Errc::integrity);
  node::SiteOperations ops(*state);
  for (const char* user : {"carla", "nobody"}) {
    CAPTURE(user);
    auto login = ops.login(node::check_password(node::find_user(state->log(), user), user, test::kFixturePassword));
    REQUIRE_FALSE(login.ok());
    CHECK(login.error().code == shared::Errc::integrity);
    CHECK(login.error().message ==
          "node data is damaged (the sealed record 'roster' does not authenticate: edited, moved or corrupted); "
          "restore the data directory from backup and report it to the central team");
  }
}
