#include "hub/slice_store.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <tuple>
#include <nlohmann/json.hpp>

#include "shared/directive_payloads.h"

namespace irt::hub {

namespace {


// The document hub_slice_ledgers held (shared::SliceLedger::state_json):
// "states", one letter per slot of the list in list order (u ungranted,
// g granted, U used, v voided); "owners", per slot an index into "nodes"
// + 1 (0: none); "next_ungranted" per stratum; "next_grant_id". List
// order is by stratum, then slot from 1, which the list's canonical CSV
// (hub_randomization_lists.list_csv, first column the stratum from 1) gives.
void convert_slice_documents(storage::Database& db) {
  {
    auto docs = db.prepare(
        "SELECT s.study_version, s.state, l.list_csv FROM hub_slice_ledgers s "
        "JOIN hub_randomization_lists l USING (study_version)");
    auto ins = db.prepare(
        "INSERT INTO hub_slice_slots(study_version, stratum, slot, state, node_id) VALUES (?, ?, ?, ?, ?)");
    auto strata = db.prepare(
        "INSERT INTO hub_slice_strata(study_version, stratum, next_ungranted) VALUES (?, ?, ?)");
    auto lists = db.prepare("INSERT INTO hub_slice_lists(study_version, next_grant_id) VALUES (?, ?)");
    while (docs.step()) {
      const auto version = docs.int64(0);
      auto j = nlohmann::json::parse(docs.text(1), nullptr, false);
      const std::string csv = docs.text(2);
      auto bad = [&] {
        throw storage::StorageError("the slice ledger stored for study version " + std::to_string(version) +
                                    " does not fit its randomization list; restore the data directory from "
                                    "backup and upgrade again");
      };
      if (!j.is_object() || !j["states"].is_string() || !j["owners"].is_array() || !j["nodes"].is_array() ||
          !j["next_ungranted"].is_array() || !j["next_grant_id"].is_number_unsigned())
        bad();
      const auto states = j["states"].get<std::string>();
      const auto& owners = j["owners"];
      const auto& nodes = j["nodes"];
      if (owners.size() != states.size()) bad();
      // Slot i of the list: its stratum from the CSV's first column.
      std::size_t i = 0, line = csv.find('\n');
      std::int64_t stratum = -1, slot = 0;
      while (line != std::string::npos && line + 1 < csv.size()) {
        auto start = line + 1;
        line = csv.find('\n', start);
        auto comma = csv.find(',', start);
        if (comma == std::string::npos || i >= states.size()) bad();
        std::int64_t s = 0;
        auto [end, ec] = std::from_chars(csv.data() + start, csv.data() + comma, s);
        if (ec != std::errc() || end != csv.data() + comma) bad();
        --s;
        slot = s == stratum ? slot + 1 : 1;
        stratum = s;
        char c = states[i];
        const char* state = c == 'g' ? "granted" : c == 'U' ? "used" : c == 'v' ? "voided" : nullptr;
        if (c != 'u' && !state) bad();
        if (state) {
          if (!owners[i].is_number_unsigned()) bad();
          auto owner = owners[i].get<std::size_t>();
          if (owner > nodes.size() || (owner > 0 && !nodes[owner - 1].is_string())) bad();
          std::optional<std::string> node;
          if (owner > 0) node = nodes[owner - 1].get<std::string>();
          ins.reset();
          ins.bind_all(version, stratum, slot, std::string(state), node).run();
        }
        ++i;
      }
      if (i != states.size()) bad();
      const auto& next = j["next_ungranted"];
      for (std::size_t s = 0; s < next.size(); ++s) {
        if (!next[s].is_number_unsigned()) bad();
        strata.reset();
        strata.bind_all(version, static_cast<std::int64_t>(s), next[s].get<std::int64_t>()).run();
      }
      lists.reset();
      lists.bind_all(version, j["next_grant_id"].get<std::int64_t>()).run();
    }
  }  // the statements end before the table goes
  db.exec("DROP TABLE hub_slice_ledgers");
}

// hub_slice_slots.state: 'granted' (to node_id), 'used' (by node_id) or
// 'voided' (never to be used or granted again; node_id is the node it was
// taken from, or NULL for the rest of a block a cap cut). `stratum` is the
// list's 0-based stratum index, `slot` 1-based within it, as in the list.
const std::vector<storage::Migration> kSliceStoreMigrations = {
    {1, R"sql(
CREATE TABLE hub_slice_slots (
  study_version INTEGER NOT NULL,
  stratum INTEGER NOT NULL,
  slot INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('granted', 'used', 'voided')),
  node_id TEXT,
  PRIMARY KEY (study_version, stratum, slot)
) WITHOUT ROWID;
CREATE INDEX hub_slice_slots_node ON hub_slice_slots(study_version, node_id, stratum, state);
CREATE TABLE hub_slice_strata (
  study_version INTEGER NOT NULL,
  stratum INTEGER NOT NULL,
  next_ungranted INTEGER NOT NULL,
  PRIMARY KEY (study_version, stratum)
) WITHOUT ROWID;
CREATE TABLE hub_slice_lists (
  study_version INTEGER PRIMARY KEY,
  next_grant_id INTEGER NOT NULL
);
)sql",
     convert_slice_documents},
};

}  // namespace

shared::Status migrate_slices(storage::Database& db) { return db.migrate("hub.slices", kSliceStoreMigrations); }

bool any_slot_granted(storage::Database& db) { return db.prepare("SELECT 1 FROM hub_slice_slots LIMIT 1").step(); }

void move_slices_to_version(storage::Database& db, int from, int to) {
  for (const char* table : {"hub_slice_slots", "hub_slice_strata", "hub_slice_lists"})
    db.prepare(std::string("UPDATE ") + table + " SET study_version = ? WHERE study_version = ?").bind_all(to, from).run();
}

std::vector<shared::SlotVoid> start_list_segment(storage::Database& db, const shared::RandomizationList& before,
                                                 int to) {
  // (stratum, block) -> whether a slot of it is used; the granted slots per (node, stratum, block).
  std::map<std::pair<std::uint32_t, std::uint32_t>, bool> started;
  std::map<std::tuple<std::string, std::uint32_t, std::uint32_t>, std::vector<std::uint32_t>> granted;
  {
    auto st = db.prepare("SELECT stratum, slot, state, node_id FROM hub_slice_slots WHERE study_version = ? "
                         "ORDER BY stratum, slot");
    st.bind(1, before.study_version);
    while (st.step()) {
      const auto stratum = static_cast<std::uint32_t>(st.int64(0));
      const auto slot = static_cast<std::uint32_t>(st.int64(1));
      if (stratum + 1 >= before.stratum_begin.size()) continue;
      const auto i = before.stratum_begin[stratum] + slot - 1;
      if (i >= before.stratum_begin[stratum + 1]) continue;
      const auto block = before.slots[i].block;
      const auto state = st.text(2);
      started[{stratum, block}] |= state == "used";
      if (state == "granted" && !st.is_null(3)) granted[{st.text(3), stratum, block}].push_back(slot);
    }
  }
  std::map<std::pair<std::string, std::uint32_t>, shared::SlotVoid> voids;
  auto mark = db.prepare("UPDATE hub_slice_slots SET state = 'voided' WHERE study_version = ? AND stratum = ? "
                         "AND slot = ? AND state = 'granted'");
  for (const auto& [key, slots] : granted) {
    const auto& [node, stratum, block] = key;
    if (started[{stratum, block}]) continue;  // finished as it is, so the old block stays balanced
    auto& v = voids[{node, stratum}];
    v.node = node;
    v.stratum = stratum;
    for (auto slot : slots) {
      mark.reset();
      mark.bind_all(before.study_version, storage::sql_int(stratum), storage::sql_int(slot)).run();
      v.slots.push_back(slot);
    }
  }
  auto next = db.prepare(
      "INSERT INTO hub_slice_strata(study_version, stratum, next_ungranted) VALUES (?, ?, ?) "
      "ON CONFLICT(study_version, stratum) DO UPDATE SET next_ungranted = excluded.next_ungranted");
  for (std::size_t s = 0; s + 1 < before.stratum_begin.size(); ++s) {
    next.reset();
    next.bind_all(before.study_version, storage::sql_int(s),
                  storage::sql_int(before.stratum_begin[s + 1] - before.stratum_begin[s]))
        .run();
  }
  move_slices_to_version(db, before.study_version, to);
  std::vector<shared::SlotVoid> out;
  for (auto& [key, v] : voids) {
    std::sort(v.slots.begin(), v.slots.end());
    out.push_back(std::move(v));
  }
  return out;
}

std::size_t SliceStore::count(std::uint32_t stratum, const char* state) const {
  auto st = db_.prepare("SELECT count(*) FROM hub_slice_slots WHERE study_version = ? AND stratum = ? AND state = ?");
  st.bind_all(list_.study_version, storage::sql_int(stratum), std::string(state));
  st.step();
  return static_cast<std::size_t>(st.int64(0));
}

std::vector<std::uint32_t> SliceStore::free_slot_numbers(const std::string& node, std::uint32_t stratum) const {
  auto st = db_.prepare(
      "SELECT slot FROM hub_slice_slots WHERE study_version = ? AND node_id = ? AND stratum = ? AND state = 'granted' "
      "ORDER BY slot");
  st.bind_all(list_.study_version, node, storage::sql_int(stratum));
  std::vector<std::uint32_t> out;
  while (st.step()) out.push_back(static_cast<std::uint32_t>(st.int64(0)));
  return out;
}

std::size_t SliceStore::outstanding(std::uint32_t stratum) const { return count(stratum, "granted"); }
std::size_t SliceStore::used(std::uint32_t stratum) const { return count(stratum, "used"); }

std::size_t SliceStore::free_slots(const std::string& node, std::uint32_t stratum) const {
  auto st = db_.prepare(
      "SELECT count(*) FROM hub_slice_slots WHERE study_version = ? AND node_id = ? AND stratum = ? "
      "AND state = 'granted'");
  st.bind_all(list_.study_version, node, storage::sql_int(stratum));
  st.step();
  return static_cast<std::size_t>(st.int64(0));
}

SliceStore::State SliceStore::state(std::uint32_t stratum, std::uint32_t slot) const {
  auto st = db_.prepare("SELECT state FROM hub_slice_slots WHERE study_version = ? AND stratum = ? AND slot = ?");
  st.bind_all(list_.study_version, storage::sql_int(stratum), storage::sql_int(slot));
  if (!st.step()) return State::ungranted;
  auto s = st.text(0);
  return s == "granted" ? State::granted : s == "used" ? State::used : State::voided;
}

std::optional<std::string> SliceStore::owner(std::uint32_t stratum, std::uint32_t slot) const {
  auto st = db_.prepare("SELECT node_id FROM hub_slice_slots WHERE study_version = ? AND stratum = ? AND slot = ?");
  st.bind_all(list_.study_version, storage::sql_int(stratum), storage::sql_int(slot));
  if (!st.step() || st.is_null(0)) return std::nullopt;
  return st.text(0);
}

shared::Result<shared::SlotGrant> SliceStore::grant(const std::string& node, std::uint32_t stratum,
                                                    std::size_t min_slots, long cap_headroom) {
  std::size_t next = 0;
  {
    auto st = db_.prepare("SELECT next_ungranted FROM hub_slice_strata WHERE study_version = ? AND stratum = ?");
    st.bind_all(list_.study_version, storage::sql_int(stratum));
    if (st.step()) next = static_cast<std::size_t>(st.int64(0));
  }
  auto walk = shared::walk_grant(list_, stratum, next,
                                 stratum < list_.strata.count() ? outstanding(stratum) : 0, min_slots, cap_headroom);
  if (!walk) return walk.error();
  shared::SlotGrant g;
  g.node = node;
  g.stratum = stratum;
  g.stratum_label = list_.strata.label(stratum);
  if (walk->granted.empty() && walk->voided.empty()) return g;
  auto ins = db_.prepare(
      "INSERT INTO hub_slice_slots(study_version, stratum, slot, state, node_id) VALUES (?, ?, ?, ?, ?)");
  for (auto i : walk->granted) {
    ins.reset();
    ins.bind_all(list_.study_version, storage::sql_int(stratum), storage::sql_int(list_.slots[i].slot), std::string("granted"), node).run();
  }
  for (auto i : walk->voided) {
    ins.reset();
    ins.bind_all(list_.study_version, storage::sql_int(stratum), storage::sql_int(list_.slots[i].slot), std::string("voided"),
                 std::optional<std::string>())
        .run();
  }
  db_.prepare(
         "INSERT INTO hub_slice_strata(study_version, stratum, next_ungranted) VALUES (?, ?, ?) "
         "ON CONFLICT(study_version, stratum) DO UPDATE SET next_ungranted = excluded.next_ungranted")
      .bind_all(list_.study_version, storage::sql_int(stratum), storage::sql_int(walk->next_ungranted))
      .run();
  {
    auto st = db_.prepare("SELECT next_grant_id FROM hub_slice_lists WHERE study_version = ?");
    st.bind(1, list_.study_version);
    g.grant_id = st.step() ? static_cast<std::uint64_t>(st.int64(0)) : 1;
  }
  db_.prepare(
         "INSERT INTO hub_slice_lists(study_version, next_grant_id) VALUES (?, ?) "
         "ON CONFLICT(study_version) DO UPDATE SET next_grant_id = excluded.next_grant_id")
      .bind_all(list_.study_version, storage::sql_int(g.grant_id + 1))
      .run();
  g.slots = std::move(walk->slots);
  return g;
}

shared::Status SliceStore::record_use(const std::string& node, std::uint32_t stratum, std::uint32_t slot) {
  db_.prepare(
         "UPDATE hub_slice_slots SET state = 'used' WHERE study_version = ? AND stratum = ? AND slot = ? "
         "AND node_id = ? AND state IN ('granted', 'voided')")
      .bind_all(list_.study_version, storage::sql_int(stratum), storage::sql_int(slot), node)
      .run();
  if (db_.changes() == 1) return {};
  auto st = db_.prepare(
      "SELECT state, node_id FROM hub_slice_slots WHERE study_version = ? AND stratum = ? AND slot = ?");
  st.bind_all(list_.study_version, storage::sql_int(stratum), storage::sql_int(slot));
  bool owned = st.step() && !st.is_null(1) && st.text(1) == node;
  return shared::check_slot_use(node, stratum, slot, owned, owned ? st.text(0) : std::string());
}

std::vector<shared::SlotVoid> SliceStore::revoke(const std::string& node) {
  std::map<std::uint32_t, shared::SlotVoid> by_stratum;
  auto st = db_.prepare(
      "SELECT stratum, slot FROM hub_slice_slots WHERE study_version = ? AND node_id = ? AND state = 'granted' "
      "ORDER BY stratum, slot");
  st.bind_all(list_.study_version, node);
  while (st.step()) {
    auto s = static_cast<std::uint32_t>(st.int64(0));
    auto& v = by_stratum[s];
    v.node = node;
    v.stratum = s;
    v.slots.push_back(static_cast<std::uint32_t>(st.int64(1)));
  }
  db_.prepare(
         "UPDATE hub_slice_slots SET state = 'voided' WHERE study_version = ? AND node_id = ? AND state = 'granted'")
      .bind_all(list_.study_version, node)
      .run();
  std::vector<shared::SlotVoid> out;
  for (auto& [s, v] : by_stratum) out.push_back(std::move(v));
  return out;
}

std::map<std::uint32_t, std::size_t> SliceStore::free_slots_by_stratum(const std::string& node) const {
  auto st = db_.prepare(
      "SELECT stratum, SUM(CASE WHEN state = 'granted' THEN 1 ELSE 0 END) FROM hub_slice_slots "
      "WHERE study_version = ? AND node_id = ? GROUP BY stratum ORDER BY stratum");
  st.bind_all(list_.study_version, node);
  std::map<std::uint32_t, std::size_t> out;
  while (st.step()) out[static_cast<std::uint32_t>(st.int64(0))] = static_cast<std::size_t>(st.int64(1));
  return out;
}

std::vector<std::string> verify_slices(storage::Database& db, DirectiveOutbox& outbox,
                                       const std::vector<sync::LedgerNode>& nodes) {
  struct Row {
    std::string state, node;
    bool operator==(const Row&) const = default;
  };
  using Key = std::pair<std::int64_t, std::int64_t>;  // stratum, slot
  std::vector<std::string> problems;
  std::map<Key, Row> rebuilt;
  for (const auto& n : nodes) {
    for (const auto& [seq, payload] : outbox.payloads_of(n.node_id, shared::kGrantSlotsDirective)) {
      // The slot numbers travel in clear; only the arms are sealed to the node.
      auto j = nlohmann::json::parse(payload, nullptr, false);
      try {
        for (const auto& g : j.at("grants")) {
          const auto stratum = g.at("stratum").get<std::int64_t>();
          // block -> (first slot granted, slots granted, block size)
          std::map<std::int64_t, std::tuple<std::int64_t, std::int64_t, std::int64_t>> blocks;
          for (const auto& s : g.at("slots")) {
            const auto slot = s.at("slot").get<std::int64_t>();
            rebuilt[{stratum, slot}] = {"granted", n.node_id};
            auto [it, first] = blocks.try_emplace(s.at("block").get<std::int64_t>(), slot, 0,
                                                  s.at("block_size").get<std::int64_t>());
            auto& [from, count, size] = it->second;
            from = std::min(from, slot);
            ++count;
          }
          // A block a cap cut: its rest voided, owned by no node (shared::walk_grant).
          for (const auto& [block, b] : blocks) {
            const auto& [from, count, size] = b;
            for (auto slot = from + count; slot < from + size; ++slot) rebuilt[{stratum, slot}] = {"voided", ""};
          }
        }
        if (j.contains("voids"))
          for (const auto& v : j.at("voids"))
            for (const auto& slot : v.at("slots")) {
              auto& row = rebuilt[{v.at("stratum").get<std::int64_t>(), slot.get<std::int64_t>()}];
              if (row.state != "used") row = {"voided", n.node_id};
            }
      } catch (const nlohmann::json::exception&) {
        problems.push_back("hub_directives: node " + n.node_id + " directive " + std::to_string(seq) +
                           " is not a slot grant");
      }
    }
    if (n.status == sync::NodeStatus::revoked)
      for (auto& [key, row] : rebuilt)
        if (row.node == n.node_id && row.state == "granted") row.state = "voided";
  }
  auto uses = db.prepare("SELECT node_id, stratum, slot FROM hub_allocations WHERE slot IS NOT NULL");
  while (uses.step()) {
    auto it = rebuilt.find({uses.int64(1), uses.int64(2)});
    // A use of a slot the node did not own changed nothing (slot.not_owned alert).
    if (it != rebuilt.end() && it->second.node == uses.text(0)) it->second.state = "used";
  }
  std::map<Key, std::pair<std::int64_t, Row>> stored;  // the newest version's row of each slot
  auto st = db.prepare("SELECT study_version, stratum, slot, state, COALESCE(node_id, '') FROM hub_slice_slots");
  while (st.step()) {
    auto& r = stored[{st.int64(1), st.int64(2)}];
    if (r.second.state.empty() || st.int64(0) > r.first) r = {st.int64(0), {st.text(3), st.text(4)}};
  }
  auto name = [](const Key& k) {
    return "hub_slice_slots: stratum " + std::to_string(k.first) + " slot " + std::to_string(k.second);
  };
  auto describe = [](const Row& r) { return r.state + (r.node.empty() ? "" : " by node " + r.node); };
  for (const auto& [key, v] : stored) {
    auto it = rebuilt.find(key);
    if (it == rebuilt.end())
      problems.push_back(name(key) + " (" + describe(v.second) + ") was granted by no directive: it was added by hand");
    else if (!(it->second == v.second))
      problems.push_back(name(key) + ": " + describe(v.second) + ", the directives and allocations say " +
                         describe(it->second));
  }
  for (const auto& [key, r] : rebuilt)
    if (!stored.count(key)) problems.push_back(name(key) + " (" + describe(r) + ") is missing");
  return problems;
}

}  // namespace irt::hub
