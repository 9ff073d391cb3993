#include "hub/number_ranges.h"

#include <algorithm>
#include <map>

#include "shared/numbering.h"

namespace irt::hub {

namespace {

// Every range ever granted; `first` is unique per site. used_through is the
// highest number the node reported using (0: none); a node uses its ranges in
// order. Migration 1 was part of the earlier "hub.grants" component; IF NOT
// EXISTS keeps it a no-op on a hub made then.
const std::vector<storage::Migration> kNumberRangesMigrations = {
    {1, R"sql(
CREATE TABLE IF NOT EXISTS hub_number_ranges (
  id INTEGER PRIMARY KEY,
  node_id TEXT NOT NULL,
  range_id INTEGER NOT NULL,
  site_id TEXT NOT NULL,
  first INTEGER NOT NULL,
  last INTEGER NOT NULL,
  digits INTEGER NOT NULL,
  used_through INTEGER NOT NULL DEFAULT 0,
  issued_ms INTEGER NOT NULL,
  voided_ms INTEGER,
  UNIQUE (node_id, range_id),
  UNIQUE (site_id, first)
);
)sql"},
};


int digits_of(std::uint32_t n) {
  int d = 1;
  while (n >= 10) {
    n /= 10;
    ++d;
  }
  return d;
}

}  // namespace

shared::Status migrate_number_ranges(storage::Database& db) { return db.migrate("hub.number_ranges", kNumberRangesMigrations); }

shared::NumberRangeGrant grant_number_range(storage::Database& db, const std::string& node_id,
                                            const std::string& site_id, std::uint32_t count, std::int64_t now_ms) {
  std::int64_t first = 1, range_id = 1;
  {
    auto st = db.prepare("SELECT coalesce(max(last), 0) + 1 FROM hub_number_ranges WHERE site_id = ?");
    st.bind(1, site_id);
    st.step();
    first = st.int64(0);
    auto r = db.prepare("SELECT coalesce(max(range_id), 0) + 1 FROM hub_number_ranges WHERE node_id = ?");
    r.bind(1, node_id);
    r.step();
    range_id = r.int64(0);
  }
  shared::NumberRangeGrant g;
  g.range_id = static_cast<std::uint64_t>(range_id);
  g.prefix = site_id;
  g.first = static_cast<std::uint32_t>(first);
  g.last = g.first + count - 1;
  g.digits = std::max(3, digits_of(g.last));
  db.prepare("INSERT INTO hub_number_ranges(node_id, range_id, site_id, first, last, digits, issued_ms) "
             "VALUES (?, ?, ?, ?, ?, ?, ?)")
      .bind_all(node_id, range_id, site_id, static_cast<std::int64_t>(g.first), static_cast<std::int64_t>(g.last),
                g.digits, now_ms)
      .run();
  return g;
}

std::uint64_t numbers_left(storage::Database& db, const std::string& node_id) {
  auto st = db.prepare(
      "SELECT coalesce(sum(last - CASE WHEN used_through > first - 1 THEN used_through ELSE first - 1 END), 0) "
      "FROM hub_number_ranges "
      "WHERE node_id = ? AND voided_ms IS NULL");
  st.bind(1, node_id);
  st.step();
  return static_cast<std::uint64_t>(st.int64(0));
}

bool record_number_use(storage::Database& db, const std::string& node_id, const std::string& number) {
  auto parsed = shared::parse_participant_number(number);
  if (!parsed) return false;
  const auto n = parsed->n;
  db.prepare("UPDATE hub_number_ranges SET used_through = CASE WHEN used_through > ? THEN used_through ELSE ? END "
             "WHERE node_id = ? AND site_id = ? AND first <= ? AND last >= ?")
      .bind_all(storage::sql_int(n), storage::sql_int(n), node_id, parsed->prefix, storage::sql_int(n), storage::sql_int(n))
      .run();
  return db.changes() == 1;
}

std::uint64_t void_node_numbers(storage::Database& db, const std::string& node_id, std::int64_t now_ms) {
  auto left = numbers_left(db, node_id);
  db.prepare("UPDATE hub_number_ranges SET voided_ms = ? WHERE node_id = ? AND voided_ms IS NULL")
      .bind_all(now_ms, node_id)
      .run();
  return left;
}

std::vector<std::string> verify_number_ranges(storage::Database& db, DirectiveOutbox& outbox,
                                              const std::vector<std::string>& node_ids) {
  std::vector<std::string> problems;
  // (node, range id) -> "site first-last (digits)", as signed.
  auto describe = [](const std::string& site, std::int64_t first, std::int64_t last, std::int64_t digits) {
    return "site " + site + " numbers " + std::to_string(first) + "-" + std::to_string(last) + " (" +
           std::to_string(digits) + " digits)";
  };
  std::map<std::pair<std::string, std::int64_t>, std::string> signed_ranges;
  for (const auto& node : node_ids)
    for (const auto& [seq, payload] : outbox.payloads_of(node, shared::kGrantNumbersDirective)) {
      auto g = shared::parse_number_range(payload);
      if (!g) {
        problems.push_back("hub_directives: node " + node + " directive " + std::to_string(seq) +
                           " is not a number range (" + g.error().message + ")");
        continue;
      }
      signed_ranges[{node, static_cast<std::int64_t>(g->range_id)}] = describe(g->prefix, g->first, g->last, g->digits);
    }
  auto st = db.prepare("SELECT node_id, range_id, site_id, first, last, digits FROM hub_number_ranges");
  while (st.step()) {
    const std::pair<std::string, std::int64_t> key{st.text(0), st.int64(1)};
    const std::string where = "hub_number_ranges: node " + key.first + " range " + std::to_string(key.second);
    const auto stored = describe(st.text(2), st.int64(3), st.int64(4), st.int64(5));
    auto it = signed_ranges.find(key);
    if (it == signed_ranges.end())
      problems.push_back(where + " (" + stored + ") has no grant.numbers directive: it was added by hand");
    else if (it->second != stored)
      problems.push_back(where + ": " + stored + ", its directive says " + it->second);
    if (it != signed_ranges.end()) signed_ranges.erase(it);
  }
  for (const auto& [key, v] : signed_ranges)
    problems.push_back("hub_number_ranges: node " + key.first + " range " + std::to_string(key.second) + " (" + v +
                       ") is missing");
  return problems;
}

}  // namespace irt::hub
