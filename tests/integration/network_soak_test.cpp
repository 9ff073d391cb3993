// Network soak: five real `irt-node serve` (two sites with two nodes, one
// with one), each behind its own fault proxy that drops, duplicates, delays,
// reorders and truncates requests and answers, and now and then stalls the
// link outright, while site staff work at every node through the API
// (screening participants, moving kits between fridges) and the nodes sync in
// the background. Then the links heal and:
//   - every event of every node is in the hub's ledger exactly once, and
//     each node's chain and the ledger verify;
//   - the hub holds every participant the nodes screened, once;
//   - every API call was answered while the links misbehaved: none waited on
//     the network (a call has 20 s; the slowest is printed).
//
// IRT_SOAK_EVENTS (default 1500) is how many events the staff record in all;
// the full run is 10000 (docs/testing.md). IRT_SOAK_SEED picks the faults.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "tests/support/fault_proxy.h"
#include "tests/support/served_node.h"

using namespace irt;
using nlohmann::json;

namespace {

const std::vector<std::string> kNodeSites = {"101", "101", "102", "102", "201"};

// What one node's staff did, and how long the node took to answer them.
struct Work {
  std::size_t events = 0;     // acknowledged actions, each one event
  std::size_t screened = 0;
  std::size_t unanswered = 0; // calls with no answer: must stay 0
  double slowest_ms = 0;
};

// Staff at `n`: screen until the numbers the hub granted run out (then wait for
// the next sync's top-up), and move the kits in stock between two fridges.
Work work_at(test::ServedNode& n, std::size_t events, std::uint64_t seed) {
  Work w;
  std::mt19937_64 rng(seed);
  auto kits = n.call("GET", "/api/v1/inventory?status=available");
  REQUIRE(kits.status == 200);
  json stock = json::array();
  for (const auto& k : kits.body["kits"]) stock.push_back(k["kit"]);
  REQUIRE(!stock.empty());
  int fridge = 0;
  while (w.events < events) {
    auto start = std::chrono::steady_clock::now();
    test::ServedReply r;
    bool screen = rng() % 3 == 0;
    if (screen) {
      r = n.call("POST", "/api/v1/participants",
                 {{"factors", {{"diabetes", rng() % 2 ? "yes" : "no"}}},
                  {"eligibility", std::vector<std::string>(5, "yes")}});
    } else {
      fridge = 1 - fridge;
      r = n.call("POST", "/api/v1/kits/location", {{"kits", stock}, {"location", "FRIDGE-" + std::to_string(fridge)}});
    }
    w.slowest_ms = std::max(
        w.slowest_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    if (r.status == 0) {
      ++w.unanswered;
      continue;
    }
    if (screen && r.status == 409) {  // no participant number left until the next sync brings more
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    INFO(r.status, " ", r.body.dump());
    REQUIRE(r.status == 200);
    ++w.events;
    if (screen) ++w.screened;
  }
  return w;
}

}  // namespace

TEST_CASE("network soak: five nodes through faulty links converge exactly once while their API keeps answering") {
  const auto seed = test::env_number("IRT_SOAK_SEED", static_cast<std::uint64_t>(std::random_device{}()));
  const auto events = test::env_number("IRT_SOAK_EVENTS", 1500);
  INFO("replay with IRT_SOAK_SEED=", seed, " IRT_SOAK_EVENTS=", events);
  MESSAGE("network soak seed ", seed, ", ", events, " events");

  test::HubProcess hub;
  for (const auto& site : {"101", "102", "201"})
    hub.add_user(std::string("coordinator.") + site, "coordinator", site, test::kServedNodePassword);
  std::vector<std::unique_ptr<test::FaultProxy>> proxies;
  std::vector<std::unique_ptr<test::ServedNode>> nodes;
  for (std::size_t i = 0; i < kNodeSites.size(); ++i) {
    proxies.push_back(std::make_unique<test::FaultProxy>(hub.port()));
    nodes.push_back(std::make_unique<test::ServedNode>(hub, kNodeSites[i],
                                                       "http://127.0.0.1:" + std::to_string(proxies[i]->port())));
    proxies[i]->set_random_faults(seed + i, 0.5);
  }

  // Now and then a link stalls outright for a moment, as a mobile link does.
  std::atomic<bool> working = true;
  std::thread staller([&] {
    std::mt19937_64 rng(seed);
    while (working) {
      auto& p = *proxies[rng() % proxies.size()];
      p.stall_all();
      std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 1500));
      p.release();
      p.set_random_faults(rng(), 0.5);
      std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 800));
    }
  });
  std::vector<Work> work(nodes.size());
  {
    std::vector<std::thread> staff;
    for (std::size_t i = 0; i < nodes.size(); ++i)
      staff.emplace_back([&, i] { work[i] = work_at(*nodes[i], events / nodes.size(), seed + 100 + i); });
    for (auto& t : staff) t.join();
  }
  working = false;
  staller.join();

  std::size_t faults = 0, screened = 0, recorded = 0;
  double slowest = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    CHECK(work[i].unanswered == 0);  // the API never waited on a link
    faults += proxies[i]->faults_injected();
    screened += work[i].screened;
    recorded += work[i].events;
    slowest = std::max(slowest, work[i].slowest_ms);
    proxies[i]->pass_through();
  }
  CHECK(faults > 0);

  // The links heal: every node converges, each event in the ledger once.
  for (auto& n : nodes) REQUIRE_MESSAGE(n->wait_synced(), "node of site ", n->site(), " did not converge");
  std::int64_t node_events = 0;
  for (auto& n : nodes) {
    auto s = n->call("GET", "/api/v1/status");
    REQUIRE(s.status == 200);
    auto node_id = s.body.value("node_id", "");
    auto last = s.body.value("last_seq", std::int64_t{-1});
    node_events += last;
    INFO("node ", node_id);
    test::check_ledger_holds(hub, node_id, last);
  }
  CHECK(node_events >= static_cast<std::int64_t>(recorded));
  CHECK(test::hub_count(hub, "SELECT count(*) FROM hub_participants") == static_cast<std::int64_t>(screened));

  for (auto& n : nodes) n->stop();
  for (auto& n : nodes) {
    auto v = n->dir().verify();
    CHECK_MESSAGE(v.exit_code == 0, v.out, v.err);
  }
  hub.stop();
  auto v = hub.cli({"verify"});
  CHECK_MESSAGE(v.exit_code == 0, v.out, v.err);
  MESSAGE("network soak: ", recorded, " events recorded through the API (", node_events, " in the nodes' logs), ",
          screened, " participants, ", faults, " faults injected, slowest API answer ", slowest, " ms");
}
