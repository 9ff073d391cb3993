// Tablets whose clocks are days off (docs/sync-protocol.md, "Clocks"): real
// irt-node processes run under libfaketime (Debian's faketime) three days
// ahead and three days behind a real hub. They still sync; the hub shows each
// skew; the hybrid logical clock keeps every node's events after what it saw
// from the hub; and the node's date never falls before the hub's signed time.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "shared/civil_date.h"
#include "sync/event.h"
#include "sync/hlc.h"
#include "tests/support/cluster.h"
#include "tests/support/node_api_client.h"

using namespace irt;
using nlohmann::json;

namespace {

const std::string kPassword = "clock-skew-password";
const std::string kFaketime = "/usr/bin/faketime";  // Debian's faketime (packaging/dev.sh installs it)
constexpr std::int64_t kDayMs = 24LL * 3600 * 1000;

// `irt-node ARGS` at `n` with the process's clock moved by `offset` ("+3d", "-3d").
test::CommandResult node_cli_at(const std::string& offset, test::NodeDir& n, std::vector<std::string> args,
                                const std::string& stdin_text = "") {
  std::vector<std::string> argv = {kFaketime, "-f", offset, IRT_NODE_BIN, args.at(0), "--data", n.data().string()};
  argv.insert(argv.end(), args.begin() + 1, args.end());
  return test::run(argv, stdin_text,
                   {std::string("IRT_PASSPHRASE=") + test::kNodePassphrase, "FAKETIME_DONT_FAKE_MONOTONIC=1"});
}

json json_of(const test::CommandResult& r) {
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out);
}

// The node's events in the hub's ledger, in sequence order.
std::vector<sync::SignedEvent> ledger_events(test::HubProcess& hub, const std::string& node_id) {
  auto db = hub.database();
  auto st = db.prepare("SELECT record FROM ledger_events WHERE node_id = ? ORDER BY seq");
  st.bind(1, node_id);
  std::vector<sync::SignedEvent> out;
  while (st.step()) {
    auto e = sync::parse_event(st.blob(0));
    REQUIRE(e.ok());
    out.push_back(std::move(e).value());
  }
  return out;
}

}  // namespace

TEST_CASE("nodes three days ahead and behind sync, the hub shows their skew, and the HLC and the node's date hold") {
  REQUIRE_MESSAGE(test::run({kFaketime, "-f", "+3d", "/bin/true"}).exit_code == 0,
                  "faketime is not installed: run 'packaging/dev.sh deps'");
  test::HubProcess hub;
  hub.add_user("coordinator.101", "coordinator", "101", kPassword);
  hub.add_user("coordinator.102", "coordinator", "102", kPassword);
  test::NodeDir ahead(hub, "101");
  test::NodeDir behind(hub, "102");

  for (const auto& [node, skewed, direction] : {std::tuple{&ahead, "+3d", 1}, std::tuple{&behind, "-3d", -1}}) {
    auto* n = node;  // plain copies: doctest's INFO captures in a lambda, which may not name a structured binding
    const std::string offset = skewed;
    const int sign = direction;
    const std::string user = n == &ahead ? "coordinator.101" : "coordinator.102";
    INFO("the node ", offset);
    // An event recorded by the wrong clock, then a sync: refused once for the
    // clock, timed again by the hub's, and accepted.
    auto noted = node_cli_at(offset, *n, {"note", "--user", user, "--text", "recorded with a wrong clock"},
                             kPassword + "\n");
    REQUIRE_MESSAGE(noted.exit_code == 0, noted.err);
    auto synced = node_cli_at(offset, *n, {"sync"});
    CHECK_MESSAGE(synced.exit_code == 0, synced.out, synced.err);
    auto status = json_of(node_cli_at(offset, *n, {"status"}));
    CHECK(status["pending_events"] == 0);
    // The node knows its skew, within the minute it keeps.
    CHECK(std::llabs(status["clock_skew_ms"].get<std::int64_t>() - sign * 3 * kDayMs) < 5 * 60 * 1000);

    // The hub shows the skew of the device's own clock, per node.
    auto nodes = json_of(hub.read_as_admin({"nodes", "--json", "--node", status["node_id"]}));
    auto skew = nodes.is_array() ? nodes[0]["clock_skew_ms"] : nodes["clock_skew_ms"];
    REQUIRE(skew.is_number());
    CHECK(std::llabs(skew.get<std::int64_t>() - sign * 3 * kDayMs) < 5 * 60 * 1000);

    // Ordering: each event's HLC is past the one before it and past the hub
    // time the node saw, whatever the device's clock said.
    auto events = ledger_events(hub, status["node_id"]);
    REQUIRE(events.size() >= 2);
    for (std::size_t i = 1; i < events.size(); ++i) CHECK(events[i].body.hlc > events[i - 1].body.hlc);
  }

  // The node's date: three days behind, never before the hub's signed time;
  // three days ahead, the device's (the safe side: kits expire early there).
  const auto real_today = shared::format_date(shared::day_of_millis(sync::system_millis()));
  for (const auto& [node, skewed, date] :
       {std::tuple{&behind, "-3d", real_today},
        std::tuple{&ahead, "+3d", shared::format_date(shared::day_of_millis(sync::system_millis() + 3 * kDayMs))}}) {
    auto* n = node;
    const std::string offset = skewed;
    const std::string expected = date;
    INFO("the node ", offset);
    const std::string user = n == &ahead ? "coordinator.101" : "coordinator.102";
    const int port = test::free_port();
    test::TempDir tmp;
    test::Process serve({kFaketime, "-f", offset, IRT_NODE_BIN, "serve", "--data", n->data().string(), "--listen",
                         "127.0.0.1:" + std::to_string(port), "--sync-interval", "3600"},
                        {std::string("IRT_PASSPHRASE=") + test::kNodePassphrase, "FAKETIME_DONT_FAKE_MONOTONIC=1"},
                        tmp.path() / "node.log");
    REQUIRE_MESSAGE(test::wait_for_port(port, 15000), test::read_file(tmp.path() / "node.log"));
    auto login = test::api_call(port, "POST", "/api/v1/login", "", {{"user", user}, {"password", kPassword}});
    REQUIRE(login.status == 200);
    auto inventory = test::api_call(port, "GET", "/api/v1/inventory", login.body["token"]);
    REQUIRE(inventory.status == 200);
    CHECK(inventory.body["today"] == expected);
  }

  hub.stop();
  auto verified = hub.cli({"verify"});
  CHECK_MESSAGE(verified.exit_code == 0, verified.out, verified.err);
}
