// The hub's ledger, in process, on a real SQLite file: ingest, refusals,
// evidence, receipts, checkpoints and verify_all catching tampering.
#include <doctest/doctest.h>

#include "shared/event_payloads.h"
#include "storage/database.h"
#include "sync/batch.h"
#include "sync/checkpoint.h"
#include "sync/event.h"
#include "sync/ledger.h"
#include "sync/merkle.h"
#include "tests/support/test_support.h"

using namespace irt::sync;
namespace crypto = irt::crypto;
namespace storage = irt::storage;
namespace shared = irt::shared;

namespace {

constexpr std::int64_t kNow = 1767225600000;  // 2026-01-01T00:00:00Z
constexpr std::int64_t kDay = 86400000;

// A node's side of the log: its key and the chain it signs.
struct FakeNode {
  std::string id;
  crypto::SigningKey key = crypto::SigningKey::generate();
  std::vector<SignedEvent> log;
  NodeCertificate cert;

  SignedEvent make(std::uint64_t seq, const crypto::Hash& prev, const std::string& text) const {
    EventBody b;
    b.node_id = id;
    b.seq = seq;
    b.prev_hash = prev;
    b.hlc = static_cast<std::uint64_t>(kNow) << 16 | seq;
    b.device_time_ms = kNow + static_cast<std::int64_t>(seq);
    b.actor = "coordinator.jane";
    b.type = shared::kSiteNoteEvent;
    std::string payload = nlohmann::json(shared::SiteNote{text, "coordinator", "101"}).dump();
    b.payload.assign(payload.begin(), payload.end());
    return sign_event(std::move(b), key);
  }
  void append(int n) {
    for (int i = 0; i < n; ++i) {
      crypto::Hash prev = log.empty() ? crypto::Hash{} : log.back().hash;
      log.push_back(make(log.size() + 1, prev, "note " + std::to_string(log.size() + 1)));
    }
  }
  // Records seq from..to inclusive.
  std::vector<crypto::Bytes> records(std::uint64_t from, std::uint64_t to) const {
    std::vector<crypto::Bytes> out;
    for (auto s = from; s <= to; ++s) out.push_back(log[s - 1].record);
    return out;
  }
};

struct LedgerFixture {
  irt::test::TempDir dir;
  storage::Database db = storage::Database::open(dir / "hub.db").value();
  crypto::SigningKey hub_key = crypto::SigningKey::generate();
  std::unique_ptr<Ledger> ledger = Ledger::open(db, hub_key, "irt.hub/TEST-1", {.verify_threads = 2}).value();
  std::vector<LedgerChange> changes;

  LedgerFixture() {
    ledger->set_observer([this](const LedgerChange& c) { changes.push_back(c); });
  }

  FakeNode enroll(const std::string& site) {
    FakeNode n;
    storage::Transaction tx(db);
    n.id = ledger->next_node_id(site);
    NodeCertificate c;
    c.node_id = n.id;
    c.site_id = site;
    c.kind = "site";
    c.node_key = n.key.public_key();
    c.serial = ledger->next_certificate_serial();
    c.valid_from_ms = kNow - kDay;
    c.valid_until_ms = kNow + 730 * kDay;
    n.cert = sign_certificate(c, hub_key);
    ledger->register_node(n.cert, kNow);
    tx.commit();
    return n;
  }

  Refusable<PushAck> push(const FakeNode& n, std::uint64_t from, std::uint64_t to) {
    return ledger->ingest(n.cert.record, n.records(from, to), kNow);
  }
};

}  // namespace

TEST_CASE("enrolled nodes get site-scoped ids and increasing serials") {
  LedgerFixture f;
  auto a = f.enroll("101");
  auto b = f.enroll("101");
  auto c = f.enroll("102");
  CHECK(a.id == "101-N1");
  CHECK(b.id == "101-N2");
  CHECK(c.id == "102-N1");
  CHECK(b.cert.serial == a.cert.serial + 1);
  auto nodes = f.ledger->nodes();
  REQUIRE(nodes.size() == 3);
  CHECK(nodes[0].status == NodeStatus::active);
  CHECK(nodes[0].acked_seq == 0);
}

TEST_CASE("a pushed batch is appended, acknowledged and receipted against a signed checkpoint") {
  LedgerFixture f;
  auto n = f.enroll("101");
  n.append(5);
  auto r = f.push(n, 1, 5);
  REQUIRE_MESSAGE(r.ok(), r.refusal().message);
  CHECK(r->acked_seq == 5);
  CHECK(r->appended == 5);
  CHECK(r->already_recorded == 0);
  REQUIRE(r->receipt);
  const auto& rc = *r->receipt;
  CHECK(rc.node_id == n.id);
  CHECK(rc.seq == 5);
  CHECK(rc.leaf_index == 4);
  CHECK(rc.tree_size == 5);
  auto cp = open_checkpoint(rc.checkpoint, kCheckpointKeyName, f.hub_key.public_key());
  REQUIRE(cp);
  CHECK(cp->origin == "irt.hub/TEST-1");
  CHECK(cp->size == 5);
  CHECK(verify_inclusion(merkle_leaf_hash(n.log[4].record), rc.leaf_index, rc.tree_size, rc.proof, cp->root));
  CHECK_FALSE(verify_inclusion(merkle_leaf_hash(n.log[3].record), rc.leaf_index, rc.tree_size, rc.proof, cp->root));
  CHECK(f.ledger->find_node(n.id)->acked_seq == 5);
  CHECK(f.ledger->find_node(n.id)->acked_hash == n.log[4].hash);
}

TEST_CASE("receipts for every leaf equal the reference RFC 6962 proofs as the tree grows") {
  LedgerFixture f;
  auto a = f.enroll("101");
  auto b = f.enroll("102");
  a.append(40);
  b.append(37);
  std::vector<crypto::Hash> leaves;
  std::uint64_t next_a = 1, next_b = 1;
  // Interleave batches of uneven sizes so the tree passes through many shapes.
  for (int round = 0; next_a <= 40 || next_b <= 37; ++round) {
    auto take = static_cast<std::uint64_t>(1 + round % 7);
    if (next_a <= 40) {
      auto to = std::min<std::uint64_t>(40, next_a + take - 1);
      REQUIRE(f.push(a, next_a, to).ok());
      for (auto s = next_a; s <= to; ++s) leaves.push_back(merkle_leaf_hash(a.log[s - 1].record));
      next_a = to + 1;
    }
    if (next_b <= 37) {
      auto to = std::min<std::uint64_t>(37, next_b + take + 1);
      REQUIRE(f.push(b, next_b, to).ok());
      for (auto s = next_b; s <= to; ++s) leaves.push_back(merkle_leaf_hash(b.log[s - 1].record));
      next_b = to + 1;
    }
    for (std::uint64_t s = 1; s < next_a; s += 3) {
      auto rc = f.ledger->receipt(a.id, s);
      REQUIRE(rc.ok());
      CHECK(rc->tree_size == leaves.size());
      CHECK(rc->proof == inclusion_proof(leaves, rc->leaf_index));
    }
  }
  CHECK(f.ledger->tree_size() == 77);
  auto cp = open_checkpoint(f.ledger->latest_checkpoint(), kCheckpointKeyName, f.hub_key.public_key());
  REQUIRE(cp);
  CHECK(cp->root == merkle_root(leaves));
}

TEST_CASE("re-sending recorded events is acknowledged again and appends nothing") {
  LedgerFixture f;
  auto n = f.enroll("101");
  n.append(6);
  REQUIRE(f.push(n, 1, 4).ok());
  auto again = f.push(n, 1, 4);
  REQUIRE(again.ok());
  CHECK(again->acked_seq == 4);
  CHECK(again->appended == 0);
  CHECK(again->already_recorded == 4);
  REQUIRE(again->receipt);
  CHECK(again->receipt->seq == 4);
  auto overlap = f.push(n, 3, 6);
  REQUIRE(overlap.ok());
  CHECK(overlap->appended == 2);
  CHECK(overlap->already_recorded == 2);
  CHECK(overlap->acked_seq == 6);
  CHECK(f.ledger->tree_size() == 6);
}

TEST_CASE("an empty push answers the acknowledged sequence") {
  LedgerFixture f;
  auto n = f.enroll("101");
  n.append(2);
  REQUIRE(f.push(n, 1, 2).ok());
  auto r = f.ledger->ingest(n.cert.record, {}, kNow);
  REQUIRE(r.ok());
  CHECK(r->acked_seq == 2);
  CHECK_FALSE(r->receipt);
}

TEST_CASE("a push with a gap is refused with the expected sequence") {
  LedgerFixture f;
  auto n = f.enroll("101");
  n.append(8);
  REQUIRE(f.push(n, 1, 3).ok());
  auto r = f.push(n, 5, 8);
  REQUIRE_FALSE(r.ok());
  CHECK(r.refusal().code == wire_error::kGap);
  CHECK(r.refusal().http_status == 409);
  CHECK(r.refusal().expected_seq == 4);
  CHECK(f.ledger->tree_size() == 3);
  CHECK(f.ledger->alerts(true).empty());
}

TEST_CASE("a batch that is not contiguous is refused as a bad request") {
  LedgerFixture f;
  auto n = f.enroll("101");
  n.append(4);
  std::vector<crypto::Bytes> records{n.log[0].record, n.log[2].record};
  auto r = f.ledger->ingest(n.cert.record, records, kNow);
  REQUIRE_FALSE(r.ok());
  CHECK(r.refusal().code == wire_error::kBadRequest);
  CHECK(f.ledger->tree_size() == 0);
}

TEST_CASE("two different events with the same seq are equivocation: evidence, alert, frozen") {
  LedgerFixture f;
  auto n = f.enroll("101");
  n.append(3);
  REQUIRE(f.push(n, 1, 3).ok());
  auto forked = n.make(2, n.log[0].hash, "a different story");
  auto r = f.ledger->ingest(n.cert.record, {forked.record}, kNow);
  REQUIRE_FALSE(r.ok());
  CHECK(r.refusal().code == wire_error::kEquivocation);
  CHECK(r.refusal().seq == 2);

  CHECK(f.ledger->find_node(n.id)->status == NodeStatus::frozen);
  auto alerts = f.ledger->alerts(true);
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].kind == "equivocation");
  CHECK(alerts[0].seq == 2);
  auto ev = f.ledger->evidence(n.id);
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].record == n.log[1].record);
  CHECK(ev[1].record == forked.record);
  CHECK(f.ledger->tree_size() == 3);  // nothing appended

  // Frozen: even an honest continuation is refused until an admin decides.
  n.append(1);
  auto next = f.push(n, 4, 4);
  REQUIRE_FALSE(next.ok());
  CHECK(next.refusal().code == wire_error::kFrozen);
  CHECK(next.refusal().http_status == 403);

  bool froze = false, alerted = false;
  for (const auto& c : f.changes) {
    froze |= c.action == "node.frozen" && c.subject == n.id;
    alerted |= c.action == "alert.raised" && c.subject == n.id;
  }
  CHECK(froze);
  CHECK(alerted);

  REQUIRE(f.ledger->unfreeze(n.id, "branch A confirmed with the site", "admin", kNow).ok());
  CHECK(f.ledger->alerts(true).empty());
  auto resolved = f.ledger->alerts(false);
  REQUIRE(resolved.size() == 1);
  CHECK(resolved[0].resolved_by == "admin");
  CHECK(f.push(n, 4, 4).ok());
}

TEST_CASE("the equivocation evidence survives although the push is refused") {
  irt::test::TempDir dir;
  auto hub_key = crypto::SigningKey::generate();
  FakeNode n;
  auto db = storage::Database::open(dir / "hub.db").value();
  auto ledger = Ledger::open(db, hub_key, "irt.hub/T").value();
  {
    storage::Transaction tx(db);
    n.id = ledger->next_node_id("101");
    NodeCertificate c{n.id, "101", "site", n.key.public_key(), 1, kNow - kDay, kNow + kDay, {}};
    n.cert = sign_certificate(c, hub_key);
    ledger->register_node(n.cert, kNow);
    tx.commit();
  }
  n.append(1);
  REQUIRE(ledger->ingest(n.cert.record, n.records(1, 1), kNow).ok());
  auto forked = n.make(1, crypto::Hash{}, "fork");
  REQUIRE_FALSE(ledger->ingest(n.cert.record, {forked.record}, kNow).ok());
  ledger.reset();
  // A fresh connection sees what was committed.
  auto db2 = storage::Database::open(dir / "hub.db").value();
  auto reopened = Ledger::open(db2, hub_key, "irt.hub/T").value();
  CHECK(reopened->find_node(n.id)->status == NodeStatus::frozen);
  CHECK(reopened->evidence(n.id).size() == 2);
  CHECK(reopened->alerts(true).size() == 1);
}

TEST_CASE("an event whose signature fails is refused and kept as evidence with an alert") {
  LedgerFixture f;
  auto n = f.enroll("101");
  n.append(3);
  auto records = n.records(1, 3);
  records[1].back() ^= 0x01;  // inside the signature
  auto r = f.ledger->ingest(n.cert.record, records, kNow);
  REQUIRE_FALSE(r.ok());
  CHECK(r.refusal().code == wire_error::kBadSignature);
  CHECK(r.refusal().http_status == 422);
  CHECK(r.refusal().seq == 2);
  CHECK(f.ledger->tree_size() == 0);  // not even seq 1: a batch is all or nothing
  auto ev = f.ledger->evidence(n.id);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].reason == "bad_signature");
  CHECK(ev[0].record == records[1]);
  REQUIRE(f.ledger->alerts(true).size() == 1);
  CHECK(f.ledger->find_node(n.id)->status == NodeStatus::active);

  // Sending the same bad batch again adds neither an alert nor evidence.
  REQUIRE_FALSE(f.ledger->ingest(n.cert.record, records, kNow).ok());
  CHECK(f.ledger->alerts(true).size() == 1);
  CHECK(f.ledger->evidence(n.id).size() == 1);
}

TEST_CASE("an event signed by another key is a bad signature") {
  LedgerFixture f;
  auto n = f.enroll("101");
  FakeNode impostor;
  impostor.id = n.id;
  impostor.append(1);
  auto r = f.ledger->ingest(n.cert.record, impostor.records(1, 1), kNow);
  REQUIRE_FALSE(r.ok());
  CHECK(r.refusal().code == wire_error::kBadSignature);
}

TEST_CASE("an event whose prev_hash does not link is a broken chain") {
  LedgerFixture f;
  auto n = f.enroll("101");
  n.append(2);
  REQUIRE(f.push(n, 1, 2).ok());
  auto unlinked = n.make(3, n.log[0].hash, "links to seq 1 instead of seq 2");
  auto r = f.ledger->ingest(n.cert.record, {unlinked.record}, kNow);
  REQUIRE_FALSE(r.ok());
  CHECK(r.refusal().code == wire_error::kBrokenChain);
  CHECK(r.refusal().seq == 3);
  CHECK(f.ledger->evidence(n.id).size() == 1);
  CHECK(f.ledger->alerts(true).size() == 1);
  CHECK(f.ledger->tree_size() == 2);

  // The first event of a log must start from 32 zero bytes.
  auto m = f.enroll("101");
  auto first = m.make(1, n.log[0].hash, "not a first event");
  auto r1 = f.ledger->ingest(m.cert.record, {first.record}, kNow);
  REQUIRE_FALSE(r1.ok());
  CHECK(r1.refusal().code == wire_error::kBrokenChain);
}

TEST_CASE("events of another node or a certificate with another key are refused as wrong node") {
  LedgerFixture f;
  auto a = f.enroll("101");
  auto b = f.enroll("101");
  b.append(1);
  auto r = f.ledger->ingest(a.cert.record, b.records(1, 1), kNow);
  REQUIRE_FALSE(r.ok());
  CHECK(r.refusal().code == wire_error::kWrongNode);
  CHECK(r.refusal().http_status == 401);

  // A certificate signed by the hub for a's id but another key.
  NodeCertificate forged = a.cert;
  forged.node_key = crypto::SigningKey::generate().public_key();
  forged = sign_certificate(forged, f.hub_key);
  a.append(1);
  auto r2 = f.ledger->ingest(forged.record, a.records(1, 1), kNow);
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.refusal().code == wire_error::kWrongNode);
  CHECK(f.ledger->tree_size() == 0);
}

TEST_CASE("a certificate from another hub, an expired one or an unknown node is refused") {
  LedgerFixture f;
  auto n = f.enroll("101");
  n.append(1);
  auto other_hub = crypto::SigningKey::generate();
  auto foreign = sign_certificate(n.cert, other_hub);
  auto r = f.ledger->ingest(foreign.record, n.records(1, 1), kNow);
  REQUIRE_FALSE(r.ok());
  CHECK(r.refusal().code == wire_error::kCertificate);

  auto late = f.ledger->ingest(n.cert.record, n.records(1, 1), kNow + 800 * kDay);
  REQUIRE_FALSE(late.ok());
  CHECK(late.refusal().code == wire_error::kCertificate);

  NodeCertificate ghost = n.cert;
  ghost.node_id = "999-N1";
  ghost = sign_certificate(ghost, f.hub_key);
  auto r3 = f.ledger->ingest(ghost.record, {}, kNow);
  REQUIRE_FALSE(r3.ok());
  CHECK(r3.refusal().code == wire_error::kCertificate);

  auto garbage = f.ledger->ingest(crypto::as_bytes("not a certificate"), {}, kNow);
  REQUIRE_FALSE(garbage.ok());
  CHECK(garbage.refusal().code == wire_error::kCertificate);
}

TEST_CASE("a revoked node's pushes are refused and its earlier events stay in the ledger") {
  LedgerFixture f;
  auto n = f.enroll("101");
  n.append(3);
  REQUIRE(f.push(n, 1, 2).ok());
  REQUIRE(f.ledger->revoke(n.id, "tablet lost", "admin", kNow).ok());
  auto r = f.push(n, 3, 3);
  REQUIRE_FALSE(r.ok());
  CHECK(r.refusal().code == wire_error::kRevoked);
  CHECK(r.refusal().http_status == 403);
  CHECK(r.refusal().message.find("tablet lost") != std::string::npos);
  CHECK(f.ledger->tree_size() == 2);
  CHECK(f.ledger->receipt(n.id, 2).ok());
  CHECK(f.ledger->verify_all().ok());
  auto again = f.ledger->revoke(n.id, "twice", "admin", kNow);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == irt::shared::Errc::conflict);
  CHECK(f.ledger->revoke("404-N9", "no such node", "admin", kNow).error().code == irt::shared::Errc::not_found);
  bool audited = false;
  for (const auto& c : f.changes)
    audited |= c.action == "node.revoked" && c.actor == "admin" && c.reason == "tablet lost";
  CHECK(audited);
}

TEST_CASE("a receipt for an event the hub does not hold is not found") {
  LedgerFixture f;
  auto n = f.enroll("101");
  auto r = f.ledger->receipt(n.id, 1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == irt::shared::Errc::not_found);
}

TEST_CASE("a second ledger on the same file catches up before answering proofs") {
  LedgerFixture f;
  auto n = f.enroll("101");
  n.append(9);
  REQUIRE(f.push(n, 1, 4).ok());
  auto db2 = storage::Database::open(f.dir / "hub.db").value();
  auto reader = Ledger::open(db2, f.hub_key, "irt.hub/TEST-1").value();
  REQUIRE(reader->receipt(n.id, 2).ok());
  REQUIRE(f.push(n, 5, 9).ok());
  auto rc = reader->receipt(n.id, 7);
  REQUIRE(rc.ok());
  CHECK(rc->tree_size == 9);
  auto cp = open_checkpoint(rc->checkpoint, kCheckpointKeyName, f.hub_key.public_key());
  REQUIRE(cp);
  CHECK(verify_inclusion(merkle_leaf_hash(n.log[6].record), rc->leaf_index, rc->tree_size, rc->proof, cp->root));
}

TEST_CASE("verify_all accepts an intact ledger") {
  LedgerFixture f;
  auto a = f.enroll("101");
  auto b = f.enroll("102");
  a.append(12);
  b.append(5);
  REQUIRE(f.push(a, 1, 7).ok());
  REQUIRE(f.push(b, 1, 5).ok());
  REQUIRE(f.push(a, 8, 12).ok());
  auto report = f.ledger->verify_all();
  REQUIRE_MESSAGE(report.ok(), report.error().message);
  CHECK(report->nodes == 2);
  CHECK(report->events == 17);
  CHECK(report->tree_size == 17);
  CHECK(report->checkpoints == 4);  // the empty tree and one per batch
}

TEST_CASE("a version 1 ledger, events and leaves in two tables, opens as version 2 with nothing lost") {
  LedgerFixture f;
  auto a = f.enroll("101");
  auto b = f.enroll("102");
  a.append(9);
  b.append(4);
  REQUIRE(f.push(a, 1, 5).ok());
  REQUIRE(f.push(b, 1, 4).ok());
  REQUIRE(f.push(a, 6, 9).ok());
  auto before = f.ledger->receipt(a.id, 3);
  REQUIRE(before.ok());
  f.ledger.reset();
  // The version 1 layout, rebuilt from the same rows.
  f.db.exec(R"sql(
BEGIN;
CREATE TABLE ledger_leaves (leaf_index INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL, node_id TEXT NOT NULL,
                            seq INTEGER NOT NULL);
INSERT INTO ledger_leaves SELECT leaf_index, leaf_hash, node_id, seq FROM ledger_events;
CREATE TABLE v1_events (node_id TEXT NOT NULL REFERENCES ledger_nodes(node_id), seq INTEGER NOT NULL,
                        hash BLOB NOT NULL, record BLOB NOT NULL, leaf_index INTEGER NOT NULL UNIQUE,
                        received_ms INTEGER NOT NULL, PRIMARY KEY (node_id, seq)) WITHOUT ROWID;
INSERT INTO v1_events SELECT node_id, seq, hash, record, leaf_index, received_ms FROM ledger_events;
DROP TABLE ledger_events;
ALTER TABLE v1_events RENAME TO ledger_events;
UPDATE schema_version SET version = 1 WHERE component = 'ledger';
COMMIT;
)sql");

  auto reopened = Ledger::open(f.db, f.hub_key, "irt.hub/TEST-1");
  REQUIRE_MESSAGE(reopened.ok(), reopened.error().message);
  auto& ledger = **reopened;
  auto report = ledger.verify_all();
  REQUIRE_MESSAGE(report.ok(), report.error().message);
  CHECK(report->events == 13);
  CHECK(report->tree_size == 13);
  auto after = ledger.receipt(a.id, 3);
  REQUIRE(after.ok());
  CHECK(after->leaf_index == before->leaf_index);
  CHECK(after->proof == before->proof);
  auto left = f.db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'ledger_leaves'");
  REQUIRE(left.step());
  CHECK(left.int64(0) == 0);
  // And it goes on: the next push appends after the migrated leaves.
  b.append(2);
  auto more = ledger.ingest(b.cert.record, b.records(5, 6), kNow);
  REQUIRE_MESSAGE(more.ok(), more.refusal().message);
  CHECK(more->receipt->leaf_index == 14);
  REQUIRE(ledger.verify_all().ok());
}

TEST_CASE("a version 1 ledger with an event whose leaf is missing is not migrated and loses nothing") {
  LedgerFixture f;
  auto a = f.enroll("101");
  a.append(3);
  REQUIRE(f.push(a, 1, 3).ok());
  f.ledger.reset();
  f.db.exec(R"sql(
BEGIN;
CREATE TABLE ledger_leaves (leaf_index INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL, node_id TEXT NOT NULL,
                            seq INTEGER NOT NULL);
INSERT INTO ledger_leaves SELECT leaf_index, leaf_hash, node_id, seq FROM ledger_events WHERE seq <> 2;
UPDATE schema_version SET version = 1 WHERE component = 'ledger';
COMMIT;
)sql");
  auto opened = Ledger::open(f.db, f.hub_key, "irt.hub/TEST-1");
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().code == irt::shared::Errc::integrity);
  CHECK(opened.error().message.find("schema version 2") != std::string::npos);
  CHECK(opened.error().message.find("nothing was changed") != std::string::npos);
  auto events = f.db.prepare("SELECT count(*) FROM ledger_events");
  REQUIRE(events.step());
  CHECK(events.int64(0) == 3);
  auto leaves = f.db.prepare("SELECT count(*) FROM ledger_leaves");
  REQUIRE(leaves.step());
  CHECK(leaves.int64(0) == 2);
  CHECK(f.db.schema_version("ledger") == 1);
}

TEST_CASE("verify_all names the node and seq of a byte flipped in a stored record") {
  LedgerFixture f;
  auto n = f.enroll("101");
  n.append(6);
  REQUIRE(f.push(n, 1, 6).ok());
  auto st = f.db.prepare("SELECT record FROM ledger_events WHERE node_id = ? AND seq = 4");
  st.bind(1, n.id);
  REQUIRE(st.step());
  auto record = st.blob(0);
  // One byte in the payload, one in the signature, one in the header: each is caught.
  for (std::size_t at : {record.size() - 70, record.size() - 1, std::size_t{5}}) {
    auto bad = record;
    bad[at] ^= 0x01;
    f.db.prepare("UPDATE ledger_events SET record = ? WHERE node_id = ? AND seq = 4").bind_all(bad, n.id).run();
    auto v = f.ledger->verify_all();
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().code == irt::shared::Errc::integrity);
    CHECK_MESSAGE(v.error().message.find("node " + n.id + " seq 4") != std::string::npos, v.error().message);
  }
}

TEST_CASE("verify_all catches a removed event, a changed leaf and a forged checkpoint") {
  LedgerFixture f;
  auto n = f.enroll("101");
  n.append(5);
  REQUIRE(f.push(n, 1, 5).ok());
  REQUIRE(f.ledger->verify_all().ok());

  SUBCASE("a missing event") {
    f.db.prepare("DELETE FROM ledger_events WHERE node_id = ? AND seq = 3").bind_all(n.id).run();
    auto v = f.ledger->verify_all();
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().message.find("seq 3 is missing") != std::string::npos);
  }
  SUBCASE("a changed leaf") {
    crypto::Hash other = crypto::sha256(crypto::as_bytes("other"));
    f.db.prepare("UPDATE ledger_events SET leaf_hash = ? WHERE leaf_index = 1")
        .bind_all(storage::BlobView(other.view()))
        .run();
    auto v = f.ledger->verify_all();
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().message.find("leaf 1") != std::string::npos);
  }
  SUBCASE("a checkpoint signed by another key") {
    auto other = crypto::SigningKey::generate();
    auto text = sign_checkpoint(Checkpoint{"irt.hub/TEST-1", 5, crypto::Hash{}, std::nullopt}, kCheckpointKeyName, other);
    f.db.prepare("UPDATE ledger_checkpoints SET text = ? WHERE tree_size = 5").bind_all(text).run();
    auto v = f.ledger->verify_all();
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().message.find("checkpoint at tree size 5") != std::string::npos);
  }
  SUBCASE("a frontier that disagrees with the leaves") {
    CompactRange empty;
    f.db.prepare("UPDATE ledger_frontier SET tree_size = 0, compact_range = ?").bind_all(empty.encode()).run();
    auto v = f.ledger->verify_all();
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().message.find("frontier") != std::string::npos);
  }
  SUBCASE("a frontier whose bytes are cut short") {
    auto bytes = f.db.prepare("SELECT compact_range FROM ledger_frontier");
    REQUIRE(bytes.step());
    auto cut = bytes.blob(0);
    cut.pop_back();
    f.db.prepare("UPDATE ledger_frontier SET compact_range = ?").bind_all(cut).run();
    auto v = f.ledger->verify_all();
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().code == irt::shared::Errc::integrity);
    CHECK(v.error().message.find("the stored Merkle frontier is malformed") != std::string::npos);
    CHECK_THROWS_WITH_AS(f.ledger->tree_size(), doctest::Contains("run 'irt-hub verify'"), storage::StorageError);
  }
}

TEST_CASE("a record whose seq was altered after signing is a bad signature, not a gap") {
  LedgerFixture f;
  auto n = f.enroll("101");
  n.append(3);
  REQUIRE(f.push(n, 1, 1).ok());
  auto records = n.records(2, 3);
  // The seq's low byte sits after magic, version and the node id "101-N1".
  records[0][5 + 2 + 6 + 7] ^= 0x04;
  auto r = f.ledger->ingest(n.cert.record, records, kNow);
  REQUIRE_FALSE(r.ok());
  CHECK(r.refusal().code == wire_error::kBadSignature);
  CHECK(f.ledger->alerts(true).size() == 1);
  CHECK(f.ledger->evidence(n.id).size() == 1);
}

namespace {

std::optional<crypto::Bytes> pull_signature(const FakeNode& n, const std::string& body) {
  auto sig = n.key.sign(crypto::as_bytes(std::string(kPullDomain) + body));
  return crypto::Bytes(sig.view().begin(), sig.view().end());
}

}  // namespace

TEST_CASE("a pull signed by the node over its body is authenticated, with its limit clamped") {
  LedgerFixture f;
  auto n = f.enroll("101");
  std::string body = R"({"node_id":")" + n.id + R"(","after":3,"time_ms":)" + std::to_string(kNow) + R"(,"limit":9999})";
  auto pull = f.ledger->authenticate_pull(n.cert.record, pull_signature(n, body), body, kNow);
  REQUIRE(pull.ok());
  CHECK(pull->node.node_id == n.id);
  CHECK(pull->after == 3);
  CHECK(pull->limit == kMaxBatchRecords);
  std::string plain = R"({"node_id":")" + n.id + R"(","after":0})";
  auto defaults = f.ledger->authenticate_pull(n.cert.record, pull_signature(n, plain), plain, kNow);
  REQUIRE(defaults.ok());
  CHECK(defaults->limit == kDefaultPullLimit);
}

TEST_CASE("a pull is refused for a bad signature, another node's body, a far clock or a revoked node") {
  LedgerFixture f;
  auto n = f.enroll("101");
  auto other = f.enroll("101");
  std::string body = R"({"node_id":")" + n.id + R"(","after":0})";
  auto code_of = [&](const FakeNode& who, const std::optional<crypto::Bytes>& sig, const std::string& b) {
    auto r = f.ledger->authenticate_pull(who.cert.record, sig, b, kNow);
    return r.ok() ? std::string("accepted") : r.refusal().code;
  };
  CHECK(code_of(n, std::nullopt, body) == wire_error::kRequestSignature);
  CHECK(code_of(n, pull_signature(other, body), body) == wire_error::kRequestSignature);  // another key
  CHECK(code_of(n, pull_signature(n, body), body + " ") == wire_error::kRequestSignature);  // not these bytes
  CHECK(code_of(other, pull_signature(other, body), body) == wire_error::kWrongNode);  // names node n
  std::string junk = R"({"node_id":")" + n.id + R"("})";
  CHECK(code_of(n, pull_signature(n, junk), junk) == wire_error::kBadRequest);
  std::string late = R"({"node_id":")" + n.id + R"(","after":0,"time_ms":)" +
                     std::to_string(kNow + kPullClockSkewMs + 1) + "}";
  CHECK(code_of(n, pull_signature(n, late), late) == wire_error::kClockSkew);
  crypto::Bytes forged_cert = n.cert.record;
  forged_cert.back() ^= 1;
  CHECK(f.ledger->authenticate_pull(forged_cert, pull_signature(n, body), body, kNow).refusal().code ==
        wire_error::kCertificate);
  REQUIRE(f.ledger->revoke(n.id, "tablet lost", "admin", kNow).ok());
  CHECK(code_of(n, pull_signature(n, body), body) == wire_error::kRevoked);
}

TEST_CASE("a signed request timed more than a day from the hub's clock is refused as clock_skew, within a day accepted") {
  LedgerFixture f;
  auto n = f.enroll("101");
  const std::string content = "a push's records";
  auto code_at = [&](std::int64_t time_ms) {
    auto sig = n.key.sign(crypto::as_bytes(request_signing_text(kPushDomain, time_ms, content)));
    auto r = f.ledger->authenticate_request(n.cert.record, kPushDomain, crypto::Bytes(sig.view().begin(), sig.view().end()),
                                            std::to_string(time_ms), content, kNow);
    return r.ok() ? std::string("accepted") : r.refusal().code;
  };
  CHECK(code_at(kNow) == "accepted");
  CHECK(code_at(kNow - kPullClockSkewMs) == "accepted");
  CHECK(code_at(kNow + kPullClockSkewMs) == "accepted");
  CHECK(code_at(kNow + kPullClockSkewMs + 1) == wire_error::kClockSkew);  // a captured request replayed a day later
  CHECK(code_at(kNow - kPullClockSkewMs - 1) == wire_error::kClockSkew);
}
