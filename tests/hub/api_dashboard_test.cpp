// The dashboard's reads of the hub API (hub/api_dashboard.cpp) and the web UI
// that shows them (hub/web_ui.h), over real HTTP on loopback: enrollment per
// day, site, country and stratum against the forecast; the allocation
// balance for unblinded readers only; inventory by custodian, status and
// expiry month with the kits at risk; the nodes' sync state; and the page's
// files with their security headers.
#include <doctest/doctest.h>

#include <numeric>

#include "hub/kit_inventory.h"
#include "hub/node_overview.h"
#include "hub/users.h"
#include "hub/web_ui.h"
#include "shared/directive_payloads.h"
#include "sync/hlc.h"
#include "tests/hub/hub_fixture.h"
#include "tests/hub/test_node.h"
#include "tests/support/hub_api.h"

using namespace irt;
using nlohmann::json;
using test::HubApiServer;
using test::HubFixture;
using test::hub_call;
using test::hub_login;
using test::kHubNow;
using test::TestNode;

namespace {

// Screens and randomizes `n` participants at the node's site from its first slot grant; returns their arms.
std::vector<std::string> randomize_seeded(HubFixture& f, TestNode& node, const std::string& site, const std::string& diabetes,
                                   std::size_t n, int& numbered) {
  const shared::SlotGrant* grant = nullptr;
  std::vector<shared::SlotGrant> grants;
  for (const auto& d : test::directives(f, node.id, shared::kGrantSlotsDirective)) {
    auto g = shared::parse_grant_slots(d.dump());
    REQUIRE(g.ok());
    for (auto& one : g->grants) grants.push_back(one);
  }
  std::string label = "site=" + site + ";diabetes=" + diabetes;
  for (const auto& g : grants)
    if (g.stratum_label == label) grant = &g;
  REQUIRE_MESSAGE(grant, "no grant for " << label);
  REQUIRE(grant->slots.size() >= n);
  std::vector<std::string> arms;
  for (std::size_t i = 0; i < n; ++i) {
    char number[32];
    std::snprintf(number, sizeof number, "%s-%03d", site.c_str(), ++numbered);
    // As a node records them: the derived site and country with the study's factors.
    node.push(f, shared::kScreenedEvent,
              test::screened(number, {{"site", site}, {"country", "FR"}, {"diabetes", diabetes}}));
    node.push(f, shared::kRandomizedEvent,
              test::from_slot(number, *grant, i, {}, test::seal(f, shared::RandomizedSealed{grant->slots[i].arm, {}, {}})));
    arms.push_back(grant->slots[i].arm);
  }
  test::consume(f, node.id);
  return arms;
}

// The last value of a series before its forecast part (nulls).
json last_actual(const json& series) {
  json last;
  for (const auto& v : series)
    if (!v.is_null()) last = v;
  return last;
}

bool names_an_arm(const std::string& text, const shared::Study& study) {
  for (const auto& a : study.arms)
    if (text.find(a.name) != std::string::npos || text.find("\"" + a.id + "\"") != std::string::npos) return true;
  for (const auto& k : study.kit_types)
    if (text.find(k.name) != std::string::npos || text.find("\"" + k.id + "\"") != std::string::npos) return true;
  return text.find("\"arm") != std::string::npos || text.find("kit_type") != std::string::npos;
}

struct Seeded {
  HubFixture f;
  TestNode a, b;
  std::vector<std::string> arms;  // of every participant, in number order
  Seeded() {
    a = test::enroll(f, "101");
    b = test::enroll(f, "102");
    int numbered = 0;
    for (auto& arm : randomize_seeded(f, a, "101", "yes", 3, numbered)) arms.push_back(arm);
    int numbered_b = 0;
    for (auto& arm : randomize_seeded(f, b, "102", "no", 2, numbered_b)) arms.push_back(arm);
    f.add_user("ines.manager", "study-manager");
    f.add_user("uma.statistician", "unblinded-statistician");
    f.add_user("sol.supply", "supply-manager");
  }
};

}  // namespace

TEST_CASE("enrollment: cumulative randomizations per day by site, country and stratum, then the forecast, and no arm") {
  Seeded s;
  HubApiServer api(*s.f.hub);
  auto r = hub_call(api.port(), "GET", "/api/v1/dashboard/enrollment",
                    hub_login(api.port(), "ines.manager", test::kUserPassword));
  REQUIRE_MESSAGE(r.status == 200, r.text);
  const auto& d = r.body;
  CHECK(d["randomized"] == 5);
  // One date a day from the day before the randomizations' day (the events' device
  // time; nobody randomized yet) to today, then 12 weeks.
  CHECK(d["dates"][0] == shared::format_date(shared::day_of_millis(kHubNow) - 1));
  const auto today = shared::day_of_millis(sync::system_millis());
  const auto days = static_cast<std::size_t>(today - shared::day_of_millis(kHubNow) + 2);
  REQUIRE(d["dates"].size() == days + 12);
  CHECK(d["dates"][days - 1] == shared::format_date(today));
  CHECK(d["dates"][days] == shared::format_date(today + 7));
  CHECK(d["actual"]["overall"][0] == 0);
  CHECK(d["actual"]["overall"][1] == 5);
  CHECK(last_actual(d["actual"]["overall"]) == 5);
  CHECK(d["actual"]["overall"][days].is_null());
  CHECK(last_actual(d["actual"]["site"]["101"]) == 3);
  CHECK(last_actual(d["actual"]["site"]["102"]) == 2);
  CHECK(last_actual(d["actual"]["site"]["201"]) == 0);  // a site of the study without participants yet
  CHECK(last_actual(d["actual"]["country"]["FR"]) == 5);
  CHECK(last_actual(d["actual"]["country"]["BE"]) == 0);
  // The study's strata (site x diabetes), every one of them, randomized or not.
  CHECK(last_actual(d["actual"]["stratum"]["site=101;diabetes=yes"]) == 3);
  CHECK(last_actual(d["actual"]["stratum"]["site=102;diabetes=no"]) == 2);
  // The forecast starts from today's count and grows at the sites' estimated rates.
  CHECK(d["forecast"][days - 2].is_null());
  CHECK(d["forecast"][days - 1] == 5);
  CHECK(d["forecast"][days + 11].get<double>() > d["forecast"][days].get<double>());
  CHECK(d["forecast"][days].get<double>() > 5);
  REQUIRE(d["data_as_of"].size() == 2);
  CHECK(d["data_as_of"][0]["node_id"] == s.a.id);
  CHECK_FALSE(names_an_arm(r.text, s.f.hub->study()));

  auto bad = hub_call(api.port(), "GET", "/api/v1/dashboard/enrollment?weeks=0",
                      hub_login(api.port(), "ines.manager", test::kUserPassword));
  CHECK(bad.status == 400);
  CHECK(bad.body["error"]["message"].get<std::string>().find("weeks must be") != std::string::npos);
}

TEST_CASE("allocation balance: per arm overall, by stratum and by site for an unblinded reader, refused to a blinded one") {
  Seeded s;
  HubApiServer api(*s.f.hub);
  auto blinded = hub_call(api.port(), "GET", "/api/v1/dashboard/allocation",
                          hub_login(api.port(), "ines.manager", test::kUserPassword));
  CHECK(blinded.status == 403);
  CHECK_FALSE(names_an_arm(blinded.text, s.f.hub->study()));

  auto r = hub_call(api.port(), "GET", "/api/v1/dashboard/allocation",
                    hub_login(api.port(), "uma.statistician", test::kUserPassword));
  REQUIRE_MESSAGE(r.status == 200, r.text);
  const auto& d = r.body;
  REQUIRE(d["arms"].size() == 2);
  CHECK(d["arms"][0]["name"] == "Velcardin 25 mg once daily");
  std::map<std::string, int> expected;
  for (const auto& arm : s.arms) ++expected[arm];
  for (const auto& arm : {"A", "B"}) CHECK(d["overall"][arm] == expected[arm]);
  int strata_total = 0;
  for (const auto& st : d["strata"])
    for (const auto& [arm, n] : st["counts"].items()) strata_total += n.get<int>();
  CHECK(strata_total == 5);
  REQUIRE(d["strata"].size() == 2);
  CHECK(d["strata"][0]["stratum"] == "site=101;diabetes=yes");
  CHECK(d["strata"][0]["counts"]["A"].get<int>() + d["strata"][0]["counts"]["B"].get<int>() == 3);
  REQUIRE(d["sites"].size() == 2);
  CHECK(d["sites"][0]["site"] == "101");
  CHECK(d["sites"][0]["counts"]["A"].get<int>() + d["sites"][0]["counts"]["B"].get<int>() == 3);
}

TEST_CASE("inventory: every kit counted once by custodian and status, stock by expiry month, kits at risk, and no kit type") {
  Seeded s;
  HubApiServer api(*s.f.hub);
  for (const std::string user : {"ines.manager", "sol.supply"}) {
    CAPTURE(user);
    auto r = hub_call(api.port(), "GET", "/api/v1/dashboard/inventory", hub_login(api.port(), user, test::kUserPassword));
    REQUIRE_MESSAGE(r.status == 200, r.text);
    const auto& d = r.body;
    CHECK_FALSE(names_an_arm(r.text, s.f.hub->study()));
    auto kits = hub::all_kits(s.f.hub->db());
    std::size_t counted = 0, in_stock = 0, shipped_101 = 0;
    for (const auto& k : kits)
      if (k.custody_kind == "node" && k.custody_id == s.a.id && k.status == shared::KitStatus::shipped) ++shipped_101;
    REQUIRE(d["custodians"].size() == 4);  // the depot, then the three sites
    CHECK(d["custodians"][0]["kind"] == "depot");
    CHECK(d["custodians"][0]["id"] == "EU-01");
    CHECK(d["custodians"][1]["id"] == "101");
    CHECK(d["custodians"][1]["by_status"]["shipped"] == shipped_101);
    CHECK(shipped_101 > 0);
    CHECK(d["custodians"][3]["in_stock"] == 0);  // site 201 has no node
    for (const auto& c : d["custodians"]) {
      for (const auto& [status, n] : c["by_status"].items()) counted += n.get<std::size_t>();
      in_stock += c["in_stock"].get<std::size_t>();
    }
    CHECK(counted == kits.size());
    std::size_t by_month = 0;
    for (const auto& m : d["expiry_months"])
      for (const auto& [status, n] : m["by_status"].items()) by_month += n.get<std::size_t>();
    CHECK(by_month == in_stock);
    CHECK(d["expiry_months"][0]["month"].get<std::string>().size() == 7);
    CHECK(d["at_risk"].is_number());
  }
}

TEST_CASE("nodes: seconds since contact, directives not pulled, and silent longer than the study's offline period marked") {
  Seeded s;
  HubApiServer api(*s.f.hub);
  // Node b was heard from just now; node a only at its enrollment, long before today.
  {
    storage::Transaction tx(s.f.hub->db());
    hub::record_push_contact(s.f.hub->db(), s.b.id, 4, sync::system_millis());
    tx.commit();
  }
  auto r = hub_call(api.port(), "GET", "/api/v1/nodes", hub_login(api.port(), "ines.manager", test::kUserPassword));
  REQUIRE_MESSAGE(r.status == 200, r.text);
  CHECK(r.body["offline_days"] == 14);
  REQUIRE(r.body["nodes"].size() == 2);
  const auto& a = r.body["nodes"][0];
  const auto& b = r.body["nodes"][1];
  CHECK(a["node_id"] == s.a.id);
  CHECK(a["sync_overdue"] == true);
  CHECK(a["since_contact_s"].is_null());
  CHECK(a["directives_pending"].get<int>() > 0);  // its grants and shipment, never pulled
  CHECK(b["sync_overdue"] == false);
  CHECK(b["since_contact_s"].get<std::int64_t>() < 60);
}

TEST_CASE("the dashboard is served at / with its files, no inline script allowed, no framing, nosniff, no referrer") {
  HubFixture f;
  HubApiServer api(*f.hub);
  auto page = hub_call(api.port(), "GET", "/");
  REQUIRE(page.status == 200);
  CHECK(page.headers.find("Content-Type")->second == "text/html; charset=utf-8");
  CHECK(page.text.find("<script src=\"/web/app.js\"") != std::string::npos);
  CHECK(page.text.find("<script>") == std::string::npos);
  CHECK(page.text.find("style=") == std::string::npos);
  for (const std::string file : {"/", "/web/app.js", "/web/app.css", "/web/chart.min.js"}) {
    CAPTURE(file);
    auto r = hub_call(api.port(), "GET", file);
    REQUIRE(r.status == 200);
    auto csp = r.headers.find("Content-Security-Policy")->second;
    CHECK(csp == hub::kWebContentSecurityPolicy);
    CHECK(csp.find("unsafe-inline") == std::string::npos);
    CHECK(csp.find("unsafe-eval") == std::string::npos);
    CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
    CHECK(csp.find("script-src 'self'") != std::string::npos);
    CHECK(r.headers.find("X-Content-Type-Options")->second == "nosniff");
    CHECK(r.headers.find("Referrer-Policy")->second == "no-referrer");
  }
  auto chart = hub_call(api.port(), "GET", "/web/chart.min.js");
  CHECK(chart.text.find("Chart.js v3") != std::string::npos);
  CHECK(chart.headers.find("Content-Type")->second == "text/javascript; charset=utf-8");
  CHECK(hub_call(api.port(), "GET", "/web/no-such-file.js").status == 404);
  CHECK(hub_call(api.port(), "GET", "/web/index.html").status == 404);
  // API answers are never cached.
  auto index = hub_call(api.port(), "GET", "/api/v1");
  CHECK(index.status == 200);
  CHECK(index.headers.find("Cache-Control")->second == "no-store");
  CHECK(index.body["dashboard"] == "/");
}
