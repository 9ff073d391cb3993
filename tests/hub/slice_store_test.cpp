// Tests for hub/slice_store.h: who owns each slot, stored as rows, and the
// migration that turns the earlier single JSON document into those rows.
#include "hub/slice_store.h"

#include <doctest/doctest.h>

#include "hub/randomization_store.h"
#include "shared/study.h"
#include "sync/seeded_source.h"
#include "tests/hub/hub_fixture.h"

using namespace irt;
using test::HubFixture;

namespace {

std::int64_t count_rows(storage::Database& db, const std::string& sql) {
  auto st = db.prepare(sql);
  st.step();
  return st.int64(0);
}

// Every slot of every stratum in the same state, with the same owner.
void check_same(const shared::RandomizationList& list, const shared::SliceLedger& expected, const hub::SliceStore& rows) {
  for (const auto& s : list.slots) {
    CAPTURE(s.stratum);
    CAPTURE(s.slot);
    REQUIRE(rows.state(s.stratum, s.slot) == expected.state(s.stratum, s.slot));
    const std::string* owner = expected.owner(s.stratum, s.slot);
    auto stored = rows.owner(s.stratum, s.slot);
    REQUIRE(stored.has_value() == (owner != nullptr));
    if (owner) REQUIRE(*stored == *owner);
  }
}

// The schema hub.randomization's migration 1 made before slot ownership became rows.
const char* kOldRandomizationSchema = R"sql(
CREATE TABLE hub_randomization_lists (
  study_version INTEGER PRIMARY KEY,
  method TEXT NOT NULL,
  seed BLOB NOT NULL,
  slots_per_stratum INTEGER NOT NULL,
  slots INTEGER NOT NULL,
  list_hash BLOB NOT NULL,
  list_csv TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL
);
CREATE TABLE hub_slice_ledgers (
  study_version INTEGER PRIMARY KEY REFERENCES hub_randomization_lists(study_version),
  state TEXT NOT NULL,
  updated_ms INTEGER NOT NULL
);
)sql";

}  // namespace

TEST_CASE("slot ownership is kept as rows: a grant writes its slots, a use changes one row, a revocation voids the "
          "rest") {
  HubFixture f;
  auto& db = f.hub->db();
  auto* store = f.hub->randomization();
  REQUIRE(store);
  const auto& list = store->list();
  auto& rows = store->slices();
  shared::SliceLedger memory(list);  // the same rule, in memory

  auto a = rows.grant("101-N1", 0, 5);
  auto a_mem = memory.grant("101-N1", 0, 5);
  REQUIRE(a.ok());
  CHECK(*a == *a_mem);
  const auto granted = static_cast<std::int64_t>(a->slots.size());
  CHECK(count_rows(db, "SELECT count(*) FROM hub_slice_slots") == granted);
  CHECK(rows.free_slots("101-N1", 0) == a->slots.size());
  CHECK(rows.outstanding(0) == a->slots.size());

  // A cap cuts the next block: its rest is voided, with no owner.
  auto b = rows.grant("101-N2", 0, 5, static_cast<long>(a->slots.size()) + 1);
  auto b_mem = memory.grant("101-N2", 0, 5, static_cast<long>(a->slots.size()) + 1);
  REQUIRE(b.ok());
  CHECK(*b == *b_mem);
  CHECK(b->slots.size() == 1);
  CHECK(b->grant_id == a->grant_id + 1);

  auto slot = a->slots.front().slot;
  CHECK(rows.record_use("101-N1", 0, slot).ok());
  CHECK(memory.record_use("101-N1", 0, slot).ok());
  CHECK(rows.used(0) == 1);
  CHECK(count_rows(db, "SELECT count(*) FROM hub_slice_slots WHERE state = 'used'") == 1);
  // The same refusals as the in-memory ledger, word for word.
  auto twice = rows.record_use("101-N1", 0, slot);
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error().code == shared::Errc::conflict);
  CHECK(twice.error().message == memory.record_use("101-N1", 0, slot).error().message);
  auto stranger = rows.record_use("101-N2", 0, a->slots.back().slot);
  REQUIRE_FALSE(stranger.ok());
  CHECK(stranger.error().code == shared::Errc::forbidden);
  CHECK(stranger.error().message == memory.record_use("101-N2", 0, a->slots.back().slot).error().message);

  auto voided = rows.revoke("101-N1");
  CHECK(voided == memory.revoke("101-N1"));
  CHECK(rows.free_slots("101-N1", 0) == 0);
  check_same(list, memory, rows);
  // The next grant starts after everything granted or voided.
  auto c = rows.grant("101-N3", 0, 3);
  REQUIRE(c.ok());
  CHECK(*c == *memory.grant("101-N3", 0, 3));
}

TEST_CASE("a slot change that rolls back leaves no trace in the rows") {
  HubFixture f;
  auto& db = f.hub->db();
  auto& rows = f.hub->randomization()->slices();
  {
    storage::Transaction tx(db);
    REQUIRE(rows.grant("101-N1", 0, 4).ok());
    tx.commit();
  }
  {
    storage::Transaction tx(db);
    REQUIRE(rows.record_use("101-N1", 0, 1).ok());
    REQUIRE(rows.grant("101-N1", 1, 4).ok());
  }  // rolled back
  CHECK(rows.state(0, 1) == shared::SliceLedger::State::granted);
  CHECK(rows.outstanding(1) == 0);
  CHECK(rows.record_use("101-N1", 0, 1).ok());
}

TEST_CASE("the slice ledger a hub stored as one JSON document is migrated into rows, slot for slot") {
  test::HubDatabase store;
  auto& db = store.db;
  REQUIRE(db.migrate("hub.randomization", {{1, kOldRandomizationSchema}}).ok());

  auto load = shared::load_study(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
  REQUIRE(load.study);
  auto source = sync::SeededSource(crypto::Bytes(32, 0x42));
  auto list = shared::generate_list(*load.study, source, hub::kSlotsPerStratum);
  REQUIRE(list.ok());
  REQUIRE(list->strata.count() >= 2);
  db.prepare("INSERT INTO hub_randomization_lists(study_version, method, seed, slots_per_stratum, slots, list_hash, "
             "list_csv, created_ms, created_by) VALUES (?, 'permuted_blocks', x'00', ?, ?, x'00', ?, 0, 'tester')")
      .bind_all(list->study_version, static_cast<std::int64_t>(hub::kSlotsPerStratum),
                static_cast<std::int64_t>(list->slots.size()), shared::encode_list_csv(*list))
      .run();

  // What the old code did: grants, uses, a cap that cut a block, a revocation.
  shared::SliceLedger old(*list);
  const auto last = static_cast<std::uint32_t>(list->strata.count() - 1);
  auto g1 = old.grant("101-N1", 0, 6);
  auto g2 = old.grant("101-N2", last, 3, 1);
  auto g3 = old.grant("101-N2", 0, 2);
  REQUIRE((g1.ok() && g2.ok() && g3.ok()));
  REQUIRE(old.record_use("101-N1", 0, g1->slots[0].slot).ok());
  REQUIRE(old.record_use("101-N1", 0, g1->slots[1].slot).ok());
  REQUIRE(old.record_use("101-N2", last, g2->slots[0].slot).ok());
  old.revoke("101-N2");
  db.prepare("INSERT INTO hub_slice_ledgers(study_version, state, updated_ms) VALUES (?, ?, 0)")
      .bind_all(list->study_version, old.state_json().dump())
      .run();

  REQUIRE(hub::migrate_slices(db).ok());
  CHECK_FALSE(test::has_table(db, "hub_slice_ledgers"));
  CHECK(db.schema_version("hub.slices") == 1);
  hub::SliceStore rows(db, *list);
  check_same(*list, old, rows);
  CHECK(count_rows(db, "SELECT count(*) FROM hub_slice_slots WHERE state = 'used'") == 3);
  // Grants go on where the old ledger stopped, with the next grant id.
  for (std::uint32_t s : {0u, last}) {
    auto next = rows.grant("101-N3", s, 4);
    REQUIRE(next.ok());
    CHECK(*next == *old.grant("101-N3", s, 4));
  }
}

TEST_CASE("a stored slice document that does not fit its list stops the migration, which changes nothing") {
  test::HubDatabase store;
  auto& db = store.db;
  REQUIRE(db.migrate("hub.randomization", {{1, kOldRandomizationSchema}}).ok());
  auto load = shared::load_study(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
  REQUIRE(load.study);
  auto source = sync::SeededSource(crypto::Bytes(32, 0x43));
  auto list = shared::generate_list(*load.study, source, hub::kSlotsPerStratum);
  REQUIRE(list.ok());
  db.prepare("INSERT INTO hub_randomization_lists(study_version, method, seed, slots_per_stratum, slots, list_hash, "
             "list_csv, created_ms, created_by) VALUES (?, 'permuted_blocks', x'00', 1, 1, x'00', ?, 0, 'tester')")
      .bind_all(list->study_version, shared::encode_list_csv(*list))
      .run();
  auto doc = shared::SliceLedger(*list).state_json();
  doc["states"] = "gg";  // two slots, where the list has many
  db.prepare("INSERT INTO hub_slice_ledgers(study_version, state, updated_ms) VALUES (?, ?, 0)")
      .bind_all(list->study_version, doc.dump())
      .run();
  std::string refused;
  try {
    (void)hub::migrate_slices(db);
  } catch (const storage::StorageError& e) {
    refused = e.what();
  }
  CHECK(refused.find("does not fit its randomization list") != std::string::npos);
  CHECK(db.schema_version("hub.slices") == 0);
  CHECK(count_rows(db, "SELECT count(*) FROM hub_slice_ledgers") == 1);
}
