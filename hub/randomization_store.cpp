#include "hub/randomization_store.h"

#include <cstdlib>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "crypto/bytes.h"
#include "hub/allocations.h"
#include "hub/audit.h"
#include "hub/hub_state.h"
#include "hub/minimization_streams.h"
#include "hub/hub_state.h"
#include "hub/list_hash.h"
#include "hub/list_segments.h"
#include "sync/seeded_source.h"

namespace irt::hub {

namespace {

// One list per study version. list_csv is the canonical encoding (an
// unblinded artefact, like the seed); list_hash identifies it.
// hub_slice_ledgers held who owns each slot as one JSON document; migration 1
// of hub/slice_store.cpp turns it into rows and drops it.
const std::vector<storage::Migration> kRandomizationStoreMigrations = {
    {1, R"sql(
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
)sql"},
    // 0: the row's list is generated whole from the seed (init, a list
    // extended or replaced); 1: it is the previous row's list followed by this
    // version's segment (hub/list_segments.h). list_csv and list_hash are of
    // the whole list in use either way.
    {2, "ALTER TABLE hub_randomization_lists ADD COLUMN segment INTEGER NOT NULL DEFAULT 0"},
};

// The study as stored for `version` (every stored version loaded when it was stored).
shared::Result<shared::Study> stored_study_version(storage::Database& db, int version) {
  for (auto& v : study_versions(db, true))
    if (v.version == version) {
      auto load = shared::load_study(v.document);
      if (load.study) return std::move(*load.study);
    }
  return shared::make_error(shared::Errc::integrity, "study version " + std::to_string(version) +
                                                         " of a randomization list segment is not stored; restore "
                                                         "the data directory from backup");
}

}  // namespace

shared::Status migrate_randomization(storage::Database& db) { return db.migrate("hub.randomization", kRandomizationStoreMigrations); }

bool has_randomization_list(const shared::Study& study) {
  return study.randomization.method != shared::Method::minimization;
}

shared::Status create_randomization(storage::Database& db, const shared::Study& study, const std::string& actor,
                                    std::int64_t now_ms) {
  if (!has_randomization_list(study)) return {};
  auto seed = crypto::random_bytes(crypto::DeterministicStream::kSeedSize);
  sync::SeededSource source(seed);
  auto list = shared::generate_list(study, source, kSlotsPerStratum);
  if (!list) {
    crypto::secure_zero(seed.data(), seed.size());
    return list.error();
  }
  auto csv = shared::encode_list_csv(*list);
  auto hash = randomization_list_hash(csv);
  db.prepare(
        "INSERT INTO hub_randomization_lists(study_version, method, seed, slots_per_stratum, slots, list_hash, "
        "list_csv, created_ms, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind_all(study.version, shared::to_string(study.randomization.method), storage::BlobView(seed),
                static_cast<std::int64_t>(kSlotsPerStratum), static_cast<std::int64_t>(list->slots.size()),
                storage::BlobView(hash.view()), csv, now_ms, actor)
      .run();
  crypto::secure_zero(seed.data(), seed.size());
  record_audit(db, {now_ms, actor, "randomization.list_generated", study.id, "irt-hub init", "",
                    "study version " + std::to_string(study.version) + ": " + std::to_string(list->slots.size()) +
                        " slots in " + std::to_string(list->strata.count()) + " strata from a recorded seed, list hash " +
                        hash.hex()});
  return {};
}

RandomizationStore::RandomizationStore(storage::Database& db, std::unique_ptr<shared::RandomizationList> list,
                                       crypto::Hash hash)
    : list_(std::move(list)), hash_(hash), slices_(db, *list_) {}

shared::Result<std::unique_ptr<RandomizationStore>> RandomizationStore::load(storage::Database& db,
                                                                             const shared::Study& study) {
  struct Row {
    int version;
    storage::Blob seed;
    std::size_t per_stratum;
    storage::Blob hash;
    bool segment;
  };
  // The last row generated whole, then the segments that follow it.
  std::vector<Row> rows;
  {
    auto st = db.prepare(
        "SELECT study_version, seed, slots_per_stratum, list_hash, segment FROM hub_randomization_lists "
        "ORDER BY study_version");
    while (st.step()) {
      Row r{static_cast<int>(st.int64(0)), st.blob(1), static_cast<std::size_t>(st.int64(2)), st.blob(3),
            st.int64(4) != 0};
      if (!r.segment)
        for (auto& earlier : rows) crypto::secure_zero(earlier.seed.data(), earlier.seed.size());
      if (!r.segment) rows.clear();
      rows.push_back(std::move(r));
    }
  }
  struct Wipe {
    std::vector<Row>& rows;
    ~Wipe() {
      for (auto& r : rows) crypto::secure_zero(r.seed.data(), r.seed.size());
    }
  } wipe{rows};
  if (rows.empty()) {
    if (!has_randomization_list(study)) return std::unique_ptr<RandomizationStore>();
    return shared::make_error(shared::Errc::integrity,
                              "the hub holds no randomization list for study " + study.id +
                                  "; it is made at 'irt-hub init'. Restore the data directory from backup");
  }
  // Without segments the list is generated with the current study: a later
  // version that changed nothing in it (a visit window) runs on it unchanged.
  // With segments, each part is generated with the version that made it.
  shared::Result<shared::Study> base_study = study;
  if (rows.size() > 1) base_study = stored_study_version(db, rows.front().version);
  if (!base_study) return base_study.error();
  sync::SeededSource source(rows.front().seed);
  auto list = shared::generate_list(*base_study, source, rows.front().per_stratum);
  if (!list) return list.error();
  list->study_version = rows.front().version;
  std::vector<Segment> segments{{rows.front().version, std::vector<std::uint32_t>(list->strata.count(), 1)}};
  for (std::size_t i = 1; i < rows.size(); ++i) {
    auto neu = stored_study_version(db, rows[i].version);
    if (!neu) return neu.error();
    auto segment = generate_list_segment(*neu, rows[i].seed, *list, rows[i].per_stratum);
    if (!segment) return segment.error();
    Segment seg{rows[i].version, {}};
    for (std::size_t s = 0; s < segment->strata.count(); ++s)
      seg.first_slot.push_back(segment->slots[segment->stratum_begin[s]].slot);
    segments.push_back(std::move(seg));
    append_list_segment(*list, *segment);
  }
  auto hash = randomization_list_hash(shared::encode_list_csv(*list));
  auto recorded = crypto::Hash::from_view(rows.back().hash);
  if (!recorded || !(hash == *recorded))
    return shared::make_error(shared::Errc::integrity,
                              "the randomization list regenerated from the recorded seed does not match its recorded "
                              "hash; the hub's database is damaged or was edited. Restore it from backup");
  auto store = std::unique_ptr<RandomizationStore>(
      new RandomizationStore(db, std::make_unique<shared::RandomizationList>(std::move(list).value()), hash));
  store->segments_ = std::move(segments);
  return store;
}

int RandomizationStore::segment_version(std::uint32_t stratum, std::uint32_t slot) const {
  int version = segments_.front().version;
  for (const auto& s : segments_)
    if (stratum < s.first_slot.size() && slot >= s.first_slot[stratum]) version = s.version;
  return version;
}

std::vector<std::string> verify_randomization_lists(HubState& hub) {
  auto& db = hub.db();
  // "study version N: ... list hash H" in what the trail recorded, by version.
  std::map<int, std::string> audited;
  for (const auto& e : audit_entries(db)) {
    if (e.action != "randomization.list_generated" && e.action != "randomization.list_extended" &&
        e.action != "randomization.list_segment")
      continue;
    const auto& v = e.new_value;
    const auto at = v.rfind("list hash ");
    if (v.rfind("study version ", 0) != 0 || at == std::string::npos) continue;
    audited[std::atoi(v.c_str() + 14)] = v.substr(at + 10);
  }
  std::vector<std::string> problems;
  // A segment row records the whole list so far: the list before it (the row
  // above, regenerated) with the segment appended, as load() rebuilds it.
  std::optional<shared::RandomizationList> before;
  auto st = db.prepare(
      "SELECT study_version, seed, slots_per_stratum, list_hash, list_csv, segment FROM hub_randomization_lists "
      "ORDER BY study_version");
  while (st.step()) {
    const int version = static_cast<int>(st.int64(0));
    const std::string where = "hub_randomization_lists: study version " + std::to_string(version);
    auto seed = st.blob(1);
    const auto per_stratum = static_cast<std::size_t>(st.int64(2));
    const auto stored_hash = crypto::Hash::from_view(st.blob(3));
    const std::string stored_csv = st.text(4);
    const bool segment = st.int64(5) != 0;
    shared::Result<shared::RandomizationList> list = shared::make_error(
        shared::Errc::integrity, "a segment without the list it follows");
    if (!segment) {
      sync::SeededSource source(seed);
      list = shared::generate_list(hub.study_at(version), source, per_stratum);
      if (list) list->study_version = version;
    } else if (before) {
      auto part = generate_list_segment(hub.study_at(version), seed, *before, per_stratum);
      if (part) {
        list = *before;
        append_list_segment(*list, *part);
      } else {
        list = part.error();
      }
    }
    crypto::secure_zero(seed.data(), seed.size());
    before.reset();
    if (!list) {
      problems.push_back(where + ": the list does not regenerate from its recorded seed (" + list.error().message + ")");
      continue;
    }
    before = *list;
    const auto csv = shared::encode_list_csv(*list);
    const auto hash = randomization_list_hash(csv);
    if (csv != stored_csv) {
      std::size_t line = 1, i = 0;
      while (i < csv.size() && i < stored_csv.size() && csv[i] == stored_csv[i]) line += csv[i++] == '\n';
      problems.push_back(where + ": line " + std::to_string(line) +
                         " of the stored list differs from the list regenerated from the recorded seed");
    }
    if (!stored_hash || *stored_hash != hash)
      problems.push_back(where + ": the stored list hash differs from the hash of the list regenerated from the "
                                 "recorded seed (" + hash.hex() + "): the seed or the hash was edited");
    auto it = audited.find(version);
    if (it == audited.end())
      problems.push_back(where + " has no randomization.list_generated or list_extended audit entry");
    else if (it->second != hash.hex())
      problems.push_back(where + ": the list regenerated from the recorded seed has hash " + hash.hex() +
                         ", the audit trail recorded " + it->second);
  }
  return problems;
}

bool randomization_in_use(storage::Database& db) {
  return any_slot_granted(db) || streams_granted(db) > 0 || any_allocation(db);
}

bool list_design_changed(const shared::Study& old, const shared::Study& neu) {
  const auto a = shared::allocation_of(old), b = shared::allocation_of(neu);
  return a.arms != b.arms || a.ratio != b.ratio || old.randomization.block_sizes != neu.randomization.block_sizes;
}

namespace {

bool same_strata(const shared::Strata& a, const shared::Study& neu) {
  auto b = shared::strata_of(neu);
  if (!b || b->count() != a.count()) return false;
  for (std::size_t s = 0; s < a.count(); ++s)
    if (a.label(s) != b->label(s)) return false;
  return true;
}

// The design change's segment after the list in use, recorded as version
// neu's list (the whole list's hash), the slices moved on, audited.
shared::Result<ListChange> append_segment_for(storage::Database& db, const RandomizationStore& current,
                                              const shared::Study& neu, const std::string& actor,
                                              std::int64_t now_ms, std::vector<shared::SlotVoid>& voided) {
  const auto& before = current.list();
  auto row = db.prepare(
      "SELECT seed, slots_per_stratum FROM hub_randomization_lists WHERE segment = 0 "
      "ORDER BY study_version DESC LIMIT 1");
  if (!row.step())
    return shared::make_error(shared::Errc::integrity, "the randomization list in use is not recorded; restore the "
                                                       "data directory from backup");
  auto seed = row.blob(0);
  const auto per_stratum = static_cast<std::size_t>(row.int64(1));
  struct Wipe {
    storage::Blob& b;
    ~Wipe() { crypto::secure_zero(b.data(), b.size()); }
  } wipe{seed};
  auto segment = generate_list_segment(neu, seed, before, per_stratum);
  if (!segment) return segment.error();
  shared::RandomizationList whole = before;
  append_list_segment(whole, *segment);
  const auto csv = shared::encode_list_csv(whole);
  const auto hash = randomization_list_hash(csv);
  db.prepare(
        "INSERT INTO hub_randomization_lists(study_version, method, seed, slots_per_stratum, slots, list_hash, "
        "list_csv, created_ms, created_by, segment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)")
      .bind_all(neu.version, shared::to_string(neu.randomization.method), storage::BlobView(seed),
                static_cast<std::int64_t>(per_stratum), static_cast<std::int64_t>(whole.slots.size()),
                storage::BlobView(hash.view()), csv, now_ms, actor)
      .run();
  auto voids = start_list_segment(db, before, neu.version);
  // Counts and hashes only: the ratio and the arms stay out of the trail.
  record_audit(db, {now_ms, actor, "randomization.list_segment", neu.id, "study amendment (design change)",
                    "study version " + std::to_string(before.study_version) + ": " +
                        std::to_string(before.slots.size()) + " slots, list hash " + current.list_hash().hex(),
                    "study version " + std::to_string(neu.version) + ": a segment of " +
                        std::to_string(segment->slots.size()) + " slots in " +
                        std::to_string(segment->strata.count()) +
                        " strata after the list in use, from a seed derived from the recorded one; " +
                        std::to_string(whole.slots.size()) + " slots in all, list hash " + hash.hex()});
  voided.insert(voided.end(), std::make_move_iterator(voids.begin()), std::make_move_iterator(voids.end()));
  return ListChange::segment;
}

}  // namespace

shared::Result<ListChange> amend_randomization(storage::Database& db, const RandomizationStore* current,
                                               const shared::Study& old, const shared::Study& neu,
                                               const std::string& actor, std::int64_t now_ms,
                                               std::vector<shared::SlotVoid>& voided) {
  if (!has_randomization_list(neu)) {
    if (current && randomization_in_use(db))
      return shared::make_error(shared::Errc::conflict,
                                "randomization.method: the randomization list is in use; its method cannot change "
                                "mid-study. Keep the method of the current version");
    return ListChange::unchanged;
  }
  if (!current) {
    if (randomization_in_use(db))
      return shared::make_error(shared::Errc::conflict,
                                "randomization.method: minimization is in use; its method cannot change mid-study. "
                                "Keep the method of the current version");
    if (auto st = create_randomization(db, neu, actor, now_ms); !st) return st.error();
    return ListChange::replaced;
  }
  const auto& old_list = current->list();
  if (randomization_in_use(db) && list_design_changed(old, neu)) {
    if (!same_strata(old_list.strata, neu))
      return shared::make_error(shared::Errc::conflict,
                                "randomization: the amendment changes the allocation (an arm's ratio, an arm added "
                                "or the block sizes) and the strata together; amend them in two versions, the "
                                "strata first");
    return append_segment_for(db, *current, neu, actor, now_ms, voided);
  }
  if (current->has_segments()) {
    if (same_strata(old_list.strata, neu)) return ListChange::unchanged;
    return shared::make_error(shared::Errc::conflict,
                              "randomization: strata cannot be added to a list that a design change continued "
                              "with a segment (a ratio changed or an arm added); keep the strata of version " +
                                  std::to_string(old_list.study_version));
  }
  auto row = db.prepare("SELECT seed, slots_per_stratum FROM hub_randomization_lists WHERE study_version = ?");
  row.bind(1, old_list.study_version);
  if (!row.step())
    return shared::make_error(shared::Errc::integrity, "the randomization list in use is not recorded; restore the "
                                                       "data directory from backup");
  auto seed = row.blob(0);
  const auto per_stratum = static_cast<std::size_t>(row.int64(1));
  struct Wipe {
    storage::Blob& b;
    ~Wipe() { crypto::secure_zero(b.data(), b.size()); }
  } wipe{seed};
  sync::SeededSource source(seed);
  auto list = shared::generate_list(neu, source, per_stratum);
  const std::string old_csv = shared::encode_list_csv(old_list);
  const std::string new_csv = list ? shared::encode_list_csv(*list) : std::string();
  if (list && new_csv == old_csv) return ListChange::unchanged;
  const bool in_use = randomization_in_use(db);
  // Randomness is drawn stratum by stratum in index order, so a version that
  // only adds strata after the existing ones (a site appended to the first
  // stratification factor) regenerates the list in use byte for byte, then
  // the new strata: the same seed extends it.
  if (list && new_csv.starts_with(old_csv)) {
    auto hash = randomization_list_hash(new_csv);
    db.prepare(
          "INSERT INTO hub_randomization_lists(study_version, method, seed, slots_per_stratum, slots, list_hash, "
          "list_csv, created_ms, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .bind_all(neu.version, shared::to_string(neu.randomization.method), storage::BlobView(seed),
                  static_cast<std::int64_t>(per_stratum), static_cast<std::int64_t>(list->slots.size()),
                  storage::BlobView(hash.view()), new_csv, now_ms, actor)
        .run();
    // Who owns each slot carries over: the slots keep their stratum and number.
    move_slices_to_version(db, old_list.study_version, neu.version);
    record_audit(db, {now_ms, actor, "randomization.list_extended", neu.id, "study amendment", 
                      "study version " + std::to_string(old_list.study_version) + ": " +
                          std::to_string(old_list.slots.size()) + " slots in " +
                          std::to_string(old_list.strata.count()) + " strata, list hash " +
                          current->list_hash().hex(),
                      "study version " + std::to_string(neu.version) + ": " + std::to_string(list->slots.size()) +
                          " slots in " + std::to_string(list->strata.count()) +
                          " strata from the recorded seed (the first " + std::to_string(old_list.strata.count()) +
                          " unchanged), list hash " + hash.hex()});
    return ListChange::extended;
  }
  if (in_use)
    return shared::make_error(
        shared::Errc::conflict,
        "randomization: the amendment would change the randomization list in use (its arms, ratio, block sizes or "
        "strata other than strata added after the existing ones); keep them as in version " +
            std::to_string(old_list.study_version) + ", or add a site to the first stratification factor only");
  // Nothing was granted from the list yet: the new version gets its own.
  if (auto st = create_randomization(db, neu, actor, now_ms); !st) return st.error();
  return ListChange::replaced;
}

shared::Result<std::string> randomization_seed_hex(storage::Database& db, int study_version) {
  auto st = db.prepare("SELECT seed FROM hub_randomization_lists WHERE study_version = ?");
  st.bind(1, study_version);
  if (!st.step())
    return shared::make_error(shared::Errc::not_found, "study version " + std::to_string(study_version) +
                                                           " has no randomization list (minimization has none)");
  auto seed = st.blob(0);
  auto hex = crypto::to_hex(seed);
  crypto::secure_zero(seed.data(), seed.size());
  return hex;
}

}  // namespace irt::hub
