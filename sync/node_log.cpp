#include "sync/node_log.h"

#include <nlohmann/json.hpp>

#include "shared/event_payloads.h"
#include "sync/merkle.h"

namespace irt::sync {

namespace {

const std::vector<storage::Migration> kNodeLogMigrations = {
    {1, R"(
      CREATE TABLE node_events (seq INTEGER PRIMARY KEY, hash BLOB NOT NULL, sealed BLOB NOT NULL,
                                recorded_ms INTEGER NOT NULL);
      CREATE TABLE node_directives (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, sealed BLOB NOT NULL,
                                    applied_ms INTEGER NOT NULL);
      CREATE TABLE node_cursors (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE node_receipts (seq INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
      CREATE TABLE node_sealed (key TEXT PRIMARY KEY, sealed BLOB NOT NULL);
    )"},
};

constexpr const char* kAcked = "acked_seq";
constexpr const char* kApplied = "applied_directive_seq";
constexpr const char* kHlc = "hlc";
constexpr const char* kHubTimeSeen = "hub_time_seen_ms";
constexpr const char* kHubClockOffset = "hub_clock_offset_ms";
// The sealed key-value holding the chain head, {"seq": n, "hash": "<hex>"}.
constexpr const char* kHeadKey = "chain_head";

std::string ad(const std::string& node_id, const std::string& kind, std::uint64_t seq) {
  return "irt/node/" + node_id + "/" + kind + "/" + std::to_string(seq);
}

// A stored row that does not open under the data key, or opens to something
// this node never writes, was changed after it was written: never "absent".
shared::Error damaged_row(const std::string& what, const std::string& detail = "") {
  return shared::make_error(shared::Errc::integrity,
                            "node data is damaged (" + what + " does not authenticate" +
                                (detail.empty() ? ": edited, moved or corrupted" : ": " + detail) +
                                "); restore the data directory from backup and report it to the central team");
}

}  // namespace

shared::Result<NodeLog> NodeLog::open(storage::Database& db, const crypto::AeadKey& data_key, std::string node_id,
                                      WallClock wall) {
  NodeLog log(db, data_key, std::move(node_id), std::move(wall));
  // Version 2 seals the chain head of a log written before heads existed (and
  // the empty head of a new log), in the migration's own transaction: a file
  // at version 2 without a head has lost it.
  auto migrations = kNodeLogMigrations;
  migrations.push_back({2, "", [&log](storage::Database&) { log.seal_head(log.last_row()); }});
  if (auto st = db.migrate("node_log", migrations); !st) return st.error();
  return log;
}

NodeLog::Head NodeLog::last_row() {
  auto st = db_->prepare("SELECT seq, hash FROM node_events ORDER BY seq DESC LIMIT 1");
  if (!st.step()) return {};
  auto hash = crypto::Hash::from_view(st.blob(1));
  return {static_cast<std::uint64_t>(st.int64(0)), hash.value_or(crypto::Hash{})};
}

void NodeLog::seal_head(const Head& head) {
  std::string j = nlohmann::json{{"seq", head.seq}, {"hash", head.hash.hex()}}.dump();
  put_sealed(kHeadKey, Bytes(j.begin(), j.end()));
}

std::uint64_t NodeLog::cursor(const char* name) {
  auto st = db_->prepare("SELECT value FROM node_cursors WHERE name = ?");
  st.bind(1, name);
  return st.step() ? static_cast<std::uint64_t>(st.int64(0)) : 0;
}

void NodeLog::set_cursor(const char* name, std::uint64_t value) {
  db_->prepare("INSERT INTO node_cursors(name, value) VALUES(?, ?) "
               "ON CONFLICT(name) DO UPDATE SET value = excluded.value")
      .bind_all(name, static_cast<std::int64_t>(value))
      .run();
}

std::uint64_t NodeLog::last_seq() {
  auto st = db_->prepare("SELECT coalesce(max(seq), 0) FROM node_events");
  st.step();
  return static_cast<std::uint64_t>(st.int64(0));
}
std::uint64_t NodeLog::acked_seq() { return cursor(kAcked); }
std::uint64_t NodeLog::pending_events() {
  auto last = last_seq(), acked = acked_seq();
  return last > acked ? last - acked : 0;
}
std::uint64_t NodeLog::applied_directive_seq() { return cursor(kApplied); }
std::uint64_t NodeLog::last_hlc() { return cursor(kHlc); }

std::int64_t NodeLog::hub_time_seen_ms() { return static_cast<std::int64_t>(cursor(kHubTimeSeen)); }
// Stored as the int64 bits of the offset, which may be negative.
std::int64_t NodeLog::hub_clock_offset_ms() { return static_cast<std::int64_t>(cursor(kHubClockOffset)); }
void NodeLog::set_hub_clock_offset_ms(std::int64_t offset_ms) {
  set_cursor(kHubClockOffset, static_cast<std::uint64_t>(offset_ms));
}

void NodeLog::observe_hub_time(std::uint64_t hlc) {
  HybridClock clock(wall_, cursor(kHlc));
  set_cursor(kHlc, clock.observe(hlc));
  if (HybridClock::millis(hlc) > hub_time_seen_ms())
    set_cursor(kHubTimeSeen, static_cast<std::uint64_t>(HybridClock::millis(hlc)));
}

shared::Result<SignedEvent> NodeLog::append(const crypto::SigningKey& key, const std::string& actor,
                                            const std::string& type, const Bytes& payload) {
  EventBody body;
  body.node_id = node_id_;
  body.actor = actor;
  body.type = type;
  body.payload = payload;
  // The last line of defence behind the request limits: nothing is written.
  if (auto st = check_event_limits(body); !st)
    return shared::make_error(st.error().code, "a " + type + " event was not recorded: " + st.error().message +
                                                   "; shorten what was entered and try again");
  auto last = last_row();
  body.seq = last.seq + 1;
  body.prev_hash = last.hash;
  HybridClock clock(wall_, cursor(kHlc));
  body.hlc = clock.now();
  set_cursor(kHlc, body.hlc);
  body.device_time_ms = wall_();
  body.directive_seq = cursor(kApplied);
  SignedEvent e = sign_event(std::move(body), key);
  auto sealed = crypto::aead_seal(*key_, e.record, crypto::as_bytes(ad(node_id_, "event", e.body.seq)));
  db_->prepare("INSERT INTO node_events(seq, hash, sealed, recorded_ms) VALUES(?, ?, ?, ?)")
      .bind_all(static_cast<std::int64_t>(e.body.seq), storage::BlobView(e.hash.view()), sealed,
                e.body.device_time_ms)
      .run();
  seal_head({e.body.seq, e.hash});
  return e;
}

shared::Result<Bytes> NodeLog::record(std::uint64_t seq) {
  auto st = db_->prepare("SELECT sealed FROM node_events WHERE seq = ?");
  st.bind(1, static_cast<std::int64_t>(seq));
  if (!st.step()) return shared::make_error(shared::Errc::not_found, "event " + std::to_string(seq) + " is missing");
  auto opened = crypto::aead_open(*key_, st.blob(0), crypto::as_bytes(ad(node_id_, "event", seq)));
  if (!opened)
    return shared::make_error(shared::Errc::integrity,
                              "event " + std::to_string(seq) +
                                  ": stored row does not authenticate (edited, moved or corrupted); "
                                  "restore the node's data from backup and report it");
  return std::move(*opened);
}

std::vector<Bytes> NodeLog::records_after(std::uint64_t after, std::size_t max_count, std::size_t max_bytes) {
  std::vector<Bytes> out;
  std::size_t bytes = 0;
  auto st = db_->prepare("SELECT seq, sealed FROM node_events WHERE seq > ? ORDER BY seq LIMIT ?");
  st.bind_all(static_cast<std::int64_t>(after), static_cast<std::int64_t>(max_count));
  while (st.step()) {
    auto seq = static_cast<std::uint64_t>(st.int64(0));
    auto opened = crypto::aead_open(*key_, st.blob(1), crypto::as_bytes(ad(node_id_, "event", seq)));
    // A row that does not authenticate is not sent: verify names it, and the
    // hub keeps waiting for that sequence rather than receiving garbage.
    if (!opened) break;
    if (!out.empty() && bytes + opened->size() > max_bytes) break;
    bytes += opened->size();
    out.push_back(std::move(*opened));
  }
  return out;
}

void NodeLog::set_acked(std::uint64_t seq, const std::optional<Receipt>& receipt) {
  set_cursor(kAcked, seq);
  if (receipt) {
    auto json = receipt_to_json(*receipt);
    auto sealed = crypto::aead_seal(*key_, crypto::as_bytes(json), crypto::as_bytes(ad(node_id_, "receipt", receipt->seq)));
    db_->prepare("INSERT OR REPLACE INTO node_receipts(seq, sealed) VALUES(?, ?)")
        .bind_all(static_cast<std::int64_t>(receipt->seq), sealed)
        .run();
  }
}

shared::Result<std::optional<Receipt>> NodeLog::receipt(std::uint64_t seq) {
  auto st = db_->prepare("SELECT sealed FROM node_receipts WHERE seq = ?");
  st.bind(1, static_cast<std::int64_t>(seq));
  if (!st.step()) return std::optional<Receipt>();
  auto what = "the receipt for event " + std::to_string(seq);
  auto opened = crypto::aead_open(*key_, st.blob(0), crypto::as_bytes(ad(node_id_, "receipt", seq)));
  if (!opened) return damaged_row(what);
  auto r = receipt_from_json(crypto::to_string(*opened));
  if (!r) return damaged_row(what, r.error().message);
  return std::optional<Receipt>(std::move(r).value());
}

shared::Status NodeLog::apply_directive(const SignedDirective& d, const crypto::SigningKey& key,
                                        const Applier& apply) {
  storage::Transaction tx(*db_);
  std::uint64_t applied = cursor(kApplied);
  if (d.body.seq <= applied) return {};  // already applied: exactly once
  if (d.body.seq != applied + 1)
    return shared::make_error(shared::Errc::conflict, "hub directive " + std::to_string(d.body.seq) +
                                                          " arrived before directive " + std::to_string(applied + 1) +
                                                          "; the next sync fetches them in order");
  if (d.body.node_id != node_id_)
    return shared::make_error(shared::Errc::integrity,
                              "hub directive " + std::to_string(d.body.seq) + " is addressed to node " +
                                  d.body.node_id + ", not this node; report it to the central team");
  if (auto st = apply(d); !st) return st;  // the transaction rolls back
  observe_hub_time(d.body.hlc);
  auto sealed = crypto::aead_seal(*key_, d.record, crypto::as_bytes(ad(node_id_, "directive", d.body.seq)));
  db_->prepare("INSERT INTO node_directives(seq, type, sealed, applied_ms) VALUES(?, ?, ?, ?)")
      .bind_all(static_cast<std::int64_t>(d.body.seq), d.body.type, sealed, wall_())
      .run();
  set_cursor(kApplied, d.body.seq);
  const nlohmann::json payload =
      shared::DirectiveApplied{d.body.seq, d.body.type, crypto::hash_domain("irt/directive/v1", d.record).hex()};
  std::string p = payload.dump();
  if (auto e = append(key, "system", std::string(shared::kDirectiveAppliedEvent), Bytes(p.begin(), p.end())); !e)
    return e.error();
  tx.commit();
  return {};
}

void NodeLog::put_sealed(const std::string& key, const Bytes& value) {
  auto sealed = crypto::aead_seal(*key_, value, crypto::as_bytes("irt/node/" + node_id_ + "/kv/" + key));
  db_->prepare("INSERT INTO node_sealed(key, sealed) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET sealed = excluded.sealed")
      .bind_all(key, sealed)
      .run();
}

void NodeLog::erase_sealed(const std::string& key) {
  db_->prepare("DELETE FROM node_sealed WHERE key = ?").bind_all(key).run();
}

shared::Result<std::optional<Bytes>> NodeLog::get_sealed(const std::string& key) {
  auto st = db_->prepare("SELECT sealed FROM node_sealed WHERE key = ?");
  st.bind(1, key);
  if (!st.step()) return std::optional<Bytes>();
  auto opened = crypto::aead_open(*key_, st.blob(0), crypto::as_bytes("irt/node/" + node_id_ + "/kv/" + key));
  if (!opened) return damaged_row("the sealed record '" + key + "'");
  return std::optional<Bytes>(std::move(*opened));
}

shared::Status NodeLog::verify(const crypto::PublicKey& node_key) {
  // What this node writes always opens, parses, links and verifies, so any
  // failure below means the stored row changed after it was written.
  auto altered = [](std::uint64_t seq, const std::string& what) {
    return shared::make_error(shared::Errc::integrity,
                              "event " + std::to_string(seq) + ": " + what +
                                  "; the record was altered or damaged after this node wrote it: restore the "
                                  "node's data from backup and report it to the central team");
  };
  auto st = db_->prepare("SELECT seq, hash, sealed FROM node_events ORDER BY seq");
  std::uint64_t expected = 1;
  crypto::Hash prev;
  while (st.step()) {
    auto row_seq = static_cast<std::uint64_t>(st.int64(0));
    if (row_seq != expected)
      return altered(expected, "missing (the next stored event is " + std::to_string(row_seq) + ")");
    auto opened = crypto::aead_open(*key_, st.blob(2), crypto::as_bytes(ad(node_id_, "event", row_seq)));
    if (!opened) return altered(row_seq, "stored row does not authenticate (edited, moved or corrupted)");
    // Sizes are checked last: an oversized record this node signed is not tampering.
    auto e = parse_event(*opened, EventLimits::ignored);
    if (!e)
      return altered(row_seq, "the stored row opens with this node's data key but is not an event record (" +
                                  e.error().message + "), so someone holding the passphrase rewrote it");
    if (e->body.seq != row_seq) return altered(row_seq, "record carries sequence " + std::to_string(e->body.seq));
    if (e->body.node_id != node_id_) return altered(row_seq, "record belongs to node " + e->body.node_id);
    if (e->body.prev_hash != prev)
      return altered(row_seq, "previous hash does not match event " + std::to_string(row_seq - 1));
    if (crypto::Hash::from_view(st.blob(1)) != e->hash) return altered(row_seq, "stored hash does not match the record");
    if (!verify_event(*e, node_key)) return altered(row_seq, "signature does not verify");
    if (auto limits = check_event_limits(e->body); !limits)
      return shared::make_error(
          shared::Errc::integrity,
          "event " + std::to_string(row_seq) + " (" + e->body.type + "): intact and signed by this node, but " +
              limits.error().message +
              "; it was recorded by an irt-node version that did not bound request fields, and the hub refuses "
              "every push from this node until it is resolved: report it to the central team");
    prev = e->hash;
    ++expected;
  }
  return check_end();
}

shared::Status NodeLog::check_end() {
  auto damaged = [](const std::string& what) {
    return shared::make_error(shared::Errc::integrity,
                              what + "; restore the node's data from backup and report it to the central team");
  };
  auto sealed = get_sealed(kHeadKey);
  if (!sealed) return damaged("the log's sealed head does not authenticate (edited, moved or corrupted)");
  if (!*sealed) return damaged("the log's sealed head is missing (deleted)");
  auto j = nlohmann::json::parse(crypto::to_string(**sealed), nullptr, false);
  auto hash = j.is_object() && j.value("hash", nlohmann::json()).is_string()
                  ? crypto::Hash::from_hex(j["hash"].get<std::string>())
                  : std::nullopt;
  if (!hash || !j.value("seq", nlohmann::json()).is_number_unsigned())
    return damaged("the log's sealed head is malformed");
  Head head{j["seq"].get<std::uint64_t>(), *hash};
  auto last = last_row();
  auto n = [](std::uint64_t seq) { return std::to_string(seq); };
  if (last.seq < head.seq)
    return damaged("the log ends at event " + n(last.seq) + " but its sealed head says " + n(head.seq) +
                   ": events were deleted");
  if (last.seq > head.seq)
    return damaged("the log ends at event " + n(last.seq) + " but its sealed head says " + n(head.seq) +
                   ": events were added outside the node or the head was replaced");
  if (last.hash != head.hash)
    return damaged("the log's last event " + n(last.seq) + " is not the one its sealed head records (the hash "
                   "differs): events were replaced");
  if (auto acked = acked_seq(); acked > last.seq)
    return damaged("the hub has acknowledged events up to " + n(acked) + " but the log ends at event " +
                   n(last.seq) + ": events were deleted");
  return {};
}

}  // namespace irt::sync
