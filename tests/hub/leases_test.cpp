// Tests for hub/leases.h: the lease every node gets at enrollment, its
// renewal at a pull, and `lease shorten` bounding every lease.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "crypto/password.h"
#include "hub/audit.h"
#include "hub/grants.h"
#include "hub/leases.h"
#include "hub/tuning.h"
#include "hub/users.h"
#include "shared/directive_payloads.h"
#include "tests/hub/hub_fixture.h"
#include "tests/hub/test_node.h"

using namespace irt;
using nlohmann::json;
using test::HubFixture;
using test::kHour;
using test::kHubNow;

namespace {

const hub::Signature kLeaseManager{"sm", "manager password 1"};
const hub::Signature kLeaseAdmin{"ada", "admin password 1"};
constexpr std::int64_t kOfflineDays = 14;  // the example study's supply.offline_days

struct LeasesHub : HubFixture {
  LeasesHub() {
    REQUIRE(hub::add_user(*hub, {"sm", "study-manager", {}, kLeaseManager.password}, crypto::kTest, "root", kHubNow).ok());
    REQUIRE(hub::add_user(*hub, {"ada", "admin", {}, kLeaseAdmin.password}, crypto::kTest, "root", kHubNow).ok());
  }
  std::vector<shared::RandomizationLease> leases(const std::string& node) {
    std::vector<shared::RandomizationLease> out;
    for (const auto& j : test::directives(*this, node, shared::kGrantLeaseDirective)) {
      auto l = shared::parse_lease(j.dump());
      REQUIRE_MESSAGE(l.ok(), l.error().message);
      out.push_back(*l);
    }
    return out;
  }
  hub::GrantsIssued pull(const std::string& node, std::int64_t now) {
    storage::Transaction tx(hub->db());
    auto r = hub::top_up_grants(*hub, node, now);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    tx.commit();
    return *r;
  }
};

}  // namespace

TEST_CASE("a node's first lease, granted at enrollment, ends offline_days later") {
  LeasesHub f;
  CHECK(f.hub->study().supply.offline_days == kOfflineDays);
  auto node = test::enroll(f, "101");
  auto leases = f.leases(node.id);
  REQUIRE(leases.size() == 1);
  CHECK(leases[0].lease_id == 1);
  CHECK(leases[0].until_ms == kHubNow + kOfflineDays * hub::kMillisPerDay);
  CHECK(hub::current_lease(f.hub->db(), node.id)->until_ms == leases[0].until_ms);
}

TEST_CASE("a pull renews the lease from the pull's time once it moves by the renewal step, never later") {
  LeasesHub f;
  auto node = test::enroll(f, "101");
  // A node syncing every few minutes is not sent a lease every time.
  CHECK(f.pull(node.id, kHubNow + 10 * 60 * 1000).leases == 0);
  CHECK(f.pull(node.id, kHubNow + hub::kLeaseRenewStepMs - 1).leases == 0);
  CHECK(f.leases(node.id).size() == 1);
  CHECK(f.pull(node.id, kHubNow + hub::kLeaseRenewStepMs).leases == 1);
  auto leases = f.leases(node.id);
  REQUIRE(leases.size() == 2);
  CHECK(leases[1].lease_id == 2);
  CHECK(leases[1].until_ms == kHubNow + hub::kLeaseRenewStepMs + kOfflineDays * hub::kMillisPerDay);
  // Three days later: offline_days after that pull.
  const auto later = kHubNow + 3 * hub::kMillisPerDay;
  CHECK(f.pull(node.id, later).leases == 1);
  CHECK(f.leases(node.id).back().until_ms == later + kOfflineDays * hub::kMillisPerDay);
  // Audited, with the old and the new end.
  int audited = 0;
  for (const auto& e : hub::audit_entries(f.hub->db(), {.subject = node.id}))
    if (e.action == "grant.lease") {
      ++audited;
      CHECK(e.new_value.find("randomization until ") == 0);
    }
  CHECK(audited == 3);
}

TEST_CASE("shortening the leases gives every node holding a longer one a shorter lease at once, signed and audited") {
  LeasesHub f;
  auto a = test::enroll(f, "101");
  auto b = test::enroll(f, "102");
  const auto now = kHubNow + kHour;
  const auto until = kHubNow + 2 * hub::kMillisPerDay;
  auto r = hub::shorten_leases(*f.hub, until, "arm B closed for harm", kLeaseManager, now);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(r->nodes == std::vector<std::string>{a.id, b.id});
  for (const auto& n : {a.id, b.id}) {
    auto leases = f.leases(n);
    REQUIRE(leases.size() == 2);
    CHECK(leases[1].until_ms == until);
    CHECK(leases[1].reason == "shortened: arm B closed for harm");
  }
  bool audited = false;
  for (const auto& e : hub::audit_entries(f.hub->db()))
    if (e.action == "lease.shortened") {
      audited = true;
      CHECK(e.actor == "sm");
      CHECK(e.signature == "approved");
      CHECK(e.reason == "arm B closed for harm");
      CHECK(e.new_value.find(shared::utc_text(until)) != std::string::npos);
    }
  CHECK(audited);
  // Until the bound, a pull grants nothing longer, and a node enrolled meanwhile gets a lease ending at it.
  CHECK(f.pull(a.id, now + hub::kMillisPerDay).leases == 0);
  CHECK(f.leases(a.id).back().until_ms == until);
  auto c = test::enroll(f, "101");
  CHECK(f.leases(c.id).back().until_ms == until);
  // A second, later bound shortens nobody; an earlier one shortens everyone again.
  auto later = hub::shorten_leases(*f.hub, until + hub::kMillisPerDay, "review", kLeaseManager, now);
  REQUIRE(later.ok());
  CHECK(later->nodes.empty());
  CHECK(hub::lease_bound(f.hub->db(), now) == until);
  // Once the bound has passed, the next pull renews as usual.
  const auto after = until + hub::kMillisPerDay + 1;
  CHECK(f.pull(a.id, after).leases == 1);
  CHECK(f.leases(a.id).back().until_ms == after + kOfflineDays * hub::kMillisPerDay);
}

TEST_CASE("a lease shortening needs a reason, a time to come and a signer holding manage_study") {
  LeasesHub f;
  auto a = test::enroll(f, "101");
  const auto now = kHubNow + kHour;
  auto no_reason = hub::shorten_leases(*f.hub, now + kHour, "", kLeaseManager, now);
  CHECK(no_reason.error().code == shared::Errc::invalid_input);
  auto past = hub::shorten_leases(*f.hub, now, "harm", kLeaseManager, now);
  CHECK(past.error().code == shared::Errc::invalid_input);
  CHECK(past.error().message.find("is not after now") != std::string::npos);
  auto admin = hub::shorten_leases(*f.hub, now + kHour, "harm", kLeaseAdmin, now);
  CHECK(admin.error().code == shared::Errc::forbidden);
  auto wrong = hub::shorten_leases(*f.hub, now + kHour, "harm", {"sm", "not the password"}, now);
  CHECK_FALSE(wrong.ok());
  CHECK(f.leases(a.id).size() == 1);
  CHECK_FALSE(hub::lease_bound(f.hub->db(), now).has_value());
}

TEST_CASE("a shortening gives a revoked node no lease") {
  LeasesHub f;
  auto a = test::enroll(f, "101");
  auto b = test::enroll(f, "102");
  REQUIRE(f.hub->ledger().revoke(a.id, "lost", "ada", kHubNow, [&] { hub::void_node_grants(*f.hub, a.id, "ada", kHubNow); }).ok());
  auto r = hub::shorten_leases(*f.hub, kHubNow + hub::kMillisPerDay, "harm", kLeaseManager, kHubNow + 1);
  REQUIRE(r.ok());
  CHECK(r->nodes == std::vector<std::string>{b.id});
  CHECK(f.leases(a.id).size() == 1);
}
