#include "sync/ledger.h"

#include <algorithm>
#include <bit>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "shared/civil_date.h"
#include "shared/command_line.h"
#include "sync/batch.h"
#include "sync/checkpoint.h"
#include "sync/event.h"
#include "sync/hlc.h"
#include "sync/merkle.h"

namespace irt::sync {

namespace {

using storage::BlobView;
using storage::Statement;
using storage::Transaction;

// Schema. ledger_events keeps the exact record bytes as received: nothing is
// re-serialised, so verify_all re-checks the very bytes the node signed.
// Since version 2 an event's row is keyed by its Merkle leaf index and holds
// its leaf hash, so recording an event appends one row at the end of one
// table (plus its (node_id, seq) index entry) instead of three b-tree inserts
// into two tables; verify_all re-derives each leaf hash from the record.
// The move to version 2 carries every event: one whose leaf row is missing
// fails the NOT NULL on leaf_hash, so the migration rolls back and the file
// is left as it was, for 'irt-hub verify' to name the damage.
const std::vector<storage::Migration> kLedgerMigrations = {
    {1, R"sql(
CREATE TABLE ledger_nodes (
  node_id TEXT PRIMARY KEY,
  site_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  public_key BLOB NOT NULL UNIQUE,
  certificate_serial INTEGER NOT NULL UNIQUE,
  certificate BLOB NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'frozen', 'revoked')),
  status_reason TEXT NOT NULL DEFAULT '',
  status_changed_ms INTEGER NOT NULL DEFAULT 0,
  enrolled_ms INTEGER NOT NULL,
  acked_seq INTEGER NOT NULL DEFAULT 0,
  acked_hash BLOB NOT NULL
);
CREATE TABLE ledger_events (
  node_id TEXT NOT NULL REFERENCES ledger_nodes(node_id),
  seq INTEGER NOT NULL,
  hash BLOB NOT NULL,
  record BLOB NOT NULL,
  leaf_index INTEGER NOT NULL UNIQUE,
  received_ms INTEGER NOT NULL,
  PRIMARY KEY (node_id, seq)
) WITHOUT ROWID;
CREATE TABLE ledger_leaves (
  leaf_index INTEGER PRIMARY KEY,
  leaf_hash BLOB NOT NULL,
  node_id TEXT NOT NULL,
  seq INTEGER NOT NULL
);
CREATE TABLE ledger_frontier (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  tree_size INTEGER NOT NULL,
  compact_range BLOB NOT NULL
);
INSERT INTO ledger_frontier(id, tree_size, compact_range) VALUES (1, 0, x'0000000000000000');
CREATE TABLE ledger_checkpoints (
  tree_size INTEGER PRIMARY KEY,
  root BLOB NOT NULL,
  text TEXT NOT NULL,
  signed_ms INTEGER NOT NULL
);
CREATE TABLE ledger_alerts (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  node_id TEXT NOT NULL,
  seq INTEGER,
  message TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  resolved_by TEXT,
  resolved_ms INTEGER,
  resolution TEXT
);
CREATE TABLE ledger_evidence (
  id INTEGER PRIMARY KEY,
  node_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  reason TEXT NOT NULL,
  record BLOB NOT NULL,
  record_digest BLOB NOT NULL,
  received_ms INTEGER NOT NULL,
  alert_id INTEGER REFERENCES ledger_alerts(id),
  UNIQUE (node_id, seq, reason, record_digest)
);
)sql"},
    {2, R"sql(
CREATE TABLE ledger_entries (
  leaf_index INTEGER PRIMARY KEY,
  node_id TEXT NOT NULL REFERENCES ledger_nodes(node_id),
  seq INTEGER NOT NULL,
  hash BLOB NOT NULL,
  leaf_hash BLOB NOT NULL,
  received_ms INTEGER NOT NULL,
  record BLOB NOT NULL,
  UNIQUE (node_id, seq)
);
INSERT INTO ledger_entries(leaf_index, node_id, seq, hash, leaf_hash, received_ms, record)
  SELECT e.leaf_index, e.node_id, e.seq, e.hash, l.leaf_hash, e.received_ms, e.record
  FROM ledger_events e LEFT JOIN ledger_leaves l ON l.leaf_index = e.leaf_index
  ORDER BY e.leaf_index;
DROP TABLE ledger_leaves;
DROP TABLE ledger_events;
ALTER TABLE ledger_entries RENAME TO ledger_events;
)sql"},
};

std::int64_t i64(std::uint64_t v) { return static_cast<std::int64_t>(v); }
std::uint64_t u64(std::int64_t v) { return static_cast<std::uint64_t>(v); }

crypto::Hash hash_column(const Statement& st, int col) {
  auto h = crypto::Hash::from_view(st.blob(col));
  if (!h) throw storage::StorageError("a stored hash is not 32 bytes; the ledger database is damaged");
  return *h;
}

NodeStatus parse_status(const std::string& s) {
  if (s == "frozen") return NodeStatus::frozen;
  if (s == "revoked") return NodeStatus::revoked;
  return NodeStatus::active;
}

constexpr const char* kNodeColumns =
    "node_id, site_id, kind, public_key, certificate_serial, certificate, status, status_reason, "
    "status_changed_ms, enrolled_ms, acked_seq, acked_hash";

LedgerNode read_node(const Statement& st) {
  LedgerNode n;
  n.node_id = st.text(0);
  n.site_id = st.text(1);
  n.kind = st.text(2);
  auto key = crypto::PublicKey::from_view(st.blob(3));
  if (!key) throw storage::StorageError("node " + n.node_id + " has a stored public key that is not 32 bytes");
  n.public_key = *key;
  n.certificate_serial = u64(st.int64(4));
  n.certificate = st.blob(5);
  n.status = parse_status(st.text(6));
  n.status_reason = st.text(7);
  n.status_changed_ms = st.int64(8);
  n.enrolled_ms = st.int64(9);
  n.acked_seq = u64(st.int64(10));
  n.acked_hash = hash_column(st, 11);
  return n;
}

std::optional<LedgerNode> select_node(storage::Database& db, const std::string& node_id) {
  auto st = db.prepare(std::string("SELECT ") + kNodeColumns + " FROM ledger_nodes WHERE node_id = ?");
  st.bind(1, node_id);
  if (!st.step()) return std::nullopt;
  return read_node(st);
}

std::optional<Refusal> refuse_for_status(const LedgerNode& node) {
  if (node.status == NodeStatus::revoked)
    return refuse(wire_error::kRevoked, "node " + node.node_id + " was revoked (" + node.status_reason +
                                            "); it can no longer sync. Enroll a new node with a fresh token");
  if (node.status == NodeStatus::frozen)
    return refuse(wire_error::kFrozen, "node " + node.node_id + " is frozen (" + node.status_reason +
                                           "); an administrator must review the evidence and run "
                                           "'irt-hub unfreeze' before it can push again");
  return std::nullopt;
}

Refusal gap(const LedgerNode& node, std::uint64_t got) {
  auto r = refuse(wire_error::kGap, "node " + node.node_id + " sent seq " + std::to_string(got) +
                                        " but the hub has recorded up to seq " + std::to_string(node.acked_seq) +
                                        "; send the events from seq " + std::to_string(node.acked_seq + 1));
  r.expected_seq = node.acked_seq + 1;
  return r;
}

struct StoredCheckpoint {
  std::uint64_t size = 0;
  std::string text;
};

std::optional<StoredCheckpoint> select_latest_checkpoint(storage::Database& db) {
  auto st = db.prepare("SELECT tree_size, text FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1");
  if (!st.step()) return std::nullopt;
  return StoredCheckpoint{u64(st.int64(0)), st.text(1)};
}

shared::Result<CompactRange> read_frontier(storage::Database& db) {
  auto st = db.prepare("SELECT compact_range FROM ledger_frontier WHERE id = 1");
  if (!st.step())
    return shared::make_error(shared::Errc::integrity, "the ledger frontier row is missing");
  return CompactRange::decode(st.blob(0));
}

// Where the hub appends or answers, a damaged frontier is an I/O failure of
// its own database: nothing can be recorded until 'irt-hub verify' names it.
CompactRange select_frontier(storage::Database& db) {
  auto frontier = read_frontier(db);
  if (!frontier)
    throw storage::StorageError(frontier.error().message + "; the ledger database is damaged: run 'irt-hub verify'");
  return std::move(frontier).value();
}

void insert_checkpoint(storage::Database& db, const Checkpoint& cp, const crypto::SigningKey& key,
                       std::int64_t now_ms) {
  auto text = sign_checkpoint(cp, kCheckpointKeyName, key);
  auto st = db.prepare(
      "INSERT INTO ledger_checkpoints(tree_size, root, text, signed_ms) VALUES (?, ?, ?, ?) "
      "ON CONFLICT(tree_size) DO NOTHING");
  st.bind_all(i64(cp.size), BlobView(cp.root.view()), text, now_ms).run();
}

}  // namespace

const char* to_string(NodeStatus s) {
  switch (s) {
    case NodeStatus::active: return "active";
    case NodeStatus::frozen: return "frozen";
    case NodeStatus::revoked: return "revoked";
  }
  return "active";
}

// ---- The in-memory tree used for proofs.
//
// levels_[0] holds the leaf hashes; levels_[k][i] the root of the perfect
// subtree of 2^k leaves starting at leaf i * 2^k, kept only once complete. In
// RFC 6962's recursive split every left part is such an aligned perfect
// subtree, so any MTH(D[a:b]) met while building a path costs O(log n).
class Ledger::Tree {
 public:
  std::uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }
  void clear() { levels_.clear(); }

  void append(const Hash& leaf) {
    if (levels_.empty()) levels_.emplace_back();
    levels_[0].push_back(leaf);
    for (std::size_t k = 0; levels_[k].size() % 2 == 0; ++k) {
      if (levels_.size() == k + 1) levels_.emplace_back();
      const auto& below = levels_[k];
      levels_[k + 1].push_back(merkle_node_hash(below[below.size() - 2], below.back()));
    }
  }

  Hash range(std::uint64_t begin, std::uint64_t end) const {
    std::uint64_t n = end - begin;
    if (std::has_single_bit(n) && begin % n == 0) {
      auto k = static_cast<std::size_t>(std::countr_zero(n));
      return levels_[k][static_cast<std::size_t>(begin >> k)];
    }
    std::uint64_t split = std::bit_floor(n - 1);
    return merkle_node_hash(range(begin, begin + split), range(begin + split, end));
  }

  // RFC 6962 section 2.1.1 PATH(index, D[0:tree_size]).
  std::vector<Hash> proof(std::uint64_t index, std::uint64_t tree_size) const {
    std::vector<Hash> path;
    std::uint64_t lo = 0, hi = tree_size;
    while (hi - lo > 1) {
      std::uint64_t split = std::bit_floor(hi - lo - 1);
      if (index < lo + split) {
        path.push_back(range(lo + split, hi));
        hi = lo + split;
      } else {
        path.push_back(range(lo, lo + split));
        lo += split;
      }
    }
    std::reverse(path.begin(), path.end());
    return path;
  }

 private:
  std::vector<std::vector<Hash>> levels_;
};

// ---- Opening.

Ledger::Ledger(storage::Database& db, const crypto::SigningKey& hub_key, std::string origin, Options options)
    : db_(db), hub_key_(hub_key), origin_(std::move(origin)), pool_(options.verify_threads),
      tree_(std::make_unique<Tree>()) {}

Ledger::~Ledger() = default;

shared::Result<std::unique_ptr<Ledger>> Ledger::open(storage::Database& db, const crypto::SigningKey& hub_key,
                                                     std::string origin, Options options) {
  try {
    if (auto st = db.migrate("ledger", kLedgerMigrations); !st) return st.error();
  } catch (const storage::StorageError& e) {
    return shared::make_error(shared::Errc::integrity,
                              "the ledger in " + db.label() + " could not be brought to schema version " +
                                  std::to_string(kLedgerMigrations.back().version) + " (" + e.what() +
                                  "); nothing was changed. Run 'irt-hub verify' with the release that wrote it");
  }
  std::unique_ptr<Ledger> ledger(new Ledger(db, hub_key, std::move(origin), options));
  if (!select_latest_checkpoint(db)) {
    // The empty tree's head, so /sync/v1/checkpoint answers from the start;
    // in the caller's transaction when one is open (irt-hub init).
    std::optional<Transaction> tx;
    if (!db.in_transaction()) tx.emplace(db);
    insert_checkpoint(db, Checkpoint{ledger->origin_, 0, merkle_root({}), std::nullopt}, hub_key, system_millis());
    if (tx) tx->commit();
  }
  return ledger;
}

void Ledger::notify(const LedgerChange& change) {
  if (observer_) observer_(change);
}

// ---- Nodes.

std::string Ledger::next_node_id(const std::string& site_id) {
  auto count = db_.prepare("SELECT count(*) FROM ledger_nodes WHERE site_id = ?");
  count.bind(1, site_id);
  count.step();
  for (std::int64_t n = count.int64(0) + 1;; ++n) {
    std::string id = site_id + "-N" + std::to_string(n);
    if (!select_node(db_, id)) return id;
  }
}

std::uint64_t Ledger::next_certificate_serial() {
  auto st = db_.prepare("SELECT COALESCE(MAX(certificate_serial), 0) + 1 FROM ledger_nodes");
  st.step();
  return u64(st.int64(0));
}

void Ledger::register_node(const NodeCertificate& cert, std::int64_t now_ms) {
  crypto::Hash zero;
  auto st = db_.prepare(
      "INSERT INTO ledger_nodes(node_id, site_id, kind, public_key, certificate_serial, certificate, status, "
      "status_changed_ms, enrolled_ms, acked_seq, acked_hash) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, 0, ?)");
  st.bind_all(cert.node_id, cert.site_id, cert.kind, BlobView(cert.node_key.view()), i64(cert.serial), cert.record,
              now_ms, now_ms, BlobView(zero.view()))
      .run();
}

std::optional<LedgerNode> Ledger::find_node(const std::string& node_id) { return select_node(db_, node_id); }

std::optional<std::uint64_t> Ledger::acked_seq(const std::string& node_id) {
  auto st = db_.prepare("SELECT acked_seq FROM ledger_nodes WHERE node_id = ?");
  st.bind(1, node_id);
  if (!st.step()) return std::nullopt;
  return u64(st.int64(0));
}

bool Ledger::key_enrolled(const crypto::PublicKey& key) {
  auto st = db_.prepare("SELECT 1 FROM ledger_nodes WHERE public_key = ?");
  st.bind(1, BlobView(key.view()));
  return st.step();
}

std::vector<LedgerNode> Ledger::nodes() {
  auto st = db_.prepare(std::string("SELECT ") + kNodeColumns + " FROM ledger_nodes ORDER BY enrolled_ms, node_id");
  std::vector<LedgerNode> out;
  while (st.step()) out.push_back(read_node(st));
  return out;
}

Refusable<LedgerNode> Ledger::authenticate(crypto::ByteView certificate_record, std::int64_t now_ms) {
  auto cert = parse_certificate(certificate_record);
  if (!cert) return refuse(wire_error::kCertificate, cert.error().message);
  if (auto st = check_certificate(*cert, hub_key_.public_key(), now_ms); !st)
    return refuse(wire_error::kCertificate, st.error().message);
  auto node = select_node(db_, cert->node_id);
  if (!node)
    return refuse(wire_error::kCertificate, "node " + cert->node_id +
                                                " is not enrolled at this hub; enroll the device with a token "
                                                "from 'irt-hub invite'");
  if (node->public_key != cert->node_key || node->site_id != cert->site_id || node->kind != cert->kind)
    return refuse(wire_error::kWrongNode, "the certificate presented for node " + cert->node_id +
                                              " does not match the key and site enrolled for that node; "
                                              "use the certificate the hub issued to this device at enrollment");
  return std::move(*node);
}

Refusable<LedgerNode> Ledger::authenticate_request(crypto::ByteView certificate_record, std::string_view domain,
                                                   const std::optional<crypto::Bytes>& signature,
                                                   std::string_view time_ms, std::string_view content,
                                                   std::int64_t now_ms) {
  namespace we = wire_error;
  auto node = authenticate(certificate_record, now_ms);
  if (!node) return node.refusal();
  auto parsed = shared::parse_u64(time_ms);
  std::optional<std::int64_t> time;
  if (parsed && *parsed <= static_cast<std::uint64_t>(INT64_MAX)) time = static_cast<std::int64_t>(*parsed);
  if (!time)
    return refuse(we::kRequestSignature, "the X-IRT-Time header is missing or not a whole number of milliseconds; "
                                         "send the device's clock with the request it signs");
  auto sig = signature ? crypto::Signature::from_view(*signature) : std::nullopt;
  if (!sig || !crypto::verify(node->public_key, crypto::as_bytes(request_signing_text(domain, *time, content)), *sig))
    return refuse(we::kRequestSignature, "the X-IRT-Signature header is missing or does not verify: sign the "
                                         "request as docs/sync-protocol.md says (domain, X-IRT-Time, the body's "
                                         "hash) with the node key");
  if (*time < now_ms - kPullClockSkewMs || *time > now_ms + kPullClockSkewMs)
    return refuse(we::kClockSkew, "the request's X-IRT-Time is more than a day away from the hub's clock (" +
                                      shared::utc_text(now_ms) + "); the node times its next request by the hub's "
                                      "clock sent with this answer");
  return node;
}

Refusable<PullRequest> Ledger::authenticate_pull(crypto::ByteView certificate_record,
                                                 const std::optional<crypto::Bytes>& signature, std::string_view body,
                                                 std::int64_t now_ms) {
  namespace we = wire_error;
  auto node = authenticate(certificate_record, now_ms);
  if (!node) return node.refusal();
  auto sig = signature ? crypto::Signature::from_view(*signature) : std::nullopt;
  std::string signed_text = std::string(kPullDomain) + std::string(body);
  if (!sig || !crypto::verify(node->public_key, crypto::as_bytes(signed_text), *sig))
    return refuse(we::kRequestSignature, "the X-IRT-Signature header is missing or does not verify: sign "
                                         "\"irt/pull/v1\\n\" followed by the exact body with the node key");
  // After the signature: a revoked refusal means the revoked device itself asked.
  if (node->status == NodeStatus::revoked)
    return refuse(we::kRevoked, "node " + node->node_id + " was revoked (" + node->status_reason +
                                    "); it receives no more directives. Enroll a new node");
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("node_id") || !j["node_id"].is_string() ||
      !j.contains("after") || !j["after"].is_number_unsigned() ||
      (j.contains("time_ms") && !j["time_ms"].is_number_integer()) ||
      (j.contains("clock_ms") && !j["clock_ms"].is_number_integer()) ||
      (j.contains("limit") && !j["limit"].is_number_unsigned()))
    return refuse(we::kBadRequest, "the pull body must be JSON {\"node_id\": string, \"after\": unsigned, "
                                   "\"time_ms\": integer, \"clock_ms\": integer, \"limit\": unsigned}");
  if (j["node_id"].get<std::string>() != node->node_id)
    return refuse(we::kWrongNode, "the pull names node '" + j["node_id"].get<std::string>() +
                                      "' but the certificate is for node " + node->node_id);
  if (j.contains("time_ms")) {
    auto t = j["time_ms"].get<std::int64_t>();
    if (t < now_ms - kPullClockSkewMs || t > now_ms + kPullClockSkewMs)
      return refuse(we::kClockSkew, "the pull's time_ms is more than a day away from the hub's clock (" +
                                        shared::utc_text(now_ms) + "); the node times its next request by the hub's "
                                        "clock sent with this answer");
  }
  PullRequest pull;
  pull.node = std::move(node.value());
  pull.after = j["after"].get<std::uint64_t>();
  pull.limit = j.contains("limit") ? j["limit"].get<std::size_t>() : kDefaultPullLimit;
  pull.limit = std::clamp<std::size_t>(pull.limit, 1, kMaxBatchRecords);
  if (j.contains("time_ms")) pull.time_ms = j["time_ms"].get<std::int64_t>();
  if (j.contains("clock_ms")) pull.clock_ms = j["clock_ms"].get<std::int64_t>();
  return pull;
}

// ---- Problems: evidence and alerts. The caller holds the transaction.

void Ledger::record_problem(const LedgerNode& node, std::uint64_t seq, const std::string& kind,
                            const std::string& message,
                            const std::vector<std::pair<std::string, crypto::Bytes>>& records, bool freeze,
                            std::int64_t now_ms) {
  // One open alert per (kind, node, seq): a node that keeps re-sending the
  // same bad batch adds no new alerts and no duplicate evidence.
  std::int64_t alert_id = 0;
  auto find = db_.prepare(
      "SELECT id FROM ledger_alerts WHERE kind = ? AND node_id = ? AND seq = ? AND resolved_ms IS NULL");
  find.bind_all(kind, node.node_id, i64(seq));
  if (find.step()) {
    alert_id = find.int64(0);
  } else {
    auto ins = db_.prepare(
        "INSERT INTO ledger_alerts(kind, node_id, seq, message, created_ms) VALUES (?, ?, ?, ?, ?)");
    ins.bind_all(kind, node.node_id, i64(seq), message, now_ms).run();
    alert_id = db_.last_insert_rowid();
    notify({now_ms, "hub", "alert.raised", node.node_id, message, "", kind + " at seq " + std::to_string(seq)});
  }
  auto ev = db_.prepare(
      "INSERT INTO ledger_evidence(node_id, seq, reason, record, record_digest, received_ms, alert_id) "
      "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING");
  for (const auto& [reason, record] : records) {
    ev.reset();
    ev.bind_all(node.node_id, i64(seq), reason, record, BlobView(crypto::sha256(record).view()), now_ms, alert_id)
        .run();
  }
  if (freeze && node.status == NodeStatus::active) {
    auto up = db_.prepare(
        "UPDATE ledger_nodes SET status = 'frozen', status_reason = ?, status_changed_ms = ? WHERE node_id = ?");
    up.bind_all(kind + " at seq " + std::to_string(seq), now_ms, node.node_id).run();
    notify({now_ms, "hub", "node.frozen", node.node_id, message, "active", "frozen"});
  }
}

std::int64_t Ledger::raise_alert(const std::string& node_id, std::uint64_t seq, const std::string& kind,
                                 const std::string& message, std::int64_t now_ms) {
  auto find = db_.prepare(
      "SELECT id FROM ledger_alerts WHERE kind = ? AND node_id = ? AND seq = ? AND resolved_ms IS NULL");
  find.bind_all(kind, node_id, i64(seq));
  if (find.step()) return find.int64(0);
  auto ins = db_.prepare("INSERT INTO ledger_alerts(kind, node_id, seq, message, created_ms) VALUES (?, ?, ?, ?, ?)");
  ins.bind_all(kind, node_id, i64(seq), message, now_ms).run();
  auto id = db_.last_insert_rowid();
  notify({now_ms, "hub", "alert.raised", node_id, message, "", kind + " at seq " + std::to_string(seq)});
  return id;
}

std::int64_t Ledger::raise_node_alert(const std::string& node_id, const std::string& kind,
                                      std::optional<std::uint64_t> seq, const std::string& message,
                                      std::int64_t now_ms) {
  auto find = db_.prepare("SELECT id FROM ledger_alerts WHERE kind = ? AND node_id = ? AND resolved_ms IS NULL");
  find.bind_all(kind, node_id);
  if (find.step()) return find.int64(0);
  auto ins = db_.prepare("INSERT INTO ledger_alerts(kind, node_id, seq, message, created_ms) VALUES (?, ?, ?, ?, ?)");
  std::optional<std::int64_t> at = seq ? std::optional<std::int64_t>(i64(*seq)) : std::nullopt;
  ins.bind_all(kind, node_id, at, message, now_ms).run();
  auto id = db_.last_insert_rowid();
  notify({now_ms, "hub", "alert.raised", node_id, message, "", kind});
  return id;
}

std::vector<crypto::Bytes> Ledger::records_after(const std::string& node_id, std::uint64_t after_seq,
                                                 std::size_t limit) {
  std::vector<crypto::Bytes> out;
  auto st = db_.prepare("SELECT record FROM ledger_events WHERE node_id = ? AND seq > ? ORDER BY seq LIMIT ?");
  st.bind_all(node_id, i64(after_seq), static_cast<std::int64_t>(limit));
  while (st.step()) {
    auto b = st.blob(0);
    out.emplace_back(b.begin(), b.end());
  }
  return out;
}

// ---- Push.

Refusable<PushAck> Ledger::ingest(crypto::ByteView certificate_record, const std::vector<crypto::Bytes>& records,
                                  std::int64_t now_ms) {
  auto who = authenticate_pusher(certificate_record, now_ms);
  if (!who) return who.refusal();
  auto checked = check_batch(*who, records);
  if (!checked) return checked.refusal();
  return append(*who, std::move(checked.value()), now_ms);
}

Refusable<LedgerNode> Ledger::authenticate_pusher(crypto::ByteView certificate_record, std::int64_t now_ms) {
  auto who = authenticate(certificate_record, now_ms);
  if (!who) return who.refusal();
  if (auto r = refuse_for_status(*who)) return *r;
  return who;
}

std::optional<Refusal> Ledger::refuse_pusher(const LedgerNode& node) { return refuse_for_status(node); }

Refusable<CheckedBatch> Ledger::check_batch(const LedgerNode& node, const std::vector<crypto::Bytes>& records) {
  // Parsing (one BLAKE2b per record), signatures and Merkle leaf hashes are
  // the expensive part of ingest: spread over every core, and done outside
  // the database so the write lock is held only for the appends.
  struct Checked {
    std::optional<SignedEvent> event;
    std::string parse_error;
    bool signature_ok = false;
    Hash leaf;
  };
  std::vector<Checked> checked(records.size());
  pool_.run(records.size(), [&](std::size_t i) {
    auto& c = checked[i];
    auto e = parse_event(records[i]);
    if (!e) {
      c.parse_error = e.error().message;
      return;
    }
    c.signature_ok = verify_event(*e, node.public_key);
    c.leaf = merkle_leaf_hash(records[i]);
    c.event = std::move(e.value());
  });

  CheckedBatch batch;
  batch.events.reserve(records.size());
  batch.leaves.reserve(records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    auto& c = checked[i];
    if (!c.event) {
      // Name the event when its structure is sound (an oversized field).
      auto loose = parse_event(records[i], EventLimits::ignored);
      auto r = refuse(wire_error::kBadRequest,
                      (loose ? "event " + std::to_string(loose->body.seq) + " (record " + std::to_string(i + 1) +
                                   " of the batch): "
                             : "record " + std::to_string(i + 1) + " of the batch: ") +
                          c.parse_error + "; the batch was not recorded");
      if (loose) r.seq = loose->body.seq;
      return r;
    }
    const auto& e = *c.event;
    if (e.body.node_id != node.node_id) {
      auto r = refuse(wire_error::kWrongNode, "the event with seq " + std::to_string(e.body.seq) +
                                                  " belongs to node '" + e.body.node_id +
                                                  "' but the certificate is for node " + node.node_id +
                                                  "; a node pushes only its own events");
      r.seq = e.body.seq;
      return r;
    }
    if (!c.signature_ok && !batch.bad_signature) batch.bad_signature = i;
    batch.events.push_back(std::move(*c.event));
    batch.leaves.push_back(c.leaf);
  }
  return batch;
}

Refusable<PushAck> Ledger::append(const LedgerNode& authenticated, CheckedBatch batch, std::int64_t now_ms,
                                  AppendObserver* observer) {
  LedgerNode node = authenticated;
  auto& events = batch.events;
  const auto& leaves = batch.leaves;
  if (events.empty()) return PushAck{node.acked_seq, 0, 0, std::nullopt};

  if (batch.bad_signature) {
    const auto& bad = events[*batch.bad_signature];
    std::uint64_t seq = bad.body.seq;
    std::string msg = "node " + node.node_id + " sent event seq " + std::to_string(seq) +
                      " whose signature does not verify under the node's enrolled key";
    Transaction tx(db_);
    record_problem(node, seq, "bad_signature", msg, {{"bad_signature", bad.record}}, false, now_ms);
    tx.commit();
    auto r = refuse(wire_error::kBadSignature,
                    msg + "; the batch was not recorded and the record is kept as evidence. Check the node's "
                          "log with 'irt-node verify'");
    r.seq = seq;
    return r;
  }

  // Signatures before sequence checks: a record altered after signing (its
  // seq, say) is evidence to keep, not merely a malformed batch.
  for (std::size_t i = 1; i < events.size(); ++i)
    if (events[i].body.seq != events[i - 1].body.seq + 1)
      return refuse(wire_error::kBadRequest,
                    "the batch is not contiguous: seq " + std::to_string(events[i].body.seq) + " follows seq " +
                        std::to_string(events[i - 1].body.seq) + "; send events in ascending order without holes");
  Transaction tx(db_);
  // Re-read: an administrator may have revoked the node, or another request
  // appended, since the check above.
  auto current = select_node(db_, node.node_id);
  if (!current) return refuse(wire_error::kCertificate, "node " + node.node_id + " is no longer enrolled");
  node = std::move(*current);
  if (auto r = refuse_for_status(node)) return *r;
  if (events.front().body.seq > node.acked_seq + 1) return gap(node, events.front().body.seq);

  PushAck ack;
  std::size_t first_new = 0;
  auto stored = db_.prepare("SELECT hash, record, leaf_index FROM ledger_events WHERE node_id = ? AND seq = ?");
  for (; first_new < events.size() && events[first_new].body.seq <= node.acked_seq; ++first_new) {
    const auto& e = events[first_new];
    stored.reset();
    stored.bind_all(node.node_id, i64(e.body.seq));
    if (!stored.step())
      throw storage::StorageError("node " + node.node_id + " is acknowledged up to seq " +
                                  std::to_string(node.acked_seq) + " but seq " + std::to_string(e.body.seq) +
                                  " is missing; run 'irt-hub verify'");
    if (hash_column(stored, 0) == e.hash) {
      ++ack.already_recorded;
      continue;
    }
    std::string msg = "node " + node.node_id + " signed two different events with seq " +
                      std::to_string(e.body.seq) + " (equivocation)";
    record_problem(node, e.body.seq, "equivocation", msg,
                   {{"equivocation.recorded", stored.blob(1)}, {"equivocation.received", e.record}}, true, now_ms);
    if (observer) observer->equivocation(node, e.body.seq, msg, now_ms);
    tx.commit();
    auto r = refuse(wire_error::kEquivocation,
                    msg + "; both events are kept as evidence and the node is frozen until an administrator "
                          "reviews them and runs 'irt-hub unfreeze'");
    r.seq = e.body.seq;
    return r;
  }

  crypto::Hash prev = node.acked_hash;
  for (std::size_t i = first_new; i < events.size(); ++i) {
    const auto& e = events[i];
    if (e.body.prev_hash != prev) {
      std::string msg = "node " + node.node_id + " sent event seq " + std::to_string(e.body.seq) +
                        " whose prev_hash does not match the hash of seq " + std::to_string(e.body.seq - 1);
      record_problem(node, e.body.seq, "broken_chain", msg, {{"broken_chain", e.record}}, false, now_ms);
      tx.commit();
      auto r = refuse(wire_error::kBrokenChain,
                      msg + "; the batch was not recorded and the record is kept as evidence. Check the node's "
                            "log with 'irt-node verify'");
      r.seq = e.body.seq;
      return r;
    }
    prev = e.hash;
  }

  std::vector<Hash> new_leaves;
  std::uint64_t first_leaf = 0;
  if (first_new < events.size()) {
    CompactRange frontier = select_frontier(db_);
    first_leaf = frontier.size();
    // Up to kRowsPerInsert events per statement: on PostgreSQL each
    // statement is a round trip made under the writer lock.
    constexpr std::size_t kRowsPerInsert = 100;
    auto insert_rows = [&](std::size_t rows) {
      std::string sql = "INSERT INTO ledger_events(leaf_index, node_id, seq, hash, leaf_hash, received_ms, record) VALUES ";
      for (std::size_t r = 0; r < rows; ++r) sql += r ? ", (?, ?, ?, ?, ?, ?, ?)" : "(?, ?, ?, ?, ?, ?, ?)";
      return db_.prepare(sql);
    };
    std::optional<storage::Statement> full;
    new_leaves.reserve(events.size() - first_new);
    for (std::size_t begin = first_new; begin < events.size(); begin += kRowsPerInsert) {
      const std::size_t rows = std::min(kRowsPerInsert, events.size() - begin);
      if (rows == kRowsPerInsert && !full) full.emplace(insert_rows(rows));
      std::optional<storage::Statement> tail;
      if (rows != kRowsPerInsert) tail.emplace(insert_rows(rows));
      auto& ins = rows == kRowsPerInsert ? *full : *tail;
      ins.reset();
      int p = 0;
      for (std::size_t i = begin; i < begin + rows; ++i) {
        const auto& e = events[i];
        const Hash& leaf = leaves[i];
        ins.bind(++p, i64(frontier.size()));
        ins.bind(++p, node.node_id);
        ins.bind(++p, i64(e.body.seq));
        ins.bind(++p, BlobView(e.hash.view()));
        ins.bind(++p, BlobView(leaf.view()));
        ins.bind(++p, now_ms);
        ins.bind(++p, e.record);
        frontier.append(leaf);
        new_leaves.push_back(leaf);
      }
      ins.run();
    }
    auto up_frontier = db_.prepare("UPDATE ledger_frontier SET tree_size = ?, compact_range = ? WHERE id = 1");
    up_frontier.bind_all(i64(frontier.size()), frontier.encode()).run();
    const auto& last = events.back();
    auto up_node = db_.prepare("UPDATE ledger_nodes SET acked_seq = ?, acked_hash = ? WHERE node_id = ?");
    up_node.bind_all(i64(last.body.seq), BlobView(last.hash.view()), node.node_id).run();
    Checkpoint cp{origin_, frontier.size(), frontier.root(), std::nullopt};
    if (audit_head_) cp.audit = audit_head_();
    insert_checkpoint(db_, cp, hub_key_, now_ms);
    ack.appended = events.size() - first_new;
    ack.acked_seq = last.body.seq;
    if (observer) {
      events.erase(events.begin(), events.begin() + static_cast<std::ptrdiff_t>(first_new));
      observer->appended(node, events, now_ms);
    }
  } else {
    ack.acked_seq = node.acked_seq;
  }
  tx.commit();

  // The proof cache follows the database only after the commit succeeded.
  if (!new_leaves.empty() && tree_->size() == first_leaf)
    for (const auto& leaf : new_leaves) tree_->append(leaf);
  auto receipt = this->receipt(node.node_id, events.back().body.seq);
  if (!receipt) throw storage::StorageError("no receipt for an event just recorded: " + receipt.error().message);
  ack.receipt = std::move(receipt.value());
  return ack;
}

// ---- Receipts and tree heads.

void Ledger::sync_tree() {
  auto size_st = db_.prepare("SELECT tree_size FROM ledger_frontier WHERE id = 1");
  std::uint64_t size = size_st.step() ? u64(size_st.int64(0)) : 0;
  if (tree_->size() > size) tree_->clear();
  if (tree_->size() == size) return;
  auto st = db_.prepare("SELECT leaf_index, leaf_hash FROM ledger_events WHERE leaf_index >= ? ORDER BY leaf_index");
  st.bind(1, i64(tree_->size()));
  while (st.step()) {
    if (u64(st.int64(0)) != tree_->size())
      throw storage::StorageError("ledger leaf " + std::to_string(tree_->size()) +
                                  " is missing; run 'irt-hub verify'");
    tree_->append(hash_column(st, 1));
  }
}

std::string Ledger::latest_checkpoint() {
  auto cp = select_latest_checkpoint(db_);
  return cp ? cp->text : std::string();
}

std::vector<std::string> Ledger::checkpoint_texts() {
  std::vector<std::string> out;
  auto st = db_.prepare("SELECT text FROM ledger_checkpoints ORDER BY tree_size");
  while (st.step()) out.push_back(st.text(0));
  return out;
}

std::uint64_t Ledger::tree_size() { return select_frontier(db_).size(); }

shared::Result<Receipt> Ledger::receipt(const std::string& node_id, std::uint64_t seq) {
  auto st = db_.prepare("SELECT leaf_index FROM ledger_events WHERE node_id = ? AND seq = ?");
  st.bind_all(node_id, i64(seq));
  if (!st.step())
    return shared::make_error(shared::Errc::not_found, "the hub holds no event seq " + std::to_string(seq) +
                                                           " of node " + node_id + "; push it first");
  Receipt r;
  r.node_id = node_id;
  r.seq = seq;
  r.leaf_index = u64(st.int64(0));
  auto cp = select_latest_checkpoint(db_);
  if (!cp || cp->size <= r.leaf_index)
    return shared::make_error(shared::Errc::internal, "no signed tree head covers leaf " +
                                                          std::to_string(r.leaf_index) + "; run 'irt-hub verify'");
  sync_tree();
  if (tree_->size() < cp->size)
    return shared::make_error(shared::Errc::internal, "the ledger's leaves end before its latest checkpoint; "
                                                      "run 'irt-hub verify'");
  r.tree_size = cp->size;
  r.proof = tree_->proof(r.leaf_index, cp->size);
  r.checkpoint = cp->text;
  return r;
}

// ---- Admin decisions.

shared::Status Ledger::revoke(const std::string& node_id, const std::string& reason, const std::string& actor,
                              std::int64_t now_ms, const std::function<void()>& also,
                              const std::string& signature) {
  Transaction tx(db_);
  auto node = select_node(db_, node_id);
  if (!node)
    return shared::make_error(shared::Errc::not_found,
                              "no node " + node_id + " is enrolled; 'irt-hub nodes' lists the enrolled nodes");
  if (node->status == NodeStatus::revoked)
    return shared::make_error(shared::Errc::conflict, "node " + node_id + " is already revoked (" +
                                                          node->status_reason + ")");
  auto up = db_.prepare(
      "UPDATE ledger_nodes SET status = 'revoked', status_reason = ?, status_changed_ms = ? WHERE node_id = ?");
  up.bind_all(reason, now_ms, node_id).run();
  notify({now_ms, actor, "node.revoked", node_id, reason, to_string(node->status), "revoked", signature});
  if (also) also();
  tx.commit();
  return {};
}

shared::Status Ledger::unfreeze(const std::string& node_id, const std::string& reason, const std::string& actor,
                                std::int64_t now_ms, const std::string& signature,
                                const std::function<void()>& also) {
  Transaction tx(db_);
  auto node = select_node(db_, node_id);
  if (!node)
    return shared::make_error(shared::Errc::not_found,
                              "no node " + node_id + " is enrolled; 'irt-hub nodes' lists the enrolled nodes");
  if (node->status != NodeStatus::frozen)
    return shared::make_error(shared::Errc::conflict, "node " + node_id + " is not frozen (it is " +
                                                          to_string(node->status) + "); nothing to decide");
  auto up = db_.prepare(
      "UPDATE ledger_nodes SET status = 'active', status_reason = ?, status_changed_ms = ? WHERE node_id = ?");
  up.bind_all(reason, now_ms, node_id).run();
  auto resolve = db_.prepare(
      "UPDATE ledger_alerts SET resolved_by = ?, resolved_ms = ?, resolution = ? "
      "WHERE node_id = ? AND resolved_ms IS NULL");
  resolve.bind_all(actor, now_ms, reason, node_id).run();
  notify({now_ms, actor, "node.unfrozen", node_id, reason, "frozen", "active", signature});
  if (also) also();
  tx.commit();
  return {};
}

std::vector<Alert> Ledger::alerts(bool open_only) {
  auto st = db_.prepare(std::string("SELECT id, kind, node_id, seq, message, created_ms, resolved_by, resolved_ms, "
                                    "resolution FROM ledger_alerts") +
                        (open_only ? " WHERE resolved_ms IS NULL" : "") + " ORDER BY id");
  std::vector<Alert> out;
  while (st.step()) {
    Alert a;
    a.id = st.int64(0);
    a.kind = st.text(1);
    a.node_id = st.text(2);
    if (!st.is_null(3)) a.seq = u64(st.int64(3));
    a.message = st.text(4);
    a.created_ms = st.int64(5);
    if (!st.is_null(6)) a.resolved_by = st.text(6);
    if (!st.is_null(7)) a.resolved_ms = st.int64(7);
    if (!st.is_null(8)) a.resolution = st.text(8);
    out.push_back(std::move(a));
  }
  return out;
}

void Ledger::keep_evidence(const std::string& node_id, std::uint64_t seq, const std::string& reason,
                           const crypto::Bytes& record, std::int64_t now_ms) {
  db_.prepare("INSERT INTO ledger_evidence(node_id, seq, reason, record, record_digest, received_ms, alert_id) "
              "VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING")
      .bind_all(node_id, i64(seq), reason, record, BlobView(crypto::sha256(record).view()), now_ms)
      .run();
}

std::vector<Evidence> Ledger::evidence(const std::string& node_id) {
  auto st = db_.prepare(
      "SELECT id, node_id, seq, reason, record, received_ms, alert_id FROM ledger_evidence WHERE node_id = ? "
      "ORDER BY id");
  st.bind(1, node_id);
  std::vector<Evidence> out;
  while (st.step()) {
    Evidence e;
    e.id = st.int64(0);
    e.node_id = st.text(1);
    e.seq = u64(st.int64(2));
    e.reason = st.text(3);
    e.record = st.blob(4);
    e.received_ms = st.int64(5);
    if (!st.is_null(6)) e.alert_id = st.int64(6);
    out.push_back(std::move(e));
  }
  return out;
}

// ---- Verification from the stored bytes.

shared::Result<VerifyReport> Ledger::verify_all() {
  using shared::Errc;
  auto fail = [](std::string msg) { return shared::make_error(Errc::integrity, std::move(msg)); };
  const auto& hub_pub = hub_key_.public_key();
  VerifyReport report;

  for (const auto& node : nodes()) {
    ++report.nodes;
    const std::string where = "node " + node.node_id;
    auto cert = parse_certificate(node.certificate);
    // Signature only: an expired certificate still vouches for what it signed.
    if (!cert || !check_certificate(*cert, hub_pub, cert->valid_from_ms))
      return fail(where + ": its stored certificate is malformed or not signed by this hub's key");
    if (cert->node_id != node.node_id || cert->node_key != node.public_key || cert->site_id != node.site_id)
      return fail(where + ": its stored certificate names another node, site or key than its ledger row");

    auto st = db_.prepare("SELECT seq, hash, record, leaf_index, leaf_hash FROM ledger_events WHERE node_id = ? ORDER BY seq");
    st.bind(1, node.node_id);
    std::uint64_t expected = 1;
    crypto::Hash prev;
    while (st.step()) {
      std::uint64_t seq = u64(st.int64(0));
      std::string at = where + " seq " + std::to_string(seq);
      if (seq != expected)
        return fail(where + ": seq " + std::to_string(expected) + " is missing (the next stored event is seq " +
                    std::to_string(seq) + ")");
      auto record = st.blob(2);
      auto e = parse_event(record);
      if (!e) return fail(at + ": the stored record does not parse (" + e.error().message + ")");
      if (e->body.node_id != node.node_id || e->body.seq != seq)
        return fail(at + ": the stored record names node " + e->body.node_id + " seq " +
                    std::to_string(e->body.seq));
      if (e->hash != hash_column(st, 1)) return fail(at + ": the stored record does not hash to its stored hash");
      if (e->body.prev_hash != prev) return fail(at + ": prev_hash does not link to seq " + std::to_string(seq - 1));
      if (!verify_event(*e, node.public_key))
        return fail(at + ": the signature does not verify under the node's enrolled key");
      if (hash_column(st, 4) != merkle_leaf_hash(record))
        return fail(at + ": ledger leaf " + std::to_string(st.int64(3)) + " does not match the event's record");
      prev = e->hash;
      ++expected;
      ++report.events;
    }
    if (node.acked_seq != expected - 1 || node.acked_hash != prev)
      return fail(where + ": acknowledged up to seq " + std::to_string(node.acked_seq) +
                  " but its stored chain ends at seq " + std::to_string(expected - 1));
  }

  std::map<std::uint64_t, std::string> checkpoints;
  {
    auto st = db_.prepare("SELECT tree_size, text FROM ledger_checkpoints ORDER BY tree_size");
    while (st.step()) checkpoints[u64(st.int64(0))] = st.text(1);
  }
  auto check_head = [&](const CompactRange& range) -> shared::Status {
    auto it = checkpoints.find(range.size());
    if (it == checkpoints.end()) return {};
    std::string at = "checkpoint at tree size " + std::to_string(range.size());
    auto cp = open_checkpoint(it->second, kCheckpointKeyName, hub_pub);
    if (!cp) return fail(at + ": its signature does not verify under the hub's key");
    if (cp->origin != origin_ || cp->size != range.size())
      return fail(at + ": it names origin '" + cp->origin + "' size " + std::to_string(cp->size));
    if (cp->root != range.root()) return fail(at + ": its root differs from the root of the stored leaves");
    ++report.checkpoints;
    return {};
  };

  CompactRange range;
  if (auto s = check_head(range); !s) return s.error();
  auto leaves = db_.prepare("SELECT leaf_index, leaf_hash FROM ledger_events ORDER BY leaf_index");
  while (leaves.step()) {
    if (u64(leaves.int64(0)) != range.size())
      return fail("ledger leaf " + std::to_string(range.size()) + " is missing");
    range.append(hash_column(leaves, 1));
    if (auto s = check_head(range); !s) return s.error();
  }
  if (range.size() != report.events)
    return fail("the ledger holds " + std::to_string(range.size()) + " leaves for " +
                std::to_string(report.events) + " events");
  auto stored = read_frontier(db_);
  if (!stored) return fail(stored.error().message);
  const CompactRange& frontier = *stored;
  if (frontier.size() != range.size() || frontier.root() != range.root())
    return fail("the stored Merkle frontier (size " + std::to_string(frontier.size()) +
                ") does not match the root of the stored leaves (size " + std::to_string(range.size()) + ")");
  if (checkpoints.empty() || checkpoints.rbegin()->first != range.size())
    return fail("the latest signed checkpoint does not cover the whole tree (size " + std::to_string(range.size()) +
                ")");
  report.tree_size = range.size();
  report.root = range.root();
  return report;
}

}  // namespace irt::sync
