#include "sync/node_log.h"

#include <doctest/doctest.h>

#include "tests/support/test_support.h"

using namespace irt;
using sync::NodeLog;

namespace {

struct LogFixture {
  test::TempDir dir;
  storage::Database db = std::move(storage::Database::open(dir / "node.db").value());
  crypto::AeadKey data_key = crypto::AeadKey::generate();
  crypto::SigningKey key = crypto::SigningKey::generate();
  crypto::SigningKey hub = crypto::SigningKey::generate();
  std::int64_t now = 1764000000000;
  NodeLog log = std::move(NodeLog::open(db, data_key, "101-N1", [this] { return now; }).value());

  sync::SignedEvent note(const std::string& text) {
    storage::Transaction tx(db);
    auto e = log.append(key, "jane", "site.note", crypto::Bytes(text.begin(), text.end()));
    REQUIRE(e.ok());
    tx.commit();
    return *e;
  }

  // An insider who knows the data key rewrites a stored row.
  void rewrite_row(std::uint64_t seq, const crypto::Bytes& record, std::uint64_t ad_seq) {
    auto sealed = crypto::aead_seal(data_key, record,
                                    crypto::as_bytes("irt/node/101-N1/event/" + std::to_string(ad_seq)));
    db.prepare("UPDATE node_events SET sealed = ? WHERE seq = ?")
        .bind_all(sealed, static_cast<std::int64_t>(seq))
        .run();
  }

  sync::SignedDirective directive(std::uint64_t seq, const std::string& type = "roster") {
    return sync::sign_directive({.node_id = "101-N1", .seq = seq, .hlc = 1, .issued_ms = now, .type = type,
                                 .payload = {'{', '}'}},
                                hub);
  }
};

// What verify found, without the likely cause and the advice after it.
std::string finding(const shared::Status& st) {
  REQUIRE_FALSE(st.ok());
  const auto& m = st.error().message;
  return m.substr(0, m.find("; "));
}

bool blames_alteration(const shared::Status& st) {
  return !st.ok() && st.error().message.find("altered or damaged after this node wrote it") != std::string::npos;
}

}  // namespace

TEST_CASE("appended events chain by hash and the whole log verifies") {
  LogFixture f;
  auto e1 = f.note("one");
  auto e2 = f.note("two");
  CHECK(e1.body.seq == 1);
  CHECK(e2.body.seq == 2);
  CHECK(e2.body.prev_hash == e1.hash);
  CHECK(e2.body.hlc > e1.body.hlc);  // the clock did not move, the HLC did
  CHECK(f.log.verify(f.key.public_key()).ok());
  CHECK(f.log.records_after(0, 10, 1 << 20).size() == 2);
}

TEST_CASE("a flipped byte in a stored row is named by its sequence") {
  LogFixture f;
  f.note("one");
  f.note("two");
  f.note("three");
  f.db.exec("UPDATE node_events SET sealed = substr(sealed, 1, 30) || x'00' || substr(sealed, 32) WHERE seq = 2");
  auto st = f.log.verify(f.key.public_key());
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.rfind("event 2:", 0) == 0);
}

TEST_CASE("an edited payload re-encrypted with the data key fails its signature") {
  LogFixture f;
  f.note("one");
  auto e2 = f.note("fridge at 5C");
  auto forged = e2.record;
  auto at = std::search(forged.begin(), forged.end(), e2.body.payload.begin(), e2.body.payload.end());
  *(at + 10) = '9';
  f.rewrite_row(2, forged, 2);
  auto st = f.log.verify(f.key.public_key());
  REQUIRE_FALSE(st.ok());
  CHECK(finding(st) == "event 2: stored hash does not match the record");
  CHECK(blames_alteration(st));
}

TEST_CASE("a forged signature, a moved row and a broken previous hash are each named") {
  LogFixture f;
  auto e1 = f.note("one");
  auto e2 = f.note("two");
  SUBCASE("signature") {
    auto forged = e2.record;
    forged.back() ^= 0x01;
    f.rewrite_row(2, forged, 2);
    CHECK(finding(f.log.verify(f.key.public_key())) == "event 2: signature does not verify");
  }
  SUBCASE("sequence") {
    f.rewrite_row(2, e1.record, 2);  // event 1's record stored as row 2
    CHECK(finding(f.log.verify(f.key.public_key())) == "event 2: record carries sequence 1");
  }
  SUBCASE("previous hash, re-signed by a stolen key still breaks the chain") {
    auto body = e2.body;
    body.prev_hash.bytes[0] ^= 1;
    auto resigned = sync::sign_event(body, f.key);
    f.rewrite_row(2, resigned.record, 2);
    f.db.prepare("UPDATE node_events SET hash = ? WHERE seq = 2").bind_all(storage::BlobView(resigned.hash.view())).run();
    CHECK(finding(f.log.verify(f.key.public_key())) == "event 2: previous hash does not match event 1");
  }
  CHECK(blames_alteration(f.log.verify(f.key.public_key())));
}

TEST_CASE("an event larger than the hub accepts is refused at append and nothing is written") {
  LogFixture f;
  f.note("one");
  auto hlc = f.log.last_hlc();
  struct Case {
    const char* what;
    std::string actor;
    std::string type;
    std::size_t payload;
  };
  for (const auto& c : {Case{"payload", "jane", "site.note", sync::kMaxPayload + 1},
                        Case{"actor", std::string(sync::kMaxActorLength + 1, 'a'), "site.note", 10},
                        Case{"type", "jane", std::string(sync::kMaxIdLength + 1, 't'), 10}}) {
    CAPTURE(c.what);
    storage::Transaction tx(f.db);
    auto e = f.log.append(f.key, c.actor, c.type, crypto::Bytes(c.payload, '{'));
    tx.commit();
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().code == shared::Errc::invalid_input);
    CHECK(e.error().message.find(std::string("the event's ") + c.what + " is ") != std::string::npos);
  }
  CHECK(f.log.last_seq() == 1);
  CHECK(f.log.last_hlc() == hlc);
  // At the limit exactly, the event is written, and the hub's parser accepts it.
  auto at_limit = [&] {
    storage::Transaction tx(f.db);
    auto e = f.log.append(f.key, std::string(sync::kMaxActorLength, 'a'), std::string(sync::kMaxIdLength, 't'),
                          crypto::Bytes(sync::kMaxPayload, ' '));
    tx.commit();
    return e;
  }();
  REQUIRE(at_limit.ok());
  CHECK(at_limit->body.seq == 2);
  CHECK(sync::parse_event(at_limit->record).ok());
  CHECK(f.log.verify(f.key.public_key()).ok());
}

TEST_CASE("verify names an oversized record this node signed as such, never as malformed or altered") {
  LogFixture f;
  auto e1 = f.note("one");
  // What a version without the append limit wrote: signed by this node, chained, too large for the hub.
  sync::EventBody body{.node_id = "101-N1", .seq = 2, .prev_hash = e1.hash, .hlc = e1.body.hlc + 1,
                       .device_time_ms = f.now, .actor = "jane", .type = "participant.screen_failed",
                       .directive_seq = 0, .payload = crypto::Bytes(sync::kMaxPayload + 100, ' ')};
  auto big = sync::sign_event(body, f.key);
  auto sealed = crypto::aead_seal(f.data_key, big.record, crypto::as_bytes("irt/node/101-N1/event/2"));
  f.db.prepare("INSERT INTO node_events(seq, hash, sealed, recorded_ms) VALUES(2, ?, ?, 0)")
      .bind_all(storage::BlobView(big.hash.view()), sealed)
      .run();
  CHECK_FALSE(sync::parse_event(big.record).ok());  // the hub refuses it
  auto st = f.log.verify(f.key.public_key());
  REQUIRE_FALSE(st.ok());
  const auto& m = st.error().message;
  CHECK(m.rfind("event 2 (participant.screen_failed): intact and signed by this node, but the event's payload is " +
                    std::to_string(sync::kMaxPayload + 100) + " bytes, over the limit of " +
                    std::to_string(sync::kMaxPayload) + " bytes",
                0) == 0);
  CHECK(m.find("malformed") == std::string::npos);
  CHECK_FALSE(blames_alteration(st));
}

TEST_CASE("a row rewritten with the data key into something that is not an event is named as altered") {
  LogFixture f;
  f.note("one");
  auto e2 = f.note("two");
  auto cut = e2.record;
  cut.resize(cut.size() - 10);
  f.rewrite_row(2, cut, 2);
  auto st = f.log.verify(f.key.public_key());
  CHECK(finding(st) == "event 2: the stored row opens with this node's data key but is not an event record (event "
                       "record is truncated or has trailing bytes), so someone holding the passphrase rewrote it");
  CHECK(blames_alteration(st));
}

TEST_CASE("a directive is applied exactly once and only in order") {
  LogFixture f;
  int applied = 0;
  auto apply = [&](const sync::SignedDirective&) {
    ++applied;
    return shared::Status{};
  };
  CHECK(f.log.apply_directive(f.directive(1), f.key, apply).ok());
  CHECK(f.log.apply_directive(f.directive(1), f.key, apply).ok());  // a replay changes nothing
  CHECK(applied == 1);
  auto gap = f.log.apply_directive(f.directive(3), f.key, apply);
  REQUIRE_FALSE(gap.ok());
  CHECK(gap.error().code == shared::Errc::conflict);
  CHECK(f.log.applied_directive_seq() == 1);
  CHECK(f.log.last_seq() == 1);  // one "directive.applied" event
  auto e = sync::parse_event(*f.log.record(1));
  CHECK(e->body.type == "directive.applied");
}

TEST_CASE("a failing directive applier leaves no trace") {
  LogFixture f;
  auto refuse = [](const sync::SignedDirective&) {
    return shared::Status(shared::make_error(shared::Errc::invalid_input, "no"));
  };
  CHECK_FALSE(f.log.apply_directive(f.directive(1), f.key, refuse).ok());
  CHECK(f.log.applied_directive_seq() == 0);
  CHECK(f.log.last_seq() == 0);
}

TEST_CASE("events record the last applied directive sequence") {
  LogFixture f;
  auto ok = [](const sync::SignedDirective&) { return shared::Status{}; };
  REQUIRE(f.log.apply_directive(f.directive(1), f.key, ok).ok());
  auto e = f.note("after the roster");
  CHECK(e.body.directive_seq == 1);
}

TEST_CASE("nothing written to the log is readable in the database file") {
  LogFixture f;
  f.note("participant 101-004 seen at home");
  f.log.put_sealed("roster", crypto::Bytes{'s', 'e', 'c', 'r', 'e', 't', '-', 'r', 'o', 's', 't', 'e', 'r'});
  f.db.exec("PRAGMA wal_checkpoint(FULL)");
  std::string raw = test::read_file(f.dir / "node.db");
  if (std::filesystem::exists(f.dir / "node.db-wal")) raw += test::read_file(f.dir / "node.db-wal");
  CHECK(raw.find("101-004") == std::string::npos);
  CHECK(raw.find("secret-roster") == std::string::npos);
  CHECK(raw.find("site.note") == std::string::npos);
}

TEST_CASE("deleting the last events is named by verify and by the end-of-log check") {
  LogFixture f;
  for (const char* t : {"one", "two", "three", "four", "five"}) f.note(t);
  REQUIRE(f.log.verify(f.key.public_key()).ok());
  f.db.exec("DELETE FROM node_events WHERE seq > 3");
  for (const auto& st : {f.log.verify(f.key.public_key()), f.log.check_end()}) {
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == shared::Errc::integrity);
    CHECK(st.error().message.find("the log ends at event 3 but its sealed head says 5: events were deleted") !=
          std::string::npos);
  }
}

TEST_CASE("a sealed head that is edited or deleted is named") {
  LogFixture f;
  f.note("one");
  f.note("two");
  f.db.exec("UPDATE node_sealed SET sealed = (SELECT sealed FROM node_sealed WHERE key = 'chain_head') || x'00' "
            "WHERE key = 'chain_head'");
  auto st = f.log.check_end();
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("sealed head does not authenticate") != std::string::npos);
  f.db.exec("DELETE FROM node_sealed WHERE key = 'chain_head'");
  st = f.log.check_end();
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("sealed head is missing") != std::string::npos);
}

TEST_CASE("an acknowledged cursor ahead of the log is damage, and pending never wraps") {
  LogFixture f;
  f.note("one");
  f.note("two");
  storage::Transaction tx(f.db);
  f.log.set_acked(2, std::nullopt);
  tx.commit();
  CHECK(f.log.pending_events() == 0);
  // An insider deletes the acknowledged events and rewinds the head with them.
  f.db.exec("DELETE FROM node_events WHERE seq = 2");
  f.db.exec("DELETE FROM node_sealed WHERE key = 'chain_head'");
  f.db.exec("UPDATE schema_version SET version = 1 WHERE component = 'node_log'");
  auto reopened = NodeLog::open(f.db, f.data_key, "101-N1", [&f] { return f.now; });
  REQUIRE(reopened.ok());
  CHECK(reopened->pending_events() == 0);
  auto st = reopened->check_end();
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("acknowledged events up to 2 but the log ends at event 1") != std::string::npos);
}

TEST_CASE("a log written before sealed heads gets its head on first open and verifies") {
  LogFixture f;
  f.note("one");
  f.note("two");
  // What a version 1 file looks like: the same tables, no head.
  f.db.exec("DELETE FROM node_sealed WHERE key = 'chain_head'");
  f.db.exec("UPDATE schema_version SET version = 1 WHERE component = 'node_log'");
  auto reopened = NodeLog::open(f.db, f.data_key, "101-N1", [&f] { return f.now; });
  REQUIRE(reopened.ok());
  CHECK(f.db.schema_version("node_log") == 2);
  CHECK(reopened->verify(f.key.public_key()).ok());
  f.db.exec("DELETE FROM node_events WHERE seq = 2");
  CHECK_FALSE(reopened->verify(f.key.public_key()).ok());
}

TEST_CASE("a sealed value that does not authenticate is an integrity error naming its key, never absent") {
  LogFixture f;
  CHECK_FALSE(f.log.get_sealed("roster").value().has_value());  // never written: absent
  f.log.put_sealed("roster", crypto::Bytes{'{', '}'});
  REQUIRE(f.log.get_sealed("roster").value().has_value());
  {
    auto st = f.db.prepare("SELECT sealed FROM node_sealed WHERE key = 'roster'");
    REQUIRE(st.step());
    auto sealed = st.blob(0);
    sealed[30] ^= 0x01;  // one byte of the ciphertext
    f.db.prepare("UPDATE node_sealed SET sealed = ? WHERE key = 'roster'").bind_all(sealed).run();
  }
  auto r = f.log.get_sealed("roster");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::integrity);
  CHECK(r.error().message ==
        "node data is damaged (the sealed record 'roster' does not authenticate: edited, moved or corrupted); "
        "restore the data directory from backup and report it to the central team");
  // A value moved under another key does not open either.
  f.log.put_sealed("study", crypto::Bytes{'{', '}'});
  f.db.exec("UPDATE node_sealed SET sealed = (SELECT sealed FROM node_sealed WHERE key = 'study') "
            "WHERE key = 'chain_head'");
  CHECK(f.log.get_sealed("chain_head").error().message.find("'chain_head' does not authenticate") !=
        std::string::npos);
}

TEST_CASE("a kept receipt that does not authenticate is an integrity error naming its event") {
  LogFixture f;
  f.note("one");
  sync::Receipt receipt{"101-N1", 1, 0, 1, {}, "checkpoint text"};
  {
    storage::Transaction tx(f.db);
    f.log.set_acked(1, receipt);
    tx.commit();
  }
  auto kept = f.log.receipt(1);
  REQUIRE(kept.ok());
  REQUIRE(kept->has_value());
  CHECK((*kept)->checkpoint == "checkpoint text");
  CHECK_FALSE(f.log.receipt(2).value().has_value());  // none kept
  f.db.exec("UPDATE node_receipts SET sealed = sealed || x'00' WHERE seq = 1");
  auto r = f.log.receipt(1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::integrity);
  CHECK(r.error().message.find("the receipt for event 1 does not authenticate") != std::string::npos);
}
