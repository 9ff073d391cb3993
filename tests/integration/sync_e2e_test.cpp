// End to end: real irt-hub and irt-node processes on loopback.
#include <doctest/doctest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "crypto/key_wrap.h"
#include "node/node_state.h"
#include "shared/event_payloads.h"
#include "storage/database.h"
#include "sync/batch.h"
#include "sync/event.h"
#include "sync/protocol.h"
#include "tests/support/cluster.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/sync_requests.h"

using namespace irt;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kPassword = "site-101-password";

// Appends `n` site notes straight into the node's log, as the node would.
void append_notes(NodeDir& node, int n, const std::string& text = "bulk note") {
  auto state = node::NodeState::open(node.data(), test::kNodePassphrase);
  REQUIRE(state.ok());
  auto& s = **state;
  std::string p = nlohmann::json(shared::SiteNote{text, "coordinator", s.enrollment().site_id}).dump();
  storage::Transaction tx(s.db());
  for (int i = 0; i < n; ++i)
    REQUIRE(s.log()
                .append(s.key(), "coordinator.ana", std::string(shared::kSiteNoteEvent), crypto::Bytes(p.begin(), p.end()))
                .ok());
  tx.commit();
}

nlohmann::json node_status(NodeDir& node) {
  auto r = node.cli({"status"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return nlohmann::json::parse(r.out);
}

// The hub's view of one node: how many events it holds and how many distinct sequences.
std::pair<std::int64_t, std::int64_t> hub_counts(HubProcess& hub, const std::string& node_id) {
  auto db = hub.database();
  auto st = db.prepare("SELECT count(*), count(DISTINCT seq), coalesce(max(seq), 0) FROM ledger_events WHERE node_id = ?");
  st.bind(1, node_id);
  REQUIRE(st.step());
  CHECK(st.int64(1) == st.int64(2));  // sequences 1..max, each once
  return {st.int64(0), st.int64(1)};
}

nlohmann::json alerts(HubProcess& hub) {
  auto r = hub.read_as_admin({"alerts", "--json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return nlohmann::json::parse(r.out);
}

bool has_alert(HubProcess& hub, const std::string& node_id, const std::string& kind) {
  for (const auto& a : alerts(hub))
    if (a.value("node_id", "") == node_id && a.value("kind", "") == kind) return true;
  return false;
}

// A node's database opened as an insider who knows the passphrase could, with its data key.
struct RawNodeDb {
  storage::Database db;
  crypto::AeadKey key;
  std::string node_id;
  std::string ad(std::uint64_t seq) const { return "irt/node/" + node_id + "/event/" + std::to_string(seq); }
};

RawNodeDb open_raw(NodeDir& node) {
  auto db = storage::Database::open(node.data() / "node.db", {.create = false});
  REQUIRE(db.ok());
  auto meta = [&](const std::string& k) {
    auto st = db->prepare("SELECT value FROM node_meta WHERE key = ?");
    st.bind(1, k);
    REQUIRE(st.step());
    return st.text(0);
  };
  auto unwrapped = crypto::unwrap_key(*crypto::from_base64(meta("wrapped_data_key")), test::kNodePassphrase);
  REQUIRE(unwrapped.secret);
  auto node_id = meta("node_id");
  return RawNodeDb{std::move(*db), crypto::AeadKey::from(std::move(*unwrapped.secret)), node_id};
}

// Rewrites the stored record of event `seq` as an insider who knows the passphrase could.
void rewrite_event(NodeDir& node, std::uint64_t seq, const std::function<void(crypto::Bytes&)>& edit) {
  auto raw = open_raw(node);
  auto st = raw.db.prepare("SELECT sealed FROM node_events WHERE seq = ?");
  st.bind(1, static_cast<std::int64_t>(seq));
  REQUIRE(st.step());
  auto record = crypto::aead_open(raw.key, st.blob(0), crypto::as_bytes(raw.ad(seq)));
  REQUIRE(record);
  edit(*record);
  raw.db.prepare("UPDATE node_events SET sealed = ? WHERE seq = ?")
      .bind_all(crypto::aead_seal(raw.key, *record, crypto::as_bytes(raw.ad(seq))), static_cast<std::int64_t>(seq))
      .run();
}

// The node's sealed chain head (docs/node-storage.md), as stored.
crypto::Bytes sealed_head(RawNodeDb& raw) {
  auto st = raw.db.prepare("SELECT sealed FROM node_sealed WHERE key = 'chain_head'");
  REQUIRE(st.step());
  return st.blob(0);
}

void put_sealed_head(RawNodeDb& raw, const crypto::Bytes& sealed) {
  raw.db.prepare("UPDATE node_sealed SET sealed = ? WHERE key = 'chain_head'").bind_all(sealed).run();
}

// Stores, as the next event, a screen failure whose reason makes it larger
// than the hub accepts, signed and chained by the node itself, its sealed head
// moved with it: what an irt-node without request limits wrote. Returns its seq.
std::uint64_t append_oversized_event(NodeDir& node) {
  crypto::Bytes record;
  crypto::Hash hash;
  std::uint64_t seq = 0;
  {
    auto state = node::NodeState::open(node.data(), test::kNodePassphrase);
    REQUIRE(state.ok());
    auto& s = **state;
    auto prev = sync::parse_event(*s.log().record(s.log().last_seq()));
    REQUIRE(prev.ok());
    shared::Screened failed{"101-001", shared::ParticipantStatus::screen_failed, {}, {"no"}, "coordinator",
                            std::string(sync::kMaxPayload, 'x')};
    std::string payload = nlohmann::json(failed).dump();
    seq = s.log().last_seq() + 1;
    auto e = sync::sign_event({.node_id = s.enrollment().node_id, .seq = seq, .prev_hash = prev->hash,
                               .hlc = prev->body.hlc + 1, .device_time_ms = sync::system_millis(),
                               .actor = "coordinator.ana", .type = std::string(shared::kScreenFailedEvent),
                               .directive_seq = s.log().applied_directive_seq(),
                               .payload = crypto::Bytes(payload.begin(), payload.end())},
                              s.key());
    record = e.record;
    hash = e.hash;
  }
  auto raw = open_raw(node);
  raw.db.prepare("INSERT INTO node_events(seq, hash, sealed, recorded_ms) VALUES(?, ?, ?, 0)")
      .bind_all(static_cast<std::int64_t>(seq), storage::BlobView(hash.view()),
                crypto::aead_seal(raw.key, record, crypto::as_bytes(raw.ad(seq))))
      .run();
  std::string head = nlohmann::json{{"seq", seq}, {"hash", hash.hex()}}.dump();
  put_sealed_head(raw, crypto::aead_seal(raw.key, crypto::as_bytes(head),
                                         crypto::as_bytes("irt/node/" + raw.node_id + "/kv/chain_head")));
  return seq;
}

int count_alerts(HubProcess& hub, const std::string& node_id, const std::string& kind) {
  int n = 0;
  for (const auto& a : alerts(hub))
    if (a.value("node_id", "") == node_id && a.value("kind", "") == kind) ++n;
  return n;
}

// `irt-node serve --listen` on a node enrolled with the hub, and its /api/v1.
class ServedNode {
 public:
  explicit ServedNode(NodeDir& node) : port_(test::free_port()) {
    process_ = std::make_unique<test::Process>(
        std::vector<std::string>{IRT_NODE_BIN, "serve", "--data", node.data().string(), "--sync-interval", "60",
                                 "--listen", "127.0.0.1:" + std::to_string(port_)},
        std::vector<std::string>{std::string("IRT_PASSPHRASE=") + test::kNodePassphrase}, tmp_ / "serve.log");
    REQUIRE_MESSAGE(test::wait_for_port(port_, 15000), test::read_file(tmp_ / "serve.log"));
  }
  std::pair<int, nlohmann::json> call(const std::string& method, const std::string& path,
                                      const nlohmann::json& body = nullptr) {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    httplib::Headers h;
    if (!token_.empty()) h.emplace("Authorization", "Bearer " + token_);
    auto r = method == "GET" ? c.Get(path.c_str(), h) : c.Post(path.c_str(), h, body.dump(), "application/json");
    if (!r) return {0, nullptr};
    return {r->status, nlohmann::json::parse(r->body, nullptr, false)};
  }
  void login(const std::string& user, const std::string& password) {
    auto [status, body] = call("POST", "/api/v1/login", {{"user", user}, {"password", password}});
    REQUIRE_MESSAGE(status == 200, body.dump());
    token_ = body["token"];
  }
  // Polls /api/v1/status until `done` holds; polling, not timing.
  nlohmann::json wait_status(const std::function<bool(const nlohmann::json&)>& done) {
    nlohmann::json last;
    for (int i = 0; i < 600; ++i) {
      last = call("GET", "/api/v1/status").second;
      if (done(last)) return last;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL("the node's status never reached the expected state: " << last.dump());
    return last;
  }
  int stop() { return process_->terminate(); }

 private:
  test::TempDir tmp_;
  int port_;
  std::string token_;
  std::unique_ptr<test::Process> process_;
};

struct Cluster {
  HubProcess hub;
  Cluster() {
    hub.add_user("coordinator.ana", "coordinator", "101", kPassword);
    hub.add_user("coordinator.ben", "coordinator", "102", kPassword);
  }
};

}  // namespace

TEST_CASE("two nodes record events offline, sync, and the ledger holds every event exactly once") {
  Cluster c;
  NodeDir a(c.hub, "101");
  NodeDir b(c.hub, "102");
  c.hub.stop();  // offline from here
  for (int i = 0; i < 3; ++i) CHECK(a.note("coordinator.ana", kPassword, "fridge log " + std::to_string(i)).exit_code == 0);
  CHECK(b.note("coordinator.ben", kPassword, "courier late").exit_code == 0);
  auto offline = a.sync();
  CHECK(offline.exit_code == 3);
  CHECK(offline.err.find("cannot reach the hub") != std::string::npos);
  CHECK(a.note("coordinator.ben", kPassword, "not my site").exit_code != 0);

  c.hub.start();
  REQUIRE(a.sync().exit_code == 0);
  REQUIRE(b.sync().exit_code == 0);
  auto sa = node_status(a), sb = node_status(b);
  CHECK(sa["pending_events"] == 0);
  CHECK(sb["pending_events"] == 0);
  CHECK(hub_counts(c.hub, sa["node_id"]).first == sa["last_seq"].get<std::int64_t>());
  CHECK(hub_counts(c.hub, sb["node_id"]).first == sb["last_seq"].get<std::int64_t>());
  auto v = c.hub.cli({"verify"});
  std::string verify_output = v.out + v.err;
  CHECK_MESSAGE(v.exit_code == 0, verify_output);
  CHECK(a.verify().exit_code == 0);
}

TEST_CASE("the hub killed mid-push and restarted loses and duplicates nothing") {
  Cluster c;
  NodeDir a(c.hub, "101");
  append_notes(a, 4000);
  // Small batches, so that the kill falls between pushes kept in flight two at a time.
  test::Process sync({IRT_NODE_BIN, "sync", "--data", a.data().string(), "--batch-events", "100"},
                     {std::string("IRT_PASSPHRASE=") + test::kNodePassphrase});
  // Kill the hub as soon as it has acknowledged part of the log, wherever that falls.
  auto db = c.hub.database();
  for (int i = 0; i < 2000; ++i) {
    auto st = db.prepare("SELECT count(*) FROM ledger_events");
    st.step();
    if (st.int64(0) > 500) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling progress, not timing
  }
  c.hub.kill_hard();
  sync.terminate();
  auto mid = node_status(a);
  CHECK(mid["pending_events"].get<int>() > 0);

  c.hub.start();
  REQUIRE(a.sync().exit_code == 0);
  auto s = node_status(a);
  CHECK(s["pending_events"] == 0);
  auto [count, distinct] = hub_counts(c.hub, s["node_id"]);
  CHECK(count == s["last_seq"].get<std::int64_t>());
  CHECK(distinct == count);
  CHECK(c.hub.cli({"verify"}).exit_code == 0);
}

TEST_CASE("through a proxy that drops, duplicates, delays, reorders and truncates, one clean round converges") {
  Cluster c;
  test::FaultProxy proxy(c.hub.port());
  NodeDir a(c.hub, "101", "http://127.0.0.1:" + std::to_string(proxy.port()));
  proxy.set_random_faults(20261124, 0.6);
  for (int round = 0; round < 12; ++round) {
    append_notes(a, 150, "round " + std::to_string(round));
    a.cli({"sync", "--batch-events", "40"});  // may fail: faults are injected; two pushes in flight
  }
  CHECK(proxy.faults_injected() > 0);
  proxy.pass_through();
  auto last = a.sync();
  CHECK_MESSAGE(last.exit_code == 0, last.err);
  auto s = node_status(a);
  CHECK(s["pending_events"] == 0);
  auto [count, distinct] = hub_counts(c.hub, s["node_id"]);
  CHECK(count == s["last_seq"].get<std::int64_t>());
  CHECK(c.hub.cli({"verify"}).exit_code == 0);
  CHECK(a.verify().exit_code == 0);
}

TEST_CASE("a push that overtakes the one before it waits for it, and alone it is refused as a gap") {
  Cluster c;
  NodeDir a(c.hub, "101");
  REQUIRE(a.sync().exit_code == 0);
  append_notes(a, 60);
  auto state = node::NodeState::open(a.data(), test::kNodePassphrase);
  REQUIRE(state.ok());
  auto& log = (*state)->log();
  const auto acked = log.acked_seq();
  auto id = (*state)->enrollment().node_id;
  auto first = crypto::to_string(sync::encode_batch(log.records_after(acked, 30, 1 << 20)));
  auto second = crypto::to_string(sync::encode_batch(log.records_after(acked + 30, 30, 1 << 20)));
  auto post = [&](const std::string& body) {
    httplib::Client http("127.0.0.1", c.hub.port());
    auto h = test::signed_request_headers((*state)->enrollment().certificate, (*state)->key(), sync::kPushDomain, body);
    return http.Post(sync::kPushPath, h, body, "application/octet-stream");
  };
  auto before = hub_counts(c.hub, id);

  auto alone = post(second);
  REQUIRE(alone);
  CHECK(alone->status == 409);
  CHECK(nlohmann::json::parse(alone->body)["error"]["expected_seq"] == acked + 1);
  CHECK(hub_counts(c.hub, id) == before);

  // The later batch sent first: it waits while the earlier one is checked and committed.
  std::optional<httplib::Result> later_answer;
  std::thread later([&] { later_answer.emplace(post(second)); });
  auto earlier_answer = post(first);
  later.join();
  REQUIRE(earlier_answer);
  REQUIRE((later_answer && *later_answer));
  auto& later_response = **later_answer;
  CHECK(earlier_answer->status == 200);
  CHECK_MESSAGE(later_response.status == 200, later_response.body);
  CHECK(nlohmann::json::parse(later_response.body)["acked_seq"] == acked + 60);
  CHECK(hub_counts(c.hub, id).first == before.first + 60);
  CHECK(c.hub.cli({"verify"}).exit_code == 0);
}

TEST_CASE("a tampered event is named by irt-node verify, and its push is refused with an alert") {
  Cluster c;
  struct Case {
    const char* name;
    std::function<void(crypto::Bytes&)> edit;
  };
  std::vector<Case> cases = {
      {"payload", [](crypto::Bytes& r) { r[r.size() - 64 - 3] ^= 0x01; }},
      {"signature", [](crypto::Bytes& r) { r[r.size() - 1] ^= 0x01; }},
      {"sequence", [](crypto::Bytes& r) { r[5 + 2 + 6 + 7] ^= 0x04; }},       // low byte of seq (node id "101-N?")
      {"previous hash", [](crypto::Bytes& r) { r[5 + 2 + 6 + 8] ^= 0x01; }},  // first byte of prev_hash
  };
  for (const auto& k : cases) {
    CAPTURE(k.name);
    NodeDir n(c.hub, "101");
    auto id = node_status(n)["node_id"].get<std::string>();
    REQUIRE(id.size() == 6);  // the byte offsets above assume it
    append_notes(n, 3);
    auto s = node_status(n);
    std::uint64_t target = s["last_seq"].get<std::uint64_t>() - 1;
    rewrite_event(n, target, k.edit);
    auto v = n.verify();
    CHECK(v.exit_code != 0);
    CHECK(v.err.find("event " + std::to_string(target)) != std::string::npos);
    auto push = n.sync();
    CHECK(push.exit_code != 0);
    CHECK((has_alert(c.hub, id, "bad_signature") || has_alert(c.hub, id, "broken_chain")));
    CHECK(hub_counts(c.hub, id).second < static_cast<std::int64_t>(target));
  }
}

TEST_CASE("deleting the last events of a node's log is named by verify, and status shows no wrapped count") {
  Cluster c;
  NodeDir n(c.hub, "101");
  append_notes(n, 3);
  REQUIRE(n.sync().exit_code == 0);
  auto s = node_status(n);
  auto last = s["last_seq"].get<std::uint64_t>();
  REQUIRE(s["acked_seq"].get<std::uint64_t>() == last);
  {
    // What anyone with the file can do, without the passphrase.
    auto db = storage::Database::open(n.data() / "node.db", {.create = false});
    REQUIRE(db.ok());
    db->prepare("DELETE FROM node_events WHERE seq > ?").bind_all(static_cast<std::int64_t>(last - 2)).run();
  }
  auto v = n.verify();
  CHECK(v.exit_code != 0);
  CHECK_MESSAGE(v.err.find("the log ends at event " + std::to_string(last - 2) + " but its sealed head says " +
                           std::to_string(last) + ": events were deleted; restore") != std::string::npos,
                v.err);
  auto st = n.cli({"status"});
  CHECK(st.exit_code != 0);
  CHECK(st.out.find("18446744073709551615") == std::string::npos);
  auto j = nlohmann::json::parse(st.out);
  CHECK(j["pending_events"] == 0);
  CHECK(j["damage"].get<std::string>().find("events were deleted") != std::string::npos);
}

TEST_CASE("equivocation: two different events with one sequence are kept, alerted, and freeze the node") {
  Cluster c;
  NodeDir a(c.hub, "101");
  test::TempDir copy_dir;
  std::filesystem::copy(a.data(), copy_dir / "node", std::filesystem::copy_options::recursive);
  append_notes(a, 2, "original");
  REQUIRE(a.sync().exit_code == 0);
  {
    auto clone = node::NodeState::open(copy_dir / "node", test::kNodePassphrase);
    REQUIRE(clone.ok());
    auto& s = **clone;
    std::string p = nlohmann::json(shared::SiteNote{"clone", "coordinator", s.enrollment().site_id}).dump();
    storage::Transaction tx(s.db());
    REQUIRE(s.log()
                .append(s.key(), "coordinator.ana", std::string(shared::kSiteNoteEvent), crypto::Bytes(p.begin(), p.end()))
                .ok());
    tx.commit();
    auto r = s.sync_once();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("equivocation") != std::string::npos);
  }
  auto id = node_status(a)["node_id"].get<std::string>();
  CHECK(has_alert(c.hub, id, "equivocation"));
  append_notes(a, 1, "after");
  auto frozen = a.sync();
  CHECK(frozen.exit_code != 0);
  CHECK(frozen.err.find("frozen") != std::string::npos);
}

TEST_CASE("a replayed batch changes nothing, and another node's records are refused") {
  Cluster c;
  NodeDir a(c.hub, "101");
  NodeDir b(c.hub, "102");
  REQUIRE(a.sync().exit_code == 0);
  auto state_a = node::NodeState::open(a.data(), test::kNodePassphrase);
  auto state_b = node::NodeState::open(b.data(), test::kNodePassphrase);
  REQUIRE(state_a.ok());
  REQUIRE(state_b.ok());
  auto batch = sync::encode_batch((*state_a)->log().records_after(0, 100, 1 << 20));
  httplib::Client http("127.0.0.1", c.hub.port());
  auto send = [&](const node::NodeState& as) {  // signed by that node: the certificate and the key are its
    const auto body = crypto::to_string(batch);
    auto h = test::signed_request_headers(as.enrollment().certificate, as.key(), sync::kPushDomain, body);
    return http.Post(sync::kPushPath, h, body, "application/octet-stream");
  };
  auto id = (*state_a)->enrollment().node_id;
  auto before = hub_counts(c.hub, id);
  auto replay = send(**state_a);
  REQUIRE(replay);
  CHECK(replay->status == 200);
  auto j = nlohmann::json::parse(replay->body);
  CHECK(j["appended"] == 0);
  CHECK(j["already_recorded"].get<std::int64_t>() == before.first);
  CHECK(hub_counts(c.hub, id) == before);

  auto foreign = send(**state_b);
  REQUIRE(foreign);
  CHECK(foreign->status == 401);
  CHECK(nlohmann::json::parse(foreign->body)["error"]["code"] == sync::wire_error::kWrongNode);
}

TEST_CASE("a revoked node's pushes are refused while its earlier events stay in the ledger") {
  Cluster c;
  NodeDir a(c.hub, "101");
  REQUIRE(a.sync().exit_code == 0);
  auto s = node_status(a);
  auto id = s["node_id"].get<std::string>();
  CHECK(s["sync_refused"] == false);
  c.hub.add_user("admin.kim", "admin", "", "admin-password-123");
  auto r = c.hub.cli({"revoke", "--node", id, "--reason", "tablet reported stolen", "--user", "admin.kim"},
                     "admin-password-123\n");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto revoked_deviations = [&] {
    auto db = c.hub.database();
    auto st = db.prepare("SELECT summary FROM hub_deviations WHERE kind = 'revoked_node' AND node_id = ?");
    st.bind(1, id);
    std::vector<std::string> out;
    while (st.step()) out.push_back(st.text(0));
    return out;
  };
  // With nothing to push, the node only pulls: refused, and raised as a deviation.
  CHECK(a.sync().exit_code != 0);
  auto raised = revoked_deviations();
  REQUIRE(raised.size() == 1);
  CHECK(raised[0].find("tried to sync") != std::string::npos);
  append_notes(a, 1);
  for (int round = 0; round < 3; ++round) {
    auto refused = a.sync();
    CHECK(refused.exit_code != 0);
    CHECK(refused.err.find("sync refused by the hub: node " + id + " was revoked") != std::string::npos);
  }
  // Said by the offline status command, and alerted at the hub once, not once per round.
  auto after = node_status(a);
  CHECK(after["sync_refused"] == true);
  CHECK_MESSAGE(after["sync_error"].get<std::string>().find("enroll a new node") != std::string::npos, after.dump());
  CHECK(count_alerts(c.hub, id, "push.refused.node_revoked") == 1);
  CHECK(revoked_deviations().size() == 1);  // one open per node, pulls and pushes alike
  CHECK(hub_counts(c.hub, id).first == s["last_seq"].get<std::int64_t>());
  CHECK(c.hub.cli({"verify"}).exit_code == 0);
}

TEST_CASE("an event larger than the hub accepts: the node says sync is refused, the hub alerts once, verify names it") {
  Cluster c;
  NodeDir a(c.hub, "101");
  REQUIRE(a.sync().exit_code == 0);
  auto id = node_status(a)["node_id"].get<std::string>();
  auto backup_head = [&] {
    auto raw = open_raw(a);
    return sealed_head(raw);
  }();
  auto seq = append_oversized_event(a);
  const std::string refusal = "sync refused by the hub: event " + std::to_string(seq) +
                              " (record 1 of the batch): the event's payload is ";
  for (int round = 0; round < 3; ++round) {
    auto r = a.sync();
    CHECK(r.exit_code != 0);
    CHECK_MESSAGE(r.err.find(refusal) != std::string::npos, r.err);
  }
  auto st = node_status(a);
  CHECK(st["sync_refused"] == true);
  CHECK(st["sync_error"].get<std::string>().rfind(refusal, 0) == 0);
  CHECK(st["pending_events"] == 1);
  {
    ServedNode served(a);
    served.login("coordinator.ana", kPassword);
    auto api = served.wait_status([](const nlohmann::json& j) { return j.value("sync_state", "") == "refused"; });
    CHECK(api["online"] == false);
    CHECK(api["sync_error"].get<std::string>().rfind(refusal, 0) == 0);
    CHECK(served.stop() == 0);
  }
  auto alerted = alerts(c.hub);
  int n = 0;
  for (const auto& al : alerted)
    if (al["node_id"] == id && al["kind"] == "push.refused.bad_request") {
      ++n;
      CHECK(al["seq"] == seq);
    }
  CHECK(n == 1);
  auto v = a.verify();
  CHECK(v.exit_code != 0);
  CHECK(v.err.find("event " + std::to_string(seq) + " (participant.screen_failed): intact and signed by this node") !=
        std::string::npos);
  CHECK(v.err.find("malformed") == std::string::npos);
  CHECK(v.err.find("altered") == std::string::npos);
  // With the record gone (the node restored from a backup), the next push succeeds and the refusal is forgotten.
  {
    auto raw = open_raw(a);
    raw.db.prepare("DELETE FROM node_events WHERE seq = ?").bind_all(static_cast<std::int64_t>(seq)).run();
    put_sealed_head(raw, backup_head);
  }
  REQUIRE(a.sync().exit_code == 0);
  st = node_status(a);
  CHECK(st["sync_refused"] == false);
  CHECK(st["sync_error"] == "");
}

TEST_CASE("a screen request with a 1 MiB reason is a 400 naming the field, records nothing, and the node keeps syncing") {
  Cluster c;
  NodeDir a(c.hub, "101");
  ServedNode served(a);
  served.login("coordinator.ana", kPassword);
  auto before = served.wait_status([](const nlohmann::json& j) { return j.value("sync_state", "") == "online"; });
  nlohmann::json screen = {{"factors", {{"diabetes", "no"}}},
                           {"eligibility", std::vector<std::string>(5, "yes")}};
  auto huge = screen;
  const std::size_t length = (1 << 20) - 256;  // the body still fits the API's 1 MiB
  huge["screen_failure_reason"] = std::string(length, 'x');
  auto [status, body] = served.call("POST", "/api/v1/participants", huge);
  CHECK(status == 400);
  CHECK(body["error"]["code"] == "invalid_input");
  CHECK(body["error"]["message"] ==
        "screen_failure_reason: at most 2000 characters (got " + std::to_string(length) + "); shorten it");
  CHECK(served.call("GET", "/api/v1/status").second["last_seq"] == before["last_seq"]);

  auto [ok, screened] = served.call("POST", "/api/v1/participants", screen);
  CHECK_MESSAGE(ok == 200, screened.dump());
  auto after = served.wait_status([](const nlohmann::json& j) {
    return j.value("sync_state", "") == "online" && j.value("pending_events", -1) == 0;
  });
  CHECK(after["last_seq"].get<std::uint64_t>() > before["last_seq"].get<std::uint64_t>());
  CHECK(after["sync_error"] == "");
  CHECK(served.stop() == 0);
  for (const auto& al : alerts(c.hub)) CHECK(al["kind"].get<std::string>().rfind("push.refused", 0) != 0);
}

TEST_CASE("irt-node note refuses a text over 2000 characters and records nothing") {
  Cluster c;
  NodeDir a(c.hub, "101");
  auto before = node_status(a)["last_seq"];
  auto r = a.note("coordinator.ana", kPassword, std::string(2001, 'n'));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--text: at most 2000 characters (got 2001); shorten it") != std::string::npos);
  CHECK(node_status(a)["last_seq"] == before);
  CHECK(a.note("coordinator.ana", kPassword, std::string(2000, 'n')).exit_code == 0);
}

TEST_CASE("over HTTPS a node enrolls with the right fingerprint and is refused with a wrong one") {
  HubProcess hub("packaging/examples/study-blocks.json", /*tls=*/true);
  NodeDir good(hub, "101");
  CHECK(good.sync().exit_code == 0);

  test::TempDir dir;
  std::string wrong = hub.fingerprint();
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  auto r = test::run({IRT_NODE_BIN, "enroll", "--data", (dir / "node").string(), "--hub", hub.url(),
                      "--hub-fingerprint", wrong, "--kdf-cost", "min"},
                     hub.invite("101") + "\n", {std::string("IRT_PASSPHRASE=") + test::kNodePassphrase});
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("fingerprint") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "node"));
}

TEST_CASE("the enrollment token is read from standard input or a file, never from the command line") {
  HubProcess hub;
  test::TempDir dir;
  auto enroll = [&](const std::string& sub, std::vector<std::string> extra, const std::string& in) {
    std::vector<std::string> argv = {IRT_NODE_BIN, "enroll", "--data", (dir / sub).string(), "--hub", hub.url(),
                                     "--hub-fingerprint", hub.fingerprint(), "--kdf-cost", "min"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return test::run(argv, in, {std::string("IRT_PASSPHRASE=") + test::kNodePassphrase});
  };
  auto on_argv = enroll("argv", {"--token", hub.invite("101")}, "");
  CHECK(on_argv.exit_code == 2);
  CHECK(on_argv.err.find("--token") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "argv"));
  auto none = enroll("none", {}, "");
  CHECK(none.exit_code == 2);
  CHECK(none.err.find("no enrollment token") != std::string::npos);
  CHECK(none.err.find("--token-file") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "none"));
  std::filesystem::create_directories(dir / "secrets");
  const auto file = dir / "secrets" / "token";
  std::ofstream(file) << hub.invite("101") << "\n";
  auto from_file = enroll("file", {"--token-file", file.string()}, "");
  CHECK_MESSAGE(from_file.exit_code == 0, from_file.err);
}

TEST_CASE("a used, expired or unknown token creates nothing") {
  HubProcess hub;
  std::string token = hub.invite("101");
  test::TempDir dir;
  auto enroll = [&](const std::string& t, const std::string& sub) {
    return test::run({IRT_NODE_BIN, "enroll", "--data", (dir / sub).string(), "--hub", hub.url(),
                      "--hub-fingerprint", hub.fingerprint(), "--kdf-cost", "min"},
                     t + "\n", {std::string("IRT_PASSPHRASE=") + test::kNodePassphrase});
  };
  CHECK(enroll(token, "first").exit_code == 0);
  auto used = enroll(token, "second");
  CHECK(used.exit_code != 0);
  CHECK(used.err.find("token") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "second"));
  auto unknown = enroll(std::string(40, 'A'), "third");
  CHECK(unknown.exit_code != 0);
  CHECK_FALSE(std::filesystem::exists(dir / "third"));
  // Seventy-three hours later: the token's expiry has passed.
  std::string late = hub.invite("101");
  {
    auto db = hub.database();
    db.exec("UPDATE hub_enrollment_tokens SET expires_ms = created_ms - 3600000 WHERE used_ms IS NULL");
  }
  auto expired = enroll(late, "fourth");
  CHECK(expired.exit_code != 0);
  CHECK(expired.err.find("expired") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "fourth"));
}

TEST_CASE("irt-node serve syncs in the background and right after a local action") {
  Cluster c;
  NodeDir a(c.hub, "101");
  c.hub.stop();
  test::Process serve({IRT_NODE_BIN, "serve", "--data", a.data().string(), "--sync-interval", "60"},
                      {std::string("IRT_PASSPHRASE=") + test::kNodePassphrase});
  CHECK(a.note("coordinator.ana", kPassword, "recorded while the hub is down").exit_code == 0);
  c.hub.start();
  // Back online: the backoff (1 s, 2 s, 4 s ... with jitter) brings it back without a poke.
  bool synced = false;
  for (int i = 0; i < 300 && !synced; ++i) {
    synced = node_status(a)["pending_events"] == 0;
    if (!synced) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling, not timing
  }
  CHECK(synced);
  // Online, a local action is synced at once, long before the 60 s interval.
  CHECK(a.note("coordinator.ana", kPassword, "second note").exit_code == 0);
  synced = false;
  for (int i = 0; i < 100 && !synced; ++i) {
    synced = node_status(a)["pending_events"] == 0;
    if (!synced) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(synced);
  CHECK(serve.terminate() == 0);
}
