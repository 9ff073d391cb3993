#include "hub/directive_outbox.h"

#include <algorithm>
#include <map>

#include "crypto/seal.h"
#include "sync/directive.h"
#include "sync/hlc.h"

namespace irt::hub {

namespace {
const std::vector<storage::Migration> kDirectiveOutboxMigrations = {
    {1, R"sql(
CREATE TABLE hub_directives (
  node_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  hlc INTEGER NOT NULL,
  issued_ms INTEGER NOT NULL,
  record BLOB NOT NULL,
  PRIMARY KEY (node_id, seq)
) WITHOUT ROWID;
)sql"},
    // The seq a node's next directive continues above when the node applied
    // directives this hub no longer holds (continue_above).
    {2, R"sql(
CREATE TABLE hub_directive_floors (
  node_id TEXT PRIMARY KEY,
  applied INTEGER NOT NULL
) WITHOUT ROWID;
)sql"},
};
}  // namespace

shared::Status DirectiveOutbox::migrate(storage::Database& db) { return db.migrate("hub.directives", kDirectiveOutboxMigrations); }

std::uint64_t DirectiveOutbox::last_seq(const std::string& node_id) {
  auto st = db_.prepare("SELECT COALESCE(MAX(seq), 0) FROM hub_directives WHERE node_id = ?");
  st.bind(1, node_id);
  st.step();
  auto last = static_cast<std::uint64_t>(st.int64(0));
  auto floor = db_.prepare("SELECT applied FROM hub_directive_floors WHERE node_id = ?");
  floor.bind(1, node_id);
  if (floor.step()) last = std::max(last, static_cast<std::uint64_t>(floor.int64(0)));
  return last;
}

std::uint64_t DirectiveOutbox::continue_above(const std::string& node_id, std::uint64_t applied) {
  const auto held = last_seq(node_id);
  if (applied <= held) return held;
  db_.prepare(
         "INSERT INTO hub_directive_floors(node_id, applied) VALUES (?, ?) "
         "ON CONFLICT (node_id) DO UPDATE SET applied = excluded.applied")
      .bind_all(node_id, static_cast<std::int64_t>(applied))
      .run();
  return held;
}

std::uint64_t DirectiveOutbox::issue(const std::string& node_id, std::string_view type,
                                     std::string_view payload_json, std::int64_t now_ms) {
  auto last_hlc = db_.prepare("SELECT COALESCE(MAX(hlc), 0) FROM hub_directives");
  last_hlc.step();
  sync::HybridClock clock([now_ms] { return now_ms; }, static_cast<std::uint64_t>(last_hlc.int64(0)));

  sync::DirectiveBody body;
  body.node_id = node_id;
  body.seq = last_seq(node_id) + 1;
  body.hlc = clock.now();
  body.issued_ms = now_ms;
  body.type = std::string(type);
  std::string sealed_payload(payload_json);
  if (!sync::sealed_field_names(type).empty()) {
    auto ed_key = node_key_(node_id);
    sealed_payload = sync::seal_fields(type, payload_json, ed_key ? crypto::box_key_of(*ed_key) : std::nullopt);
  }
  auto payload = crypto::as_bytes(sealed_payload);
  body.payload.assign(payload.begin(), payload.end());
  auto d = sync::sign_directive(std::move(body), hub_key_);

  auto st = db_.prepare(
      "INSERT INTO hub_directives(node_id, seq, type, hlc, issued_ms, record) VALUES (?, ?, ?, ?, ?, ?)");
  st.bind_all(node_id, static_cast<std::int64_t>(d.body.seq), d.body.type, static_cast<std::int64_t>(d.body.hlc),
              now_ms, d.record)
      .run();
  return d.body.seq;
}

std::vector<std::vector<std::uint8_t>> DirectiveOutbox::after(const std::string& node_id, std::uint64_t after,
                                                              std::size_t limit) {
  auto st = db_.prepare("SELECT record FROM hub_directives WHERE node_id = ? AND seq > ? ORDER BY seq LIMIT ?");
  st.bind_all(node_id, static_cast<std::int64_t>(after), static_cast<std::int64_t>(limit));
  std::vector<std::vector<std::uint8_t>> out;
  while (st.step()) out.push_back(st.blob(0));
  return out;
}

std::vector<std::pair<std::uint64_t, std::string>> DirectiveOutbox::payloads_of(const std::string& node_id,
                                                                                 std::string_view type) {
  auto st = db_.prepare("SELECT record FROM hub_directives WHERE node_id = ? AND type = ? ORDER BY seq");
  st.bind_all(node_id, std::string(type));
  std::vector<std::pair<std::uint64_t, std::string>> out;
  while (st.step()) {
    auto d = sync::parse_directive(st.blob(0));
    if (!d) throw storage::StorageError("a stored directive of node " + node_id + " no longer parses; run 'irt-hub verify'");
    out.emplace_back(d->body.seq, std::string(d->body.payload.begin(), d->body.payload.end()));
  }
  return out;
}

std::vector<std::string> DirectiveOutbox::verify(const crypto::PublicKey& hub_key) {
  std::vector<std::string> problems;
  std::map<std::string, std::int64_t> floors;
  {
    auto st = db_.prepare("SELECT node_id, applied FROM hub_directive_floors");
    while (st.step()) floors[st.text(0)] = st.int64(1);
  }
  auto st = db_.prepare("SELECT node_id, seq, type, record FROM hub_directives ORDER BY node_id, seq");
  std::string node;
  std::int64_t expected = 1;
  while (st.step()) {
    const auto seq = st.int64(1);
    const std::string where = "hub_directives: node " + st.text(0) + " directive " + std::to_string(seq);
    if (st.text(0) != node) node = st.text(0), expected = 1;
    if (seq != expected && !(floors.count(node) && seq == floors[node] + 1))
      problems.push_back(where + ": directive(s) " + std::to_string(expected) + " to " + std::to_string(seq - 1) +
                         " are missing");
    expected = seq + 1;
    auto d = sync::parse_directive(st.blob(3));
    if (!d) {
      problems.push_back(where + ": the stored record does not parse (" + d.error().message + ")");
      continue;
    }
    if (!sync::verify_directive(*d, hub_key))
      problems.push_back(where + ": the record is not signed by this hub's key (it was edited)");
    else if (d->body.node_id != node || static_cast<std::int64_t>(d->body.seq) != seq || d->body.type != st.text(2))
      problems.push_back(where + ": the row's node, seq or type differs from the signed record's (" +
                         d->body.node_id + " " + std::to_string(d->body.seq) + " " + d->body.type + ")");
  }
  return problems;
}

}  // namespace irt::hub
