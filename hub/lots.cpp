#include "hub/lots.h"

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "hub/audit.h"
#include "shared/civil_date.h"
#include "shared/directive_payloads.h"
#include "shared/event_payloads.h"
#include "shared/identifier.h"

namespace irt::hub {

namespace {

using shared::Errc;
using shared::make_error;

const std::vector<storage::Migration> kLotsMigrations = {
    {1, R"sql(
CREATE TABLE hub_lots (
  lot_id TEXT PRIMARY KEY,
  expiry TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL
);
CREATE TABLE hub_lot_releases (
  lot_id TEXT NOT NULL REFERENCES hub_lots(lot_id),
  country TEXT NOT NULL,
  released_ms INTEGER NOT NULL,
  released_by TEXT NOT NULL,
  PRIMARY KEY (lot_id, country)
);
)sql"},
};

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

shared::Status check_date(const std::string& expiry) {
  if (!shared::parse_date(expiry))
    return make_error(Errc::invalid_input, "expiry: use a date YYYY-MM-DD, the lot's last day of use (got '" +
                                               expiry + "')");
  return {};
}

}  // namespace

shared::Status migrate_lots(storage::Database& db) { return db.migrate("hub.lots", kLotsMigrations); }

shared::Status add_lot(storage::Database& db, const std::string& id, const std::string& expiry,
                       const std::string& reason, const std::string& actor, std::int64_t now_ms) {
  if (!shared::is_id(id))
    return make_error(Errc::invalid_input, "lot: use 1 to 64 characters of A-Z a-z 0-9 . _ - (got '" + id + "')");
  if (auto st = check_date(expiry); !st) return st;
  if (find_lot(db, id))
    return make_error(Errc::conflict, "lot " + id + " already exists; nothing was changed. Change its expiry with "
                                                    "irt-hub lot relabel");
  db.prepare("INSERT INTO hub_lots(lot_id, expiry, created_ms, created_by) VALUES (?, ?, ?, ?)")
      .bind_all(id, expiry, now_ms, actor)
      .run();
  record_audit(db, {now_ms, actor, "lot.added", id, reason, "", "lot " + id + ", expiry " + expiry});
  return {};
}

void release_generated_lot(storage::Database& db, const std::string& id, const std::vector<std::string>& countries,
                           std::int64_t now_ms, const std::string& actor) {
  auto ins = db.prepare(
      "INSERT INTO hub_lot_releases(lot_id, country, released_ms, released_by) VALUES (?, ?, ?, ?) "
      "ON CONFLICT (lot_id, country) DO NOTHING");
  for (const auto& c : countries) {
    ins.reset();
    ins.bind_all(id, c, now_ms, actor).run();
  }
}

std::optional<Lot> find_lot(storage::Database& db, const std::string& id) {
  auto st = db.prepare("SELECT lot_id, expiry FROM hub_lots WHERE lot_id = ?");
  st.bind(1, id);
  if (!st.step()) return std::nullopt;
  Lot lot{st.text(0), st.text(1), {}, 0, {}};
  auto rel = db.prepare("SELECT country FROM hub_lot_releases WHERE lot_id = ? ORDER BY country");
  rel.bind(1, id);
  while (rel.step()) lot.released_in.push_back(rel.text(0));
  auto kits = db.prepare("SELECT kit_type, count(*) FROM hub_kits WHERE lot = ? GROUP BY kit_type ORDER BY kit_type");
  kits.bind(1, id);
  while (kits.step()) {
    lot.kit_types.push_back(kits.text(0));
    lot.kits += static_cast<std::size_t>(kits.int64(1));
  }
  return lot;
}

std::vector<Lot> list_lots(storage::Database& db) {
  std::vector<std::string> ids;
  auto st = db.prepare("SELECT lot_id FROM hub_lots ORDER BY expiry, lot_id");
  while (st.step()) ids.push_back(st.text(0));
  std::vector<Lot> out;
  for (const auto& id : ids) out.push_back(*find_lot(db, id));
  return out;
}

bool lot_released(storage::Database& db, const std::string& id, const std::string& country) {
  auto st = db.prepare("SELECT 1 FROM hub_lot_releases WHERE lot_id = ? AND country = ?");
  st.bind_all(id, country);
  return st.step();
}

shared::Status release_lot(HubState& hub, const std::string& id, const std::vector<std::string>& countries,
                           const std::string& reason, const Signature& signer, std::int64_t now_ms) {
  if (reason.empty()) return make_error(Errc::invalid_input, "give the reason for the audit trail (--reason TEXT)");
  if (countries.empty())
    return make_error(Errc::invalid_input, "name the countries the lot is released in (--countries FR,BE)");
  for (const auto& c : countries) {
    const auto& all = hub.study().countries;
    if (std::none_of(all.begin(), all.end(), [&](const shared::Country& x) { return x.code == c; }))
      return make_error(Errc::invalid_input, "country " + c + " is not a country of study " + hub.study().id +
                                                 "; nothing was released");
  }
  auto who = check_signature(hub, signer, shared::Permission::release_quarantine);
  if (!who) return who.error();
  auto& db = hub.db();
  storage::Transaction tx(db);
  auto lot = find_lot(db, id);
  if (!lot) return make_error(Errc::not_found, "no lot " + id + "; see irt-hub lot list");
  std::vector<std::string> added;
  for (const auto& c : countries)
    if (std::find(lot->released_in.begin(), lot->released_in.end(), c) == lot->released_in.end() &&
        std::find(added.begin(), added.end(), c) == added.end())
      added.push_back(c);
  if (added.empty())
    return make_error(Errc::conflict, "lot " + id + " is already released in " + join(countries) +
                                          "; nothing was changed");
  release_generated_lot(db, id, added, now_ms, who->name);
  auto now = find_lot(db, id);
  record_audit(db, {now_ms, who->name, "lot.released", id, reason, "released in " + join(lot->released_in),
                    "released in " + join(now->released_in), "approved"});
  tx.commit();
  return {};
}

shared::Result<Relabel> relabel_lot(HubState& hub, const std::string& id, const std::string& new_expiry,
                                    const std::string& reason, const Signature& signer, std::int64_t now_ms) {
  if (reason.empty()) return make_error(Errc::invalid_input, "give the reason for the audit trail (--reason TEXT)");
  if (auto st = check_date(new_expiry); !st) return st.error();
  auto who = check_signature(hub, signer, shared::Permission::manage_supply);
  if (!who) return who.error();
  auto& db = hub.db();
  storage::Transaction tx(db);
  auto lot = find_lot(db, id);
  if (!lot) return make_error(Errc::not_found, "no lot " + id + "; see irt-hub lot list");
  if (lot->expiry == new_expiry)
    return make_error(Errc::conflict, "lot " + id + " already expires on " + new_expiry + "; nothing was changed");
  Relabel out;
  out.old_expiry = lot->expiry;
  db.prepare("UPDATE hub_lots SET expiry = ? WHERE lot_id = ?").bind_all(new_expiry, id).run();
  db.prepare("UPDATE hub_kits SET expiry = ? WHERE lot = ?").bind_all(new_expiry, id).run();
  out.kits = static_cast<std::size_t>(db.changes());
  // Kits at a node that someone may still handle: not dispensed, destroyed or gone.
  std::map<std::string, std::vector<std::string>> by_node;
  {
    using shared::KitStatus;
    auto st = db.prepare(
        "SELECT custody_id, kit_number FROM hub_kits WHERE lot = ? AND custody_kind = 'node' AND status IN "
        "(?, ?, ?, ?, ?) ORDER BY custody_id, kit_number");
    st.bind_all(id, shared::to_string(KitStatus::shipped), shared::to_string(KitStatus::expected),
                shared::to_string(KitStatus::received), shared::to_string(KitStatus::available),
                shared::to_string(KitStatus::quarantined));
    while (st.step()) by_node[st.text(0)].push_back(st.text(1));
  }
  for (const auto& [node, kits] : by_node) {
    nlohmann::json payload = shared::KitRelabel{id, new_expiry, kits, reason};
    hub.outbox().issue(node, shared::kKitsRelabelDirective, payload.dump(), now_ms);
    out.nodes.push_back(node);
  }
  record_audit(db, {now_ms, who->name, "lot.relabelled", id, reason, "expiry " + out.old_expiry,
                    "expiry " + new_expiry + "; " + std::to_string(out.kits) + " kits, relabel sent to " +
                        std::to_string(out.nodes.size()) + " node(s)" +
                        (out.nodes.empty() ? "" : " (" + join(out.nodes) + ")"),
                    "approved"});
  tx.commit();
  return out;
}

}  // namespace irt::hub
