// A site user working at an offline node, in the test's own process: the
// node's state opened from its data directory (test::NodeDir, which must not
// be running) and the user logged in, for tests that drive site flows without
// the node's HTTP API.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "node/node_state.h"
#include "node/site_operations.h"
#include "tests/support/cluster.h"

namespace irt::test {

struct SiteSession {
  std::unique_ptr<node::NodeState> state;
  std::unique_ptr<node::SiteOperations> ops;
  node::PasswordCheck password;
  node::Actor actor;

  SiteSession(NodeDir& n, const std::string& user, const std::string& pw) {
    auto opened = node::NodeState::open(n.data(), kNodePassphrase);
    REQUIRE_MESSAGE(opened.ok(), opened.error().message);
    state = std::move(opened.value());
    ops = std::make_unique<node::SiteOperations>(*state);
    password = node::check_password(node::find_user(state->log(), user), user, pw);
    auto a = ops->login(password);
    REQUIRE_MESSAGE(a.ok(), a.error().message);
    actor = *a;
  }

  // Receives every kit of every shipment still expected, all in good condition.
  void receive_all() {
    for (const auto& [id, shipment] : state->domain().shipments()) {
      std::vector<node::KitReceipt> receipt;
      for (const auto& [number, kit] : state->domain().kits())
        if (kit.shipment == id && kit.status == shared::KitStatus::expected) receipt.push_back({number, "received"});
      if (!receipt.empty()) REQUIRE(ops->receive_shipment(actor, id, receipt, {}).ok());
    }
  }

  // Screens one eligible participant with these factor levels; the number.
  std::string screen(const std::map<std::string, std::string>& factors) {
    node::ScreenRequest req;
    req.factors = factors;
    req.eligibility.assign(state->domain().study()->eligibility.size(), "yes");
    auto screened = ops->screen(actor, req);
    REQUIRE_MESSAGE(screened.ok(), screened.error().message);
    return screened->participant.number;
  }
};

}  // namespace irt::test
