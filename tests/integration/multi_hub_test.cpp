// Several `irt-hub serve` processes on one PostgreSQL, behind a round-robin
// load balancer (tests/support/round_robin_proxy.h): nodes randomize, dispense
// and sync through it while one process is killed with SIGKILL mid-run. The
// database alone must keep the hub right (docs/architecture.md, hub). Runs in
// the "integration-postgresql:" list; the SQLite list skips it.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "node/node_state.h"
#include "node/roster.h"
#include "node/site_operations.h"
#include "shared/directive_payloads.h"
#include "shared/event_payloads.h"
#include "sync/directive.h"
#include "tests/support/cluster.h"
#include "tests/support/round_robin_proxy.h"

using namespace irt;
using test::HubPeer;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kUser = "coordinator.ana";
const std::string kPassword = "all-sites-password";

bool hub_on_postgresql() {
  const char* engine = std::getenv("IRT_TEST_HUB_ENGINE");
  return engine && std::string(engine) == "postgresql";
}

std::int64_t scalar(storage::Database& db, const std::string& sql) {
  auto st = db.prepare(sql);
  REQUIRE(st.step());
  return st.int64(0);
}

// What one node does each round, offline: receive its shipment once, screen
// and randomize a participant (a slot, a number and a kit) while it holds a
// slot and a kit, and write a few notes. Returns the number randomized, or an
// error message.
struct Work {
  int randomized = 0;
  std::string error;
};

Work node_round(NodeDir& dir, bool first_round) {
  Work w;
  auto state = node::NodeState::open(dir.data(), test::kNodePassphrase);
  if (!state) return {0, "open: " + state.error().message};
  auto& s = **state;
  node::SiteOperations ops(s);
  auto password = node::check_password(node::find_user(s.log(), kUser), kUser, kPassword);
  auto actor = ops.login(password);
  if (!actor) return {0, "login: " + actor.error().message};
  if (first_round) {
    for (const auto& [shipment, _] : s.domain().shipments()) {
      std::vector<node::KitReceipt> receipt;
      for (const auto& [number, kit] : s.domain().kits()) receipt.push_back({number, "received"});
      auto received = ops.receive_shipment(*actor, shipment, receipt, {});
      if (!received) return {0, "receive: " + received.error().message};
    }
  }
  auto stratum = s.domain().strata()->index_of({{"site", s.enrollment().site_id}, {"diabetes", "yes"}});
  if (stratum && s.domain().free_slots(static_cast<std::uint32_t>(*stratum)) > 0) {
    node::ScreenRequest req;
    req.factors = {{"diabetes", "yes"}};
    req.eligibility.assign(5, "yes");
    auto screened = ops.screen(*actor, req);
    if (!screened) return {0, "screen: " + screened.error().message};
    auto done = ops.randomize(*actor, screened->participant.number, password);
    if (done) ++w.randomized;  // a node out of kits refuses, and says so to the hub
  }
  std::string note = nlohmann::json(shared::SiteNote{"fridge check", "coordinator", s.enrollment().site_id}).dump();
  storage::Transaction tx(s.db());
  for (int i = 0; i < 15; ++i)
    if (!s.log().append(s.key(), kUser, std::string(shared::kSiteNoteEvent), crypto::Bytes(note.begin(), note.end())))
      return {w.randomized, "note"};
  tx.commit();
  return w;
}

nlohmann::json node_status(NodeDir& node) {
  auto r = node.cli({"status"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return nlohmann::json::parse(r.out);
}

}  // namespace

TEST_CASE("two hub processes on one PostgreSQL, one killed with kill -9 mid-run: every event once, nothing granted twice") {
  if (!hub_on_postgresql()) {
    MESSAGE("several hub processes share a PostgreSQL database; this test runs in the integration-postgresql list");
    return;
  }
  HubProcess hub;
  hub.add_user(kUser, "coordinator", "101,102,201", kPassword);
  HubPeer peer(hub);
  test::RoundRobinProxy balancer({hub.port(), peer.port()});

  // Two nodes of site 101 draw slots from the same strata and numbers of the
  // same site; all draw kits from the same depot.
  std::vector<std::unique_ptr<NodeDir>> nodes;
  for (const char* site : {"101", "101", "102", "201"}) nodes.push_back(std::make_unique<NodeDir>(hub, site, balancer.url()));

  constexpr int kRounds = 10;
  std::mutex mutex;
  std::vector<std::string> errors;  // under mutex
  std::map<std::string, int> randomized;
  std::atomic<int> rounds_done{0};
  std::vector<std::thread> workers;
  for (auto& n : nodes)
    workers.emplace_back([&, node = n.get()] {
      for (int round = 0; round < kRounds; ++round) {
        auto w = node_round(*node, round == 0);
        // Small batches, two in flight: a node's pushes reach both processes.
        node->cli({"sync", "--batch-events", "10"});  // may fail while a process dies
        std::lock_guard lock(mutex);
        if (!w.error.empty()) errors.push_back(node->data().string() + ": " + w.error);
        randomized[node->data().string()] += w.randomized;
        ++rounds_done;
      }
    });

  // SIGKILL one process once a third of the rounds are done, pushes in flight.
  while (rounds_done.load() < static_cast<int>(nodes.size()) * kRounds / 3)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling progress, not timing
  auto before_kill = balancer.answered();
  peer.kill_hard();
  for (auto& t : workers) t.join();
  peer.start();  // back, as an orchestrator restarts a dead process

  CHECK_MESSAGE(before_kill[0] > 0, "the first process answered nothing");
  CHECK_MESSAGE(before_kill[1] > 0, "the second process answered nothing before it was killed");
  for (const auto& e : errors) FAIL_CHECK(e);

  // Converge: each node syncs until nothing is pending.
  for (auto& n : nodes) {
    bool clean = false;
    for (int attempt = 0; attempt < 5 && !clean; ++attempt)
      clean = n->cli({"sync"}).exit_code == 0 && node_status(*n)["pending_events"] == 0;
    CHECK_MESSAGE(clean, (n->data().string() + " did not converge"));
  }

  auto db = hub.database();
  // Every event exactly once: each node's chain 1..last_seq, nothing else.
  std::int64_t total = 0;
  int randomized_total = 0;
  for (auto& n : nodes) {
    auto s = node_status(*n);
    auto node_id = s["node_id"].get<std::string>();
    auto st = db.prepare("SELECT count(*), count(DISTINCT seq), coalesce(max(seq), 0) FROM ledger_events WHERE node_id = ?");
    st.bind(1, node_id);
    REQUIRE(st.step());
    CHECK(st.int64(0) == s["last_seq"].get<std::int64_t>());
    CHECK(st.int64(1) == st.int64(0));
    CHECK(st.int64(2) == st.int64(0));
    total += st.int64(0);
    randomized_total += randomized[n->data().string()];
  }
  CHECK(scalar(db, "SELECT count(*) FROM ledger_events") == total);
  CHECK(scalar(db, "SELECT count(DISTINCT leaf_index) FROM ledger_events") == total);
  CHECK(scalar(db, "SELECT tree_size FROM ledger_frontier") == total);
  auto verify = hub.cli({"verify"});
  CHECK_MESSAGE(verify.exit_code == 0, (verify.out + verify.err));

  // Nothing granted twice: every slot, participant number and kit in at most
  // one directive of one node, and each randomization recorded once.
  CHECK(randomized_total > 0);
  CHECK(scalar(db, "SELECT count(*) FROM hub_allocations") == randomized_total);
  std::map<std::string, std::string> granted;  // "slot v/s/n", "number p-n", "kit n" -> node
  std::vector<std::string> twice;
  auto grant = [&](const std::string& what, const std::string& node) {
    if (!granted.emplace(what, node).second) twice.push_back(what + " to " + granted[what] + " and " + node);
  };
  auto st = db.prepare("SELECT node_id, type, record FROM hub_directives ORDER BY node_id, seq");
  int grants = 0;
  while (st.step()) {
    auto node = st.text(0), type = st.text(1);
    auto d = sync::parse_directive(st.blob(2));
    REQUIRE(d.ok());
    std::string payload(d->body.payload.begin(), d->body.payload.end());
    // Slot and kit numbers travel in clear; arms and kit types are sealed to the node.
    if (type == shared::kGrantSlotsDirective) {
      auto g = nlohmann::json::parse(payload);
      for (const auto& s : g["grants"])
        for (const auto& slot : s["slots"])
          grant("slot " + std::to_string(g["study_version"].get<int>()) + "/" +
                    std::to_string(s["stratum"].get<int>()) + "/" + std::to_string(slot["slot"].get<int>()),
                node);
      ++grants;
    } else if (type == shared::kGrantNumbersDirective) {
      auto g = shared::parse_number_range(payload);
      REQUIRE(g.ok());
      for (auto n = g->first; n <= g->last; ++n) grant("number " + g->prefix + "-" + std::to_string(n), node);
      ++grants;
    } else if (type == shared::kShipmentDirective) {
      for (const auto& k : nlohmann::json::parse(payload)["kits"]) grant("kit " + k["kit_number"].get<std::string>(), node);
      ++grants;
    }
  }
  CHECK(grants >= 3 * static_cast<int>(nodes.size()));
  for (const auto& t : twice) FAIL_CHECK("granted twice: " << t);
  CHECK(scalar(db, "SELECT count(*) FROM ledger_alerts") == 0);

  // Neither process failed a request: concurrency is the database's to settle.
  for (const auto& log : {hub.log_file(), peer.log_file()}) {
    auto text = test::read_file(log);
    CHECK_MESSAGE(text.find(" failed: ") == std::string::npos, (log.string() + ":\n" + text));
  }
}
