// Crash loop: seeded kill -9 of node and hub processes while site staff
// screen, randomize, dispense and receive through the nodes' API and the nodes
// sync in the background (a real irt-hub and two real `irt-node serve`, on
// loopback). Each request carries an Idempotency-Key; a request whose answer
// was lost in a kill is sent again, with the same key, once the process is
// back, as a tablet would. At the end, after a final sync:
//   - every acknowledged action is there, once: the participants each node
//     holds are exactly the ones screened, randomized exactly as answered, with
//     the kits answered;
//   - no participant number, randomization number or kit is used twice, at the
//     nodes or at the hub;
//   - the hub holds every node's whole log, and its allocations and dispensed
//     kits are the nodes' (counts reconcile);
//   - each node's chain and the hub's ledger verify.
//
// IRT_CRASH_ROUNDS (default 12) kills one process a round; the full run is
// 200 (tests/README.md). IRT_CRASH_SEED picks the schedule (which process, how
// long into the round, which actions); a failing run prints its seed, and the
// same seed replays the same schedule.
#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "tests/support/served_node.h"

using namespace irt;
using nlohmann::json;

namespace {

const std::vector<std::string> kSites = {"101", "102"};
const std::string kPassword = test::kServedNodePassword;
// Resupply on a short schedule, so that shipments are planned while nodes push.
const std::vector<std::string> kHubOptions = {"--resupply-every", "2"};

// What the nodes answered: the test's record of every acknowledged action.
struct History {
  std::map<std::string, std::set<std::string>> screened;   // site -> participant numbers
  std::map<std::string, std::string> randomized;           // participant -> randomization number
  std::map<std::string, std::string> kit_holder;           // kit -> participant it was handed to
  std::size_t kits_received = 0;
  std::size_t refusals = 0;  // 4xx answers (no slot or no kit left, a visit already dispensed): nothing changed

  void hand_out(const json& kits, const std::string& participant) {
    for (const auto& k : kits) {
      auto kit = k.value("kit", "");
      INFO("kit ", kit, " handed to ", participant);
      CHECK(kit_holder.emplace(kit, participant).second);  // never the same kit twice
    }
  }
};

class CrashLoop {
 public:
  explicit CrashLoop(std::uint64_t seed) : rng_(seed) {
    for (const auto& site : kSites) hub_.add_user("coordinator." + site, "coordinator", site, kPassword);
    hub_.stop();
    hub_.start(kHubOptions);
    for (const auto& site : kSites) nodes_.push_back(std::make_unique<test::ServedNode>(hub_, site));
  }

  // One round: a burst of site actions while one process is killed at a
  // random moment; then the process is restarted and every action whose
  // answer was lost is sent again under its key.
  void round() {
    const auto victim = pick(nodes_.size() + 1);  // a node, or the hub
    const auto delay = std::chrono::milliseconds(pick(600));
    std::thread killer([&] {
      std::this_thread::sleep_for(delay);
      if (victim < nodes_.size()) nodes_[victim]->kill_hard();
      else hub_.kill_hard();
    });
    std::vector<Pending> lost;
    for (int i = 0, n = 4 + static_cast<int>(pick(4)); i < n; ++i) {
      auto action = next_action(*nodes_[pick(nodes_.size())]);
      if (!action) continue;
      if (!settle(*action)) lost.push_back(*action);
    }
    killer.join();
    if (victim < nodes_.size()) nodes_[victim]->start();
    else hub_.start(kHubOptions);
    for (auto& p : lost) REQUIRE_MESSAGE(settle(p), "no answer after the restart to ", p.path);
  }

  void check() {
    for (auto& n : nodes_) REQUIRE_MESSAGE(n->wait_synced(), "node ", n->site(), " did not converge");
    std::set<std::string> numbers;
    std::size_t randomized_at_nodes = 0;
    for (auto& n : nodes_) {
      auto list = n->call("GET", "/api/v1/participants");
      REQUIRE(list.status == 200);
      std::set<std::string> held;
      for (const auto& p : list.body["participants"]) {
        auto number = p.value("participant", "");
        held.insert(number);
        auto rn = p.value("randomization_number", "");
        auto acked = history_.randomized.find(number);
        INFO("participant ", number, " at node ", n->site());
        if (acked != history_.randomized.end()) CHECK(rn == acked->second);
        else CHECK(rn.empty());  // every randomization attempted was settled: none unanswered
        if (!rn.empty()) {
          ++randomized_at_nodes;
          CHECK(numbers.insert(rn).second);  // randomization numbers unique across nodes
        }
      }
      CHECK(held == history_.screened[n->site()]);  // nothing lost, nothing twice
      auto dispensed = n->call("GET", "/api/v1/inventory?status=dispensed");
      REQUIRE(dispensed.status == 200);
      for (const auto& k : dispensed.body["kits"]) {
        auto kit = k.value("kit", "");
        INFO("kit ", kit, " at node ", n->site());
        REQUIRE(history_.kit_holder.count(kit) == 1);
        CHECK(k.value("participant", "") == history_.kit_holder[kit]);
      }
    }
    CHECK(randomized_at_nodes == history_.randomized.size());
    std::size_t dispensed_at_nodes = 0;
    for (auto& n : nodes_) {
      auto d = n->call("GET", "/api/v1/inventory?status=dispensed");
      dispensed_at_nodes += d.body["kits"].size();
    }
    CHECK(dispensed_at_nodes == history_.kit_holder.size());

    // The hub: every allocation and every dispensed kit, once.
    CHECK(test::hub_count(hub_, "SELECT count(*) FROM hub_allocations") ==
          static_cast<std::int64_t>(history_.randomized.size()));
    CHECK(test::hub_count(hub_, "SELECT count(DISTINCT randomization_number) FROM hub_allocations") ==
          static_cast<std::int64_t>(history_.randomized.size()));
    CHECK(test::hub_count(hub_, "SELECT count(*) FROM hub_kits WHERE status = 'dispensed'") ==
          static_cast<std::int64_t>(history_.kit_holder.size()));

    for (auto& n : nodes_) n->stop();
    for (auto& n : nodes_) {
      auto v = n->dir().verify();
      CHECK_MESSAGE(v.exit_code == 0, n->site(), ": ", v.out, v.err);
    }
    hub_.stop();
    auto v = hub_.cli({"verify"});
    CHECK_MESSAGE(v.exit_code == 0, v.out, v.err);
    MESSAGE("crash loop: ", history_.randomized.size(), " randomized, ", history_.kit_holder.size(),
            " kits dispensed, ", history_.kits_received, " received, ", history_.refusals, " refusals, ", kills_,
            " kills");
  }

  std::size_t kills_ = 0;

 private:
  struct Pending {
    test::ServedNode* node = nullptr;
    std::string kind;  // screen, randomize, dispense, receive
    std::string path;
    json body;
    std::string key;
    std::string participant;
  };

  std::size_t pick(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }

  // The next thing a coordinator would do at `n`: receive a shipment that has
  // arrived, randomize a screened participant, dispense a next visit, or screen.
  std::optional<Pending> next_action(test::ServedNode& n) {
    Pending p{&n, "", "", nullptr, "k" + std::to_string(++keys_), ""};
    auto roll = pick(4);
    if (roll == 0) {
      auto shipments = n.call("GET", "/api/v1/shipments");
      if (shipments.status != 200) return std::nullopt;  // the node is down: try something else
      for (const auto& s : shipments.body["shipments"]) {
        if (s.value("received", true) || s.value("kind", "") == "return") continue;
        json kits = json::array();
        for (const auto& k : s["kits"])
          if (k.value("status", "") == "expected") kits.push_back({{"kit", k["kit"]}});
        p.kind = "receive";
        p.path = "/api/v1/shipments/" + s.value("shipment", "") + "/receive";
        p.body = {{"kits", kits}};
        return p;
      }
    }
    const auto& site = n.site();
    if (roll == 1) {
      for (const auto& number : history_.screened[site])
        if (!history_.randomized.count(number) && !refused_.count(number)) {
          p.kind = "randomize";
          p.participant = number;
          p.path = "/api/v1/participants/" + number + "/randomize";
          p.body = {{"signature_password", kPassword}};
          return p;
        }
    }
    if (roll == 2) {
      for (const auto& [number, rn] : history_.randomized)
        if (number.rfind(site + "-", 0) == 0 && !dispensed_v2_.count(number)) {
          p.kind = "dispense";
          p.participant = number;
          p.path = "/api/v1/participants/" + number + "/dispense";
          p.body = {{"visit", "V2"}, {"override_reason", "seen early"}, {"signature_password", kPassword}};
          return p;
        }
    }
    p.kind = "screen";
    p.path = "/api/v1/participants";
    p.body = {{"factors", {{"diabetes", pick(2) ? "yes" : "no"}}},
              {"eligibility", std::vector<std::string>(5, "yes")}};
    return p;
  }

  // Sends `p` (again); false when no answer came (the node is down). An
  // answer is recorded in the history.
  bool settle(const Pending& p) {
    auto r = p.node->call("POST", p.path, p.body, p.key);
    if (r.status == 0) return false;
    INFO(p.kind, " ", p.path, " -> ", r.status, " ", r.body.dump());
    if (r.status >= 400) {
      REQUIRE(r.status < 500);
      ++history_.refusals;
      if (p.kind == "randomize") refused_.insert(p.participant);  // no slot or kit: left screened
      if (p.kind == "dispense") dispensed_v2_.insert(p.participant);
      return true;
    }
    REQUIRE(r.status == 200);
    if (p.kind == "screen") {
      CHECK(history_.screened[p.node->site()].insert(r.body["participant"].value("participant", "")).second);
    } else if (p.kind == "randomize") {
      history_.randomized[p.participant] = r.body.value("randomization_number", "");
      history_.hand_out(r.body["kits"], p.participant);
    } else if (p.kind == "dispense") {
      dispensed_v2_.insert(p.participant);
      history_.hand_out(r.body["kits"], p.participant);
    } else {
      history_.kits_received += p.body["kits"].size();
    }
    return true;
  }

  std::mt19937_64 rng_;
  test::HubProcess hub_;
  std::vector<std::unique_ptr<test::ServedNode>> nodes_;
  History history_;
  std::set<std::string> refused_;
  std::set<std::string> dispensed_v2_;
  std::uint64_t keys_ = 0;
};

}  // namespace

TEST_CASE("crash loop: node and hub killed at random during site work lose and duplicate nothing") {
  const auto seed = test::env_number("IRT_CRASH_SEED", static_cast<std::uint64_t>(std::random_device{}()));
  const auto rounds = test::env_number("IRT_CRASH_ROUNDS", 12);
  INFO("replay with IRT_CRASH_SEED=", seed, " IRT_CRASH_ROUNDS=", rounds);
  MESSAGE("crash loop seed ", seed, ", ", rounds, " rounds");
  CrashLoop loop(seed);
  for (std::uint64_t r = 0; r < rounds; ++r) {
    loop.round();
    ++loop.kills_;
  }
  loop.check();
}
