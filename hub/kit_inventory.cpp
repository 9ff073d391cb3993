#include "hub/kit_inventory.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <unordered_set>

#include "crypto/bytes.h"
#include "crypto/hash.h"
#include "hub/audit.h"
#include "hub/lots.h"
#include "hub/shipments.h"
#include "sync/seeded_source.h"
#include "shared/civil_date.h"
#include "shared/command_line.h"
#include "shared/kit_numbers.h"

namespace irt::hub {

namespace {

constexpr const char* kKitListHashDomain = "irt/kitlist/v1";

const std::vector<storage::Migration> kKitInventoryMigrations = {
    {1, R"sql(
CREATE TABLE hub_kit_lists (
  id INTEGER PRIMARY KEY,
  seed BLOB NOT NULL,
  digits INTEGER NOT NULL,
  kits INTEGER NOT NULL,
  list_hash BLOB NOT NULL,
  created_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL
);
CREATE TABLE hub_shipments (
  id INTEGER PRIMARY KEY,
  shipment_id TEXT NOT NULL UNIQUE,
  node_id TEXT NOT NULL,
  site_id TEXT NOT NULL,
  depot_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  shipped_on TEXT NOT NULL,
  kits INTEGER NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE TABLE hub_kits (
  kit_number TEXT PRIMARY KEY,
  list_id INTEGER NOT NULL REFERENCES hub_kit_lists(id),
  kit_type TEXT NOT NULL,
  lot TEXT NOT NULL,
  expiry TEXT NOT NULL,
  custody_kind TEXT NOT NULL CHECK (custody_kind IN ('depot', 'node')),
  custody_id TEXT NOT NULL,
  status TEXT NOT NULL,
  shipment_id TEXT NOT NULL DEFAULT '',
  participant TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX hub_kits_custody ON hub_kits(custody_kind, custody_id, status, kit_type, expiry);
)sql"},
    // The shipment lifecycle (hub/shipments.h): shipments made before it had left their depot.
    {2, R"sql(
ALTER TABLE hub_shipments ADD COLUMN status TEXT NOT NULL DEFAULT 'shipped';
ALTER TABLE hub_shipments ADD COLUMN courier TEXT NOT NULL DEFAULT '';
ALTER TABLE hub_shipments ADD COLUMN tracking TEXT NOT NULL DEFAULT '';
ALTER TABLE hub_shipments ADD COLUMN updated_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX hub_kits_shipment ON hub_kits(shipment_id);
)sql"},
    // Depot-to-depot transfers and site-to-depot returns (hub/depot_shipments.h):
    // the receiving depot, and every kit that travelled in one with its receipt.
    {3, R"sql(
ALTER TABLE hub_shipments ADD COLUMN to_depot TEXT NOT NULL DEFAULT '';
CREATE TABLE hub_shipment_kits (
  shipment_id TEXT NOT NULL,
  kit_number TEXT NOT NULL,
  outcome TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (shipment_id, kit_number)
);
CREATE INDEX hub_shipment_kits_kit ON hub_shipment_kits(kit_number);
)sql"},
    // Each kit's type and lot as its list brought it (never updated), which
    // verify_kits compares hub_kits with; the kits of lists made before it
    // are copied as they stand.
    {4, R"sql(
CREATE TABLE hub_kit_list_kits (
  kit_number TEXT PRIMARY KEY,
  list_id INTEGER NOT NULL,
  kit_type TEXT NOT NULL,
  lot TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO hub_kit_list_kits(kit_number, list_id, kit_type, lot) SELECT kit_number, list_id, kit_type, lot FROM hub_kits;
)sql"},
    // Each kit's state as it stood when kit states began to be audited
    // ("kit.state", change_kit_state), for the kits no longer where their
    // list put them: verify_kit_states starts from it. Empty on a new hub.
    {5, R"sql(
CREATE TABLE hub_kit_state_baseline (
  kit_number TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  custody_kind TEXT NOT NULL,
  custody_id TEXT NOT NULL,
  participant TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO hub_kit_state_baseline(kit_number, status, custody_kind, custody_id, participant)
  SELECT kit_number, status, custody_kind, custody_id, participant FROM hub_kits
  WHERE NOT (status = 'available' AND custody_kind = 'depot' AND participant = '');
)sql"},
};

constexpr const char* kKitListKitsHashDomain = "irt/kitlist-kits/v1";

constexpr const char* kKitColumns =
    "kit_number, kit_type, lot, expiry, custody_kind, custody_id, status, shipment_id, participant";

using shared::KitStatus;
using shared::to_string;

HubKit kit_row(const storage::Statement& st) {
  auto status = shared::parse_kit_status(st.text(6));
  if (!status) throw storage::StorageError("hub_kits: kit " + st.text(0) + " has an unknown status; run 'irt-hub verify'");
  return {st.text(0), st.text(1), st.text(2), st.text(3), st.text(4), st.text(5), *status, st.text(7), st.text(8)};
}

int per_site_count(const shared::Study& study, const std::string& kit_type) {
  int initial = 0;
  for (const auto& s : study.supply.initial_shipment)
    if (s.kit_type == kit_type) initial += s.count;
  return std::max({initial, study.supply.max_level, 1});
}

// Why a depot's available kits of a type cannot ship to `country`: their lots
// not released there, or inside the do-not-ship window (expiring on or before
// `last_excluded`). Lots only: never the kit type, which can name an arm.
std::string unshippable_lots(storage::Database& db, const std::string& depot, const std::string& kit_type,
                             const std::string& country, shared::Days last_excluded) {
  auto st = db.prepare(
      "SELECT DISTINCT lot, expiry FROM hub_kits WHERE custody_kind = 'depot' AND custody_id = ? AND status = ? "
      "AND kit_type = ? AND shipment_id = '' ORDER BY lot");
  st.bind_all(depot, to_string(KitStatus::available), kit_type);
  const std::string cutoff = shared::format_date(last_excluded);
  std::string unreleased, too_close;
  while (st.step()) {
    const std::string lot = st.text(0);
    if (!lot_released(db, lot, country))
      unreleased += (unreleased.empty() ? "" : ", ") + lot;
    else if (st.text(1) <= cutoff)
      too_close += (too_close.empty() ? "" : ", ") + lot + " (expiry " + st.text(1) + ")";
  }
  std::string out;
  if (!unreleased.empty()) out += "; lot(s) " + unreleased + " not released in " + country;
  if (!too_close.empty())
    out += "; lot(s) " + too_close + " inside the do-not-ship window (expiring on or before " + cutoff + ")";
  return out;
}

}  // namespace

shared::Status migrate_kit_inventory(storage::Database& db) { return db.migrate("hub.kits", kKitInventoryMigrations); }

namespace {

struct ListedKit {
  std::string number, kit_type, lot;
  std::int64_t list_id = 0;
};

// A kit list's kits as hub_kit_list_kits holds them, in kit number order.
std::map<std::string, ListedKit> listed_kits(storage::Database& db, std::optional<std::int64_t> list_id) {
  std::map<std::string, ListedKit> out;
  auto st = db.prepare(list_id ? "SELECT kit_number, kit_type, lot, list_id FROM hub_kit_list_kits WHERE list_id = ?"
                               : "SELECT kit_number, kit_type, lot, list_id FROM hub_kit_list_kits");
  if (list_id) st.bind(1, *list_id);
  while (st.step()) out[st.text(0)] = {st.text(0), st.text(1), st.text(2), st.int64(3)};
  return out;
}

// "kit list N, kits hash H": H over "number,type,lot\n" of every kit of the list, in kit number order.
std::string kit_list_kits_text(std::int64_t list_id, const std::map<std::string, ListedKit>& kits) {
  std::string text;
  for (const auto& [number, k] : kits)
    if (k.list_id == list_id) text += number + "," + k.kit_type + "," + k.lot + "\n";
  return "kit list " + std::to_string(list_id) + ", kits hash " +
         crypto::hash_domain(kKitListKitsHashDomain, crypto::as_bytes(text)).hex();
}

}  // namespace

std::string record_kit_list_kits(storage::Database& db, std::int64_t list_id) {
  db.prepare("INSERT INTO hub_kit_list_kits(kit_number, list_id, kit_type, lot) "
             "SELECT kit_number, list_id, kit_type, lot FROM hub_kits WHERE list_id = ?")
      .bind(1, list_id)
      .run();
  return kit_list_kits_text(list_id, listed_kits(db, list_id));
}

std::vector<std::string> verify_kits(storage::Database& db) {
  std::vector<std::string> problems;
  const auto listed = listed_kits(db, std::nullopt);
  // What the trail recorded of each list: "kit list N, kits hash H".
  std::map<std::int64_t, std::string> audited;
  for (const auto& e : audit_entries(db)) {
    if (e.action != "kits.list_generated" && e.action != "kits.imported") continue;
    const auto at = e.new_value.rfind("kit list ");
    if (at != std::string::npos) audited[std::atoll(e.new_value.c_str() + at + 9)] = e.new_value.substr(at);
  }
  auto lists = db.prepare("SELECT id FROM hub_kit_lists ORDER BY id");
  while (lists.step()) {
    const auto id = lists.int64(0);
    auto it = audited.find(id);
    if (it == audited.end()) continue;  // made before the trail recorded a list's kits: checked against the copy only
    if (kit_list_kits_text(id, listed) != it->second)
      problems.push_back("hub_kit_list_kits: the kits of kit list " + std::to_string(id) +
                         " no longer hash to what the audit trail recorded when the list was made: "
                         "a kit's number, type or lot was edited, added or deleted in the list");
  }
  for (const auto& [number, l] : audited) {
    auto exists = db.prepare("SELECT 1 FROM hub_kit_lists WHERE id = ?");
    exists.bind(1, number);
    if (!exists.step()) problems.push_back("hub_kit_lists: kit list " + std::to_string(number) + " is missing");
  }
  // Each kit against its list; a type is never printed (the operator may be blinded), nor a lot (it can name a type).
  std::set<std::string> seen;
  auto kits = db.prepare("SELECT kit_number, list_id, kit_type, lot, expiry FROM hub_kits");
  auto lot_expiry = db.prepare("SELECT expiry FROM hub_lots WHERE lot_id = ?");
  while (kits.step()) {
    const std::string number = kits.text(0), where = "hub_kits: kit " + number;
    seen.insert(number);
    auto it = listed.find(number);
    if (it == listed.end()) {
      problems.push_back(where + " is in no kit list: it was added by hand");
      continue;
    }
    if (kits.int64(1) != it->second.list_id)
      problems.push_back(where + ": list_id is " + std::to_string(kits.int64(1)) + ", it came with kit list " +
                         std::to_string(it->second.list_id));
    if (kits.text(2) != it->second.kit_type) problems.push_back(where + ": kit_type differs from its kit list's");
    if (kits.text(3) != it->second.lot) problems.push_back(where + ": lot differs from its kit list's");
    lot_expiry.reset();
    lot_expiry.bind(1, kits.text(3));
    if (lot_expiry.step() && lot_expiry.text(0) != kits.text(4))
      problems.push_back(where + ": expiry differs from its lot's");
  }
  for (const auto& [number, l] : listed)
    if (!seen.count(number))
      problems.push_back("hub_kits: kit " + number + " of kit list " + std::to_string(l.list_id) + " is missing");
  return problems;
}

namespace {

// How many kits of each type each depot holds for the sites it serves.
struct DepotStock {
  const shared::Depot* depot;
  std::string kit_type;
  std::size_t count;
};

std::vector<DepotStock> depot_stock(const shared::Study& study) {
  std::vector<DepotStock> out;
  for (const auto& kt : study.kit_types)
    for (const auto& d : study.depots) {
      std::size_t served = 0;
      for (const auto& s : study.sites)
        if (depot_for(study, s.country) == &d) ++served;
      out.push_back({&d, kt.id,
                     std::max<std::size_t>(served, 1) *
                         static_cast<std::size_t>(kKitsPerSiteMultiple * per_site_count(study, kt.id))});
    }
  return out;
}

// Generates a kit list for `stock` from a fresh recorded seed, places the
// kits at their depots (kLots lots per depot and type, named with
// `lot_prefix`) and audits it. With `digits` (an amendment: those of the
// first list) a number already in use is drawn again (shared/kit_numbers.h),
// so every kit number stays unique.
shared::Result<std::size_t> make_kits(storage::Database& db, const shared::Study& study,
                                      const std::vector<DepotStock>& stock, int digits, const std::string& lot_prefix,
                                      const std::string& why, const std::string& actor, std::int64_t now_ms) {
  std::vector<shared::KitTypeCount> counts;
  for (const auto& kt : study.kit_types) {
    std::size_t n = 0;
    for (const auto& d : stock)
      if (d.kit_type == kt.id) n += d.count;
    if (n > 0) counts.push_back({kt.id, n});
  }
  if (counts.empty()) return std::size_t{0};
  std::unordered_set<std::uint64_t> taken;  // every kit number in use, never drawn again
  if (digits != 0) {
    auto st = db.prepare("SELECT kit_number FROM hub_kits UNION SELECT kit_number FROM hub_kit_list_kits");
    while (st.step())
      if (auto n = shared::parse_u64(st.text(0))) taken.insert(*n);
  }
  auto seed = crypto::random_bytes(crypto::DeterministicStream::kSeedSize);
  sync::SeededSource source(seed);
  auto list = shared::generate_kit_list(counts, source, digits, taken);
  if (!list) {
    crypto::secure_zero(seed.data(), seed.size());
    return list.error();
  }
  auto hash = crypto::hash_domain(kKitListHashDomain, crypto::as_bytes(shared::encode_kit_csv(*list)));
  db.prepare("INSERT INTO hub_kit_lists(seed, digits, kits, list_hash, created_ms, created_by) VALUES (?, ?, ?, ?, ?, ?)")
      .bind_all(storage::BlobView(seed), list->digits, static_cast<std::int64_t>(list->kits.size()),
                storage::BlobView(hash.view()), now_ms, actor)
      .run();
  crypto::secure_zero(seed.data(), seed.size());
  auto list_id = db.last_insert_rowid();

  const auto today = shared::day_of_millis(now_ms);
  // The lots of generated kits are the system's own: made here, released in every study country.
  std::vector<std::string> countries;
  for (const auto& c : study.countries) countries.push_back(c.code);
  auto lot_row = db.prepare(
      "INSERT INTO hub_lots(lot_id, expiry, created_ms, created_by) VALUES (?, ?, ?, ?) ON CONFLICT (lot_id) DO NOTHING");
  std::string lot_names;
  for (int lot = 0; lot < kLots; ++lot) {
    char lot_text[16];
    std::snprintf(lot_text, sizeof lot_text, "L%02d", lot + 1);
    lot_names += (lot_names.empty() ? "" : ", ") + lot_prefix + lot_text;
    lot_row.reset();
    lot_row.bind_all(lot_prefix + lot_text, shared::format_date(today + kShelfLifeDays + lot * kLotExpiryStepDays),
                     now_ms, actor)
        .run();
    release_generated_lot(db, lot_prefix + lot_text, countries, now_ms, actor);
  }
  auto ins = db.prepare(
      "INSERT INTO hub_kits(kit_number, list_id, kit_type, lot, expiry, custody_kind, custody_id, status) "
      "VALUES (?, ?, ?, ?, ?, 'depot', ?, ?)");
  std::size_t depots = 0;
  for (const auto& kt : study.kit_types) {
    std::vector<std::uint64_t> numbers;  // this type's kits, in number order
    for (const auto& k : list->kits)
      if (k.kit_type == kt.id) numbers.push_back(k.number);
    std::size_t at = 0;
    for (const auto& d : stock) {
      if (d.kit_type != kt.id || d.count == 0) continue;
      ++depots;
      const std::size_t n = d.count;
      for (std::size_t j = 0; j < n && at < numbers.size(); ++j, ++at) {
        const int lot = static_cast<int>(j * kLots / n);
        char lot_text[16];
        std::snprintf(lot_text, sizeof lot_text, "L%02d", lot + 1);
        ins.reset();
        ins.bind_all(std::to_string(numbers[at]), list_id, kt.id, lot_prefix + lot_text,
                     shared::format_date(today + kShelfLifeDays + lot * kLotExpiryStepDays), d.depot->id,
                     to_string(KitStatus::available))
            .run();
      }
    }
  }
  const auto kits_hash = record_kit_list_kits(db, list_id);
  record_audit(db, {now_ms, actor, "kits.list_generated", study.id, why, "",
                    std::to_string(list->kits.size()) + " blinded kit numbers (" + std::to_string(list->digits) +
                        " digits) from a recorded seed, in " + std::to_string(kLots) + " lots (" + lot_names +
                        ") at " + std::to_string(study.depots.size()) + " depot(s), list hash " + hash.hex() + ", " +
                        kits_hash});
  return list->kits.size();
}

}  // namespace

shared::Status create_kit_inventory(storage::Database& db, const shared::Study& study, const std::string& actor,
                                    std::int64_t now_ms) {
  if (study.kit_types.empty() || study.depots.empty()) return {};
  auto made = make_kits(db, study, depot_stock(study), 0, "", "irt-hub init", actor, now_ms);
  if (!made) return made.error();
  return {};
}

shared::Result<std::size_t> extend_kit_inventory(storage::Database& db, const shared::Study& old,
                                                 const shared::Study& neu, const std::string& actor,
                                                 std::int64_t now_ms) {
  auto had = depot_stock(old);
  auto needed = depot_stock(neu);
  for (auto& d : needed)
    for (const auto& h : had)
      if (h.depot->id == d.depot->id && h.kit_type == d.kit_type) d.count -= std::min(d.count, h.count);
  int digits = 0;
  {
    auto first = db.prepare("SELECT digits FROM hub_kit_lists ORDER BY id LIMIT 1");
    if (first.step()) digits = static_cast<int>(first.int64(0));
  }
  return make_kits(db, neu, needed, digits, "V" + std::to_string(neu.version) + "-",
                   "study amendment to version " + std::to_string(neu.version), actor, now_ms);
}

std::size_t kits_at_nodes(storage::Database& db, const std::string& kit_type) {
  auto st = db.prepare("SELECT count(*) FROM hub_kits WHERE kit_type = ? AND custody_kind = 'node'");
  st.bind(1, kit_type);
  st.step();
  return static_cast<std::size_t>(st.int64(0));
}

std::optional<HubKit> find_kit(storage::Database& db, const std::string& number) {
  auto st = db.prepare(std::string("SELECT ") + kKitColumns + " FROM hub_kits WHERE kit_number = ?");
  st.bind(1, number);
  if (!st.step()) return std::nullopt;
  return kit_row(st);
}

KitState state_of(const HubKit& kit) { return {kit.status, kit.custody_kind, kit.custody_id, kit.participant}; }

namespace {

constexpr std::string_view kStateStatus = "status ", kStateCustody = ", custody ",
                           kStateParticipant = ", participant ";

// hub_kits' columns as text, so that verify reads a status no parser knows too.
struct KitStateText {
  std::string status, custody, participant;
  bool operator==(const KitStateText&) const = default;
};

KitStateText as_text(const KitState& s) {
  return {to_string(s.status), s.custody_kind + " " + s.custody_id, s.participant};
}

// to_text read back; nullopt when `text` is not one.
std::optional<KitStateText> parse_state_text(const std::string& text) {
  const auto custody = text.find(kStateCustody);
  if (text.rfind(kStateStatus, 0) != 0 || custody == std::string::npos) return std::nullopt;
  KitStateText s;
  s.status = text.substr(kStateStatus.size(), custody - kStateStatus.size());
  s.custody = text.substr(custody + kStateCustody.size());
  if (const auto p = s.custody.find(kStateParticipant); p != std::string::npos) {
    s.participant = s.custody.substr(p + kStateParticipant.size());
    s.custody.resize(p);
  }
  return s;
}

}  // namespace

std::string to_text(const KitState& state) {
  const auto t = as_text(state);
  return std::string(kStateStatus) + t.status + std::string(kStateCustody) + t.custody +
         (t.participant.empty() ? "" : std::string(kStateParticipant) + t.participant);
}

void change_kit_state(storage::Database& db, const HubKit& kit, const KitState& to, const std::string& actor,
                      const std::string& reason, std::int64_t now_ms) {
  const auto from = state_of(kit);
  if (from == to) return;
  db.prepare("UPDATE hub_kits SET status = ?, custody_kind = ?, custody_id = ?, participant = ? WHERE kit_number = ?")
      .bind_all(to_string(to.status), to.custody_kind, to.custody_id, to.participant, kit.number)
      .run();
  if (db.changes() != 1) throw storage::StorageError("kit " + kit.number + " is not in hub_kits");
  record_audit(db, {now_ms, actor, "kit.state", kit.number, reason, to_text(from), to_text(to)});
}

std::vector<std::string> verify_kit_states(storage::Database& db) {
  std::vector<std::string> problems;
  std::map<std::string, KitStateText> rebuilt;
  auto base = db.prepare("SELECT kit_number, status, custody_kind, custody_id, participant FROM hub_kit_state_baseline");
  while (base.step()) rebuilt[base.text(0)] = {base.text(1), base.text(2) + " " + base.text(3), base.text(4)};
  for (const auto& e : audit_entries(db)) {
    if (e.action != "kit.state") continue;
    if (auto s = parse_state_text(e.new_value)) rebuilt[e.subject] = *s;
    else problems.push_back("hub_audit: a kit.state entry of kit " + e.subject + " does not read as a kit's state");
  }
  auto kits = db.prepare(
      "SELECT kit_number, status, custody_kind, custody_id, participant FROM hub_kits ORDER BY kit_number");
  auto none = [](const std::string& p) { return p.empty() ? std::string("none") : p; };
  while (kits.step()) {
    const std::string number = kits.text(0), where = "hub_kits: kit " + number + ": ";
    const KitStateText stored{kits.text(1), kits.text(2) + " " + kits.text(3), kits.text(4)};
    auto it = rebuilt.find(number);
    // Never moved since its list made it: available at a depot (which one is not recorded per kit).
    const KitStateText want = it != rebuilt.end() ? it->second
                              : kits.text(2) == "depot" ? KitStateText{to_string(KitStatus::available), stored.custody, ""}
                                                        : KitStateText{to_string(KitStatus::available), "depot (where its kit list put it)", ""};
    const std::string says = ", the signed audit trail says ";
    if (stored.status != want.status)
      problems.push_back(where + "status is " + stored.status + says + want.status);
    if (stored.custody != want.custody)
      problems.push_back(where + "custody is " + stored.custody + says + want.custody);
    if (stored.participant != want.participant)
      problems.push_back(where + "participant is " + none(stored.participant) + says + none(want.participant));
  }
  return problems;
}

const shared::Depot* depot_for(const shared::Study& study, const std::string& country) {
  for (const auto& d : study.depots)
    if (std::find(d.countries.begin(), d.countries.end(), country) != d.countries.end()) return &d;
  return nullptr;
}

std::vector<HubKit> kits_held_by(storage::Database& db, const std::string& custody_kind,
                                 const std::string& custody_id) {
  auto st = db.prepare(std::string("SELECT ") + kKitColumns +
                       " FROM hub_kits WHERE custody_kind = ? AND custody_id = ? ORDER BY kit_number");
  st.bind_all(custody_kind, custody_id);
  std::vector<HubKit> out;
  while (st.step()) out.push_back(kit_row(st));
  return out;
}

shared::Result<shared::Shipment> ship_kits(storage::Database& db, const shared::Study& study,
                                           const std::string& node_id, const std::string& site_id,
                                           const std::string& kind, const std::vector<shared::ShipmentLine>& lines,
                                           const std::string& reason, const std::string& actor, std::int64_t now_ms) {
  const auto* site = study.find_site(site_id);
  const auto* depot = site ? depot_for(study, site->country) : nullptr;
  if (!depot)
    return shared::make_error(shared::Errc::not_found,
                              "no depot of study " + study.id + " serves the country of site " + site_id +
                                  "; amend the study so a depot lists that country, then ship to the node");
  std::int64_t next = 1;
  {
    auto st = db.prepare("SELECT coalesce(max(id), 0) + 1 FROM hub_shipments");
    st.step();
    next = st.int64(0);
  }
  char id[32];
  std::snprintf(id, sizeof id, "SHP-%06lld", static_cast<long long>(next));
  shared::Shipment shipment;
  shipment.shipment_id = id;
  shipment.kind = kind;
  shipment.shipped_on = shared::format_date(shared::day_of_millis(now_ms));

  // Only kits of lots released in the site's country, outside their kit
  // type's do-not-ship window there (expiry - today > do_not_ship_days).
  const auto today = shared::day_of_millis(now_ms);
  auto pick = db.prepare(std::string("SELECT ") + kKitColumns +
                         " FROM hub_kits WHERE custody_kind = 'depot' AND custody_id = ? AND status = ? "
                         "AND kit_type = ? AND expiry > ? AND shipment_id = '' "
                         "AND lot IN (SELECT lot_id FROM hub_lot_releases WHERE country = ?) "
                         "ORDER BY expiry, kit_number LIMIT ?");
  std::vector<HubKit> picked;
  for (const auto& line : lines) {
    if (line.count <= 0) continue;
    pick.reset();
    const int dns = study.expiry_windows(line.kit_type, site->country).do_not_ship_days;
    pick.bind_all(depot->id, to_string(KitStatus::available), line.kit_type, shared::format_date(today + dns),
                  site->country, line.count);
    std::size_t found = 0;
    while (pick.step()) {
      auto k = kit_row(pick);
      shipment.kits.push_back({k.number, k.kit_type, k.lot, k.expiry});
      picked.push_back(std::move(k));
      ++found;
    }
    if (found < static_cast<std::size_t>(line.count))
      return shared::make_error(shared::Errc::exhausted,
                                "depot " + depot->id + " lacks shippable kits for the " + kind + " shipment of site " +
                                    site_id + " (" + site->country + ")" +
                                    unshippable_lots(db, depot->id, line.kit_type, site->country, today + dns) +
                                    "; nothing was shipped. Add kits to the depot or release a lot in " +
                                    site->country + " (irt-hub lot release), then ship again");
  }
  if (shipment.kits.empty())
    return shared::make_error(shared::Errc::invalid_input, "a shipment needs at least one kit; nothing was shipped");
  // A study that wants shipments approved keeps the kits at the depot,
  // available and reserved for the shipment (its id on them), until it is
  // shipped (hub/shipments.h).
  const bool approval = shipments_need_approval(db);
  auto reserve = db.prepare("UPDATE hub_kits SET shipment_id = ? "
                            "WHERE kit_number = ? AND custody_kind = 'depot' AND status = ? AND shipment_id = ''");
  for (const auto& k : picked) {
    reserve.reset();
    reserve.bind_all(shipment.shipment_id, k.number, to_string(KitStatus::available)).run();
    if (db.changes() != 1)
      throw storage::StorageError("kit " + k.number + " left the depot while it was being shipped");
    if (!approval)
      change_kit_state(db, k, {KitStatus::shipped, "node", node_id, k.participant}, actor,
                       "shipment " + shipment.shipment_id + " from depot " + depot->id, now_ms);
  }
  if (approval) shipment.shipped_on.clear();
  db.prepare(
        "INSERT INTO hub_shipments(id, shipment_id, node_id, site_id, depot_id, kind, shipped_on, kits, created_ms, "
        "status, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind_all(next, shipment.shipment_id, node_id, site_id, depot->id, shipment.kind, shipment.shipped_on,
                static_cast<std::int64_t>(shipment.kits.size()), now_ms, approval ? "requested" : "shipped", now_ms)
      .run();
  // The count of kits is not arm-revealing (the blind-safe composition of
  // shared/resupply.h); kit types stay out of the trail.
  record_audit(db, {now_ms, actor, approval ? "shipment.requested" : "shipment.sent", node_id, reason, "",
                    shipment.shipment_id + ": " + std::to_string(shipment.kits.size()) + " kits from depot " +
                        depot->id + " to node " + node_id + " of site " + site_id +
                        (approval ? ", reserved at the depot until approved and shipped" : "")});
  return shipment;
}

std::vector<shared::SiteStock> study_stock(const shared::Study& study) {
  std::vector<shared::SiteStock> out;
  for (const auto& kt : study.kit_types) out.push_back({kt.id, kt.blinded_label, 0, 0});
  return out;
}

shared::Result<shared::Shipment> ship_initial(storage::Database& db, const shared::Study& study,
                                              const std::string& node_id, const std::string& site_id,
                                              const std::string& actor, std::int64_t now_ms) {
  shared::ResupplyInput input;
  input.stock = study_stock(study);
  input.per_new_participant = shared::kits_per_new_participant(study);
  auto lines = shared::initial_order(input, study.supply.resupply);
  return ship_kits(db, study, node_id, site_id, "initial", lines, "initial shipment at enrollment", actor, now_ms);
}

std::optional<std::string> record_kit_event(storage::Database& db, const std::string& node_id,
                                            const std::string& kit, KitStatus status,
                                            const std::string& participant, const std::string& reason,
                                            std::int64_t now_ms) {
  auto k = find_kit(db, kit);
  if (!k || k->custody_kind != "node" || k->custody_id != node_id)
    return "kit " + kit + " was reported " + to_string(status) + " by node " + node_id +
           ", which does not hold it; the event is kept. Check the kit's custody and the site's records";
  auto to = state_of(*k);
  to.status = status;
  if (!participant.empty()) to.participant = participant;
  change_kit_state(db, *k, to, "hub", reason, now_ms);
  return std::nullopt;
}

std::size_t void_node_kits(storage::Database& db, const std::string& node_id, const std::string& actor,
                           const std::string& reason, std::int64_t now_ms) {
  std::size_t voided = 0;
  for (const auto& k : kits_held_by(db, "node", node_id)) {
    if (k.status != KitStatus::shipped && k.status != KitStatus::received && k.status != KitStatus::available &&
        k.status != KitStatus::quarantined && k.status != KitStatus::rejected)
      continue;
    auto to = state_of(k);
    to.status = KitStatus::lost_with_node;
    change_kit_state(db, k, to, actor, reason, now_ms);
    ++voided;
  }
  return voided;
}

std::map<std::string, std::size_t> kit_counts_by_status(storage::Database& db, const std::string& custody_kind,
                                                        const std::string& custody_id) {
  auto st = db.prepare(
      "SELECT status, count(*) FROM hub_kits WHERE custody_kind = ? AND custody_id = ? GROUP BY status ORDER BY status");
  st.bind_all(custody_kind, custody_id);
  std::map<std::string, std::size_t> out;
  while (st.step()) out[st.text(0)] = static_cast<std::size_t>(st.int64(1));
  return out;
}

void set_kit_status(storage::Database& db, const std::string& number, KitStatus status, const std::string& actor,
                    const std::string& reason, std::int64_t now_ms) {
  auto k = find_kit(db, number);
  if (!k) throw storage::StorageError("kit " + number + " is not in hub_kits");
  auto to = state_of(*k);
  to.status = status;
  change_kit_state(db, *k, to, actor, reason, now_ms);
}

std::vector<HubKit> all_kits(storage::Database& db) {
  auto st = db.prepare(std::string("SELECT ") + kKitColumns + " FROM hub_kits ORDER BY kit_number");
  std::vector<HubKit> out;
  while (st.step()) out.push_back(kit_row(st));
  return out;
}

std::map<std::string, std::string> shipment_depots(storage::Database& db) {
  auto st = db.prepare("SELECT shipment_id, depot_id FROM hub_shipments");
  std::map<std::string, std::string> out;
  while (st.step()) out[st.text(0)] = st.text(1);
  return out;
}

shared::Result<std::vector<HubKit>> move_node_kits(storage::Database& db, const std::string& from_node,
                                                   const std::string& to_node, const std::vector<std::string>& kits,
                                                   const std::string& reason, std::int64_t now_ms) {
  std::vector<HubKit> moved;
  for (const auto& number : kits) {
    auto k = find_kit(db, number);
    if (!k || k->custody_kind != "node" || k->custody_id != from_node)
      return shared::make_error(shared::Errc::conflict, "kit " + number + " is not in the custody of node " +
                                                            from_node + " at the hub");
    if (k->status != KitStatus::received && k->status != KitStatus::available)
      return shared::make_error(shared::Errc::conflict, "kit " + number + " is " + to_string(k->status) +
                                                            " at node " + from_node + ", not in its stock");
    moved.push_back(*k);
  }
  for (auto& k : moved) {
    change_kit_state(db, k, {KitStatus::shipped, "node", to_node, k.participant}, "hub", reason, now_ms);
    k.custody_id = to_node;
    k.status = KitStatus::shipped;
  }
  return moved;
}

std::vector<HubKit> move_participant_kits(storage::Database& db, const std::string& from_node,
                                          const std::string& to_node, const std::string& participant,
                                          const std::string& actor, const std::string& reason, std::int64_t now_ms) {
  auto st = db.prepare(std::string("SELECT ") + kKitColumns +
                       " FROM hub_kits WHERE custody_kind = 'node' AND custody_id = ? AND participant = ? "
                       "AND status = ? ORDER BY kit_number");
  st.bind_all(from_node, participant, to_string(KitStatus::dispensed));
  std::vector<HubKit> moved;
  while (st.step()) moved.push_back(kit_row(st));
  for (auto& k : moved) {
    auto to = state_of(k);
    to.custody_id = to_node;
    change_kit_state(db, k, to, actor, reason, now_ms);
    k.custody_id = to_node;
  }
  return moved;
}

}  // namespace irt::hub
