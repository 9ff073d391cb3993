// The hub's /api/v1 against real `irt-hub serve` processes over loopback HTTP:
// sessions (idle expiry, logout, a disabled user, two processes on one
// database), each role's flows, the audit trail with a real node's events,
// and the blinding crawl of every GET route of the route table.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "hub/api_server.h"
#include "node/node_state.h"
#include "node/roster.h"
#include "node/site_operations.h"
#include "shared/event_payloads.h"
#include "tests/support/cluster.h"
#include "tests/support/site_session.h"
#include "tests/support/hub_api.h"

using namespace irt;
using nlohmann::json;
using test::hub_call;
using test::hub_login;
using test::HubPeer;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kPassword = "a long enough password";
const std::string kCoordinator = "coordinator.ana";

// The example study with `change` applied, written to `dir`.
std::string study_file(const test::TempDir& dir, const std::function<void(json&)>& change) {
  auto doc = json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
  change(doc);
  auto path = dir / "study.json";
  std::ofstream(path) << doc.dump(2);
  return path.string();
}

// Moves every session's last use `ms` into the past, as if nobody had used it since.
void age_sessions(HubProcess& hub, std::int64_t ms) {
  auto db = hub.database();
  db.prepare("UPDATE hub_sessions SET last_used_ms = last_used_ms - ?").bind(1, ms).run();
}

// At the node of `dir`, as the coordinator: receive the initial shipment,
// screen and try to randomize `n` participants (each gets a kit at V1);
// returns the numbers of those randomized. One refused for want of kits
// records a supply shortage, which the hub's alert names by kit type.
std::vector<std::string> randomize_at(NodeDir& dir, int n) {
  test::SiteSession site(dir, kCoordinator, kPassword);
  site.receive_all();
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    auto number = site.screen({{"diabetes", i % 2 ? "yes" : "no"}});
    auto done = site.ops->randomize(site.actor, number, site.password);
    if (!done) {
      CHECK_MESSAGE(done.error().code == shared::Errc::exhausted, done.error().message);
      continue;
    }
    out.push_back(number);
  }
  return out;
}

// True when `j` holds, as a key or in a string, what names an arm or a kit
// type of the example study: the keys arm(s) and kit_type(s), an arm id as a
// whole value, an arm name, a kit type's id or name as a word.
bool reveals_allocation(const json& j, const shared::Study& study) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items())
      if (k == "arm" || k == "arms" || k == "kit_type" || k == "kit_types" || k == "allocation" ||
          reveals_allocation(v, study))
        return true;
    return false;
  }
  if (j.is_array()) {
    for (const auto& v : j)
      if (reveals_allocation(v, study)) return true;
    return false;
  }
  if (!j.is_string()) return false;
  auto s = j.get<std::string>();
  auto word_in = [&s](const std::string& w) {
    for (auto at = s.find(w); at != std::string::npos; at = s.find(w, at + 1)) {
      bool starts = at == 0 || !std::isalnum(static_cast<unsigned char>(s[at - 1]));
      bool ends = at + w.size() == s.size() || !std::isalnum(static_cast<unsigned char>(s[at + w.size()]));
      if (starts && ends) return true;
    }
    return false;
  };
  for (const auto& a : study.arms)
    if (s == a.id || word_in(a.name)) return true;
  for (const auto& k : study.kit_types)
    if (word_in(k.id) || word_in(k.name)) return true;
  return false;
}

}  // namespace

TEST_CASE("hub API sessions: login, logout, and the end of a session unused for the study's idle time") {
  test::TempDir tmp;
  HubProcess hub(study_file(tmp, [](json& d) { d["session_idle_minutes"] = 2; }));
  hub.add_user("admin.ada", "admin", "", kPassword);

  auto login = hub_call(hub.port(), "POST", "/api/v1/login", "", {{"user", "admin.ada"}, {"password", kPassword}});
  REQUIRE(login.status == 200);
  CHECK(login.body["expires_after_idle_s"] == 120);
  auto token = login.body["token"].get<std::string>();
  CHECK(hub_call(hub.port(), "GET", "/api/v1/me", token).body["user"] == "admin.ada");

  // Margins of 20 s either side of the 2 minutes, so a slow machine between
  // the ageing and the request cannot change the outcome.
  age_sessions(hub, 100 * 1000);  // used 100 s ago: still open, and the use restarts its timer
  CHECK(hub_call(hub.port(), "GET", "/api/v1/me", token).status == 200);
  age_sessions(hub, 100 * 1000);  // 200 s since login, 100 s since the last use
  CHECK(hub_call(hub.port(), "GET", "/api/v1/me", token).status == 200);
  age_sessions(hub, 140 * 1000);  // unused for longer than 2 minutes: ended
  auto expired = hub_call(hub.port(), "GET", "/api/v1/me", token);
  CHECK(expired.status == 401);
  CHECK(expired.body["error"]["message"].get<std::string>().find("unused for 2 minutes") != std::string::npos);
  age_sessions(hub, -140 * 1000);  // an ended session stays ended
  CHECK(hub_call(hub.port(), "GET", "/api/v1/me", token).status == 401);

  auto second = hub_login(hub.port(), "admin.ada", kPassword);
  CHECK(hub_call(hub.port(), "POST", "/api/v1/logout", second).status == 200);
  CHECK(hub_call(hub.port(), "GET", "/api/v1/me", second).status == 401);
  // A body over what the listener reads at all is refused in the API's shape too.
  auto huge = hub_call(hub.port(), "POST", "/api/v1/login", "", {{"user", std::string(9 << 20, 'x')}});
  CHECK(huge.status == 413);
  CHECK(huge.body["error"]["code"] == "invalid_input");
  // The hub's log holds no token and no password.
  auto log = test::read_file(hub.log_file());
  CHECK(log.find(token) == std::string::npos);
  CHECK(log.find(kPassword) == std::string::npos);
}

TEST_CASE("hub API sessions last the default 15 minutes when the study sets none") {
  HubProcess hub;
  hub.add_user("admin.ada", "admin", "", kPassword);
  auto token = hub_login(hub.port(), "admin.ada", kPassword);
  age_sessions(hub, 14 * 60 * 1000);
  CHECK(hub_call(hub.port(), "GET", "/api/v1/me", token).status == 200);
  age_sessions(hub, 16 * 60 * 1000);
  CHECK(hub_call(hub.port(), "GET", "/api/v1/me", token).status == 401);
}

TEST_CASE("hub sign-in defences: a wrong e-signature thrice ends the session, failed logins slow the user") {
  HubProcess hub;
  hub.add_user("admin.ada", "admin", "", kPassword);
  hub.add_user("monitor.mo", "monitor", "", kPassword);
  auto disabled = [&] {
    auto db = hub.database();
    auto st = db.prepare("SELECT COUNT(*) FROM hub_users WHERE disabled_ms IS NOT NULL");
    st.step();
    return st.int64(0);
  };

  // A session whose user gives a wrong e-signature three times ends; nothing was changed.
  auto token = hub_login(hub.port(), "admin.ada", kPassword);
  const std::string route = "/api/v1/users/monitor.mo/disable";
  const json disable = {{"reason", "left"}, {"signature", {{"password", "a guessed password"}}}};
  for (int i = 1; i <= 2; ++i) {
    auto r = hub_call(hub.port(), "POST", route, token, disable);
    CHECK_MESSAGE(r.status == 401, r.text);
    CHECK(r.body["error"]["message"].get<std::string>().find("sign with your own password") != std::string::npos);
  }
  auto third = hub_call(hub.port(), "POST", route, token, disable);
  CHECK(third.status == 401);
  CHECK(third.body["error"]["message"].get<std::string>().find("this session has ended") != std::string::npos);
  CHECK(hub_call(hub.port(), "GET", "/api/v1/me", token).status == 401);
  CHECK(disabled() == 0);

  // Logins: an unknown user and a wrong password get one answer; after three
  // failures in a row even the right password waits, and says for how long.
  auto login = [&](const std::string& user, const std::string& password) {
    return hub_call(hub.port(), "POST", "/api/v1/login", "", {{"user", user}, {"password", password}});
  };
  auto unknown = login("nobody.here", "whatever password");
  auto wrong = login("monitor.mo", "not the password");
  CHECK(unknown.status == 401);
  CHECK(unknown.body["error"]["message"] == wrong.body["error"]["message"]);
  CHECK(login("monitor.mo", "still not it").status == 401);
  CHECK(login("monitor.mo", "nor this").status == 401);
  auto slowed = login("monitor.mo", kPassword);
  CHECK(slowed.status == 429);
  CHECK(slowed.body["error"]["code"] == "rate_limited");
  CHECK(slowed.body["error"]["message"].get<std::string>().find("try again in 1 s") != std::string::npos);
  CHECK(slowed.body["error"]["message"].get<std::string>().find("monitor.mo") == std::string::npos);
}

TEST_CASE("two hub processes on one database accept each other's sessions and logouts") {
  HubProcess hub;
  hub.add_user("admin.ada", "admin", "", kPassword);
  HubPeer peer(hub);
  auto token = hub_login(hub.port(), "admin.ada", kPassword);
  auto me = hub_call(peer.port(), "GET", "/api/v1/me", token);
  CHECK(me.status == 200);
  CHECK(me.body["user"] == "admin.ada");
  // A user added through one process is listed by the other.
  auto added = hub_call(peer.port(), "POST", "/api/v1/users", token,
                        {{"name", "monitor.mo"}, {"role", "monitor"}, {"sites", json::array()}, {"password", kPassword}});
  REQUIRE_MESSAGE(added.status == 200, added.text);
  CHECK(hub_call(hub.port(), "GET", "/api/v1/users", token).body["users"].size() == 3);  // with the hub's first user
  CHECK(hub_call(peer.port(), "POST", "/api/v1/logout", token).status == 200);
  CHECK(hub_call(hub.port(), "GET", "/api/v1/me", token).status == 401);
}

TEST_CASE("hub API flows: an admin manages users with signatures, a disabled user's token is refused at once, readers read") {
  HubProcess hub;
  hub.add_user("admin.ada", "admin", "", kPassword);
  auto admin = hub_login(hub.port(), "admin.ada", kPassword);

  // Add a monitor and an investigator at site 101; the monitor logs in.
  auto add = [&](const std::string& name, const std::string& role, json sites) {
    auto r = hub_call(hub.port(), "POST", "/api/v1/users", admin,
                      {{"name", name}, {"role", role}, {"sites", sites}, {"password", kPassword}});
    REQUIRE_MESSAGE(r.status == 200, r.text);
    CHECK(r.text.find(kPassword) == std::string::npos);
  };
  add("monitor.mo", "monitor", json::array());
  add("investigator.ian", "investigator", json::array({"101"}));
  auto site_role_without_site = hub_call(hub.port(), "POST", "/api/v1/users", admin,
                                         {{"name", "x.y"}, {"role", "nurse"}, {"sites", json::array()},
                                          {"password", kPassword}});
  CHECK(site_role_without_site.status == 400);
  CHECK(site_role_without_site.body["error"]["message"].get<std::string>().find("works on a site's node") !=
        std::string::npos);

  auto monitor = hub_login(hub.port(), "monitor.mo", kPassword);
  auto investigator = hub_login(hub.port(), "investigator.ian", kPassword);
  // The investigator reads who they are and the study; nothing else.
  auto me = hub_call(hub.port(), "GET", "/api/v1/me", investigator);
  CHECK(me.body["sites"] == json::array({"101"}));
  CHECK(me.body["blinded"] == true);
  CHECK(hub_call(hub.port(), "GET", "/api/v1/study", investigator).status == 200);
  CHECK(hub_call(hub.port(), "GET", "/api/v1/audit", investigator).status == 403);
  CHECK(hub_call(hub.port(), "GET", "/api/v1/users", monitor).status == 403);

  // Sites, signed.
  auto sites = hub_call(hub.port(), "POST", "/api/v1/users/investigator.ian/sites", admin,
                        {{"sites", {"101", "102"}}, {"signature", {{"password", kPassword}}}});
  REQUIRE_MESSAGE(sites.status == 200, sites.text);
  CHECK(sites.body["user"]["sites"] == json::array({"101", "102"}));

  // The monitor is disabled: the monitor's open session is refused at the next request.
  CHECK(hub_call(hub.port(), "GET", "/api/v1/audit", monitor).status == 200);
  auto off = hub_call(hub.port(), "POST", "/api/v1/users/monitor.mo/disable", admin,
                      {{"reason", "left the study"}, {"signature", {{"password", kPassword}}}});
  REQUIRE_MESSAGE(off.status == 200, off.text);
  CHECK(hub_call(hub.port(), "GET", "/api/v1/audit", monitor).status == 401);
  CHECK(hub_call(hub.port(), "POST", "/api/v1/login", "", {{"user", "monitor.mo"}, {"password", kPassword}}).status ==
        401);
  auto on = hub_call(hub.port(), "POST", "/api/v1/users/monitor.mo/enable", admin,
                     {{"reason", "back"}, {"signature", {{"password", kPassword}}}});
  REQUIRE_MESSAGE(on.status == 200, on.text);
  monitor = hub_login(hub.port(), "monitor.mo", kPassword);

  // A new password, signed: the old one no longer logs in, the new one does.
  auto pw = hub_call(hub.port(), "POST", "/api/v1/users/monitor.mo/password", admin,
                     {{"password", "the monitor's new password"}, {"signature", {{"password", kPassword}}}});
  REQUIRE_MESSAGE(pw.status == 200, pw.text);
  CHECK(hub_call(hub.port(), "GET", "/api/v1/me", monitor).status == 401);
  CHECK(hub_call(hub.port(), "POST", "/api/v1/login", "", {{"user", "monitor.mo"}, {"password", kPassword}}).status ==
        401);
  monitor = hub_login(hub.port(), "monitor.mo", "the monitor's new password");

  // The trail, as the monitor reads it: each signed change by admin.ada, "approved"; the logins.
  auto trail = hub_call(hub.port(), "GET", "/api/v1/audit?user=admin.ada", monitor);
  REQUIRE(trail.status == 200);
  std::vector<std::string> signed_actions;
  for (const auto& e : trail.body["entries"]) {
    CHECK(e["user"] == "admin.ada");
    if (e["signature"] == "approved") signed_actions.push_back(e["action"]);
  }
  CHECK(signed_actions ==
        std::vector<std::string>{"user.sites_set", "user.disabled", "user.enabled", "user.password_set"});
  auto logins = hub_call(hub.port(), "GET", "/api/v1/audit?object=monitor.mo", monitor);
  int login_ok = 0, login_failed = 0;
  for (const auto& e : logins.body["entries"]) {
    login_ok += e["action"] == "hub.login";
    login_failed += e["action"] == "hub.login_failed";
  }
  CHECK(login_ok == 3);
  CHECK(login_failed == 2);
  CHECK(logins.text.find(kPassword) == std::string::npos);
  CHECK(logins.text.find("the monitor's new password") == std::string::npos);
  auto bad_since = hub_call(hub.port(), "GET", "/api/v1/audit?since=yesterday", monitor);
  CHECK(bad_since.status == 400);
}

TEST_CASE("the audit trail holds the nodes' events by site user, blinded for blinded readers, the same in the API and the CLI") {
  test::TempDir tmp;
  // The example study's unblinded roles have no view_audit; here the supply manager has it.
  HubProcess hub(study_file(tmp, [](json& d) {
    for (auto& r : d["roles"])
      if (r["id"] == "supply-manager") r["permissions"].push_back("view_audit");
  }));
  hub.add_user(kCoordinator, "coordinator", "101", kPassword);
  hub.add_user("monitor.mo", "monitor", "", kPassword);
  hub.add_user("supply.sam", "supply-manager", "", kPassword);
  NodeDir node(hub, "101");
  auto participants = randomize_at(node, 2);
  REQUIRE(node.sync().exit_code == 0);

  auto study = shared::load_study_file(test::source_path("packaging/examples/study-blocks.json")).study;
  REQUIRE(study);
  auto blinded = hub_call(hub.port(), "GET", "/api/v1/audit?object=" + participants[0],
                          hub_login(hub.port(), "monitor.mo", kPassword));
  REQUIRE(blinded.status == 200);
  CHECK(blinded.body["blinded"] == true);
  std::vector<std::string> types;
  for (const auto& e : blinded.body["entries"]) {
    types.push_back(e["action"]);
    CHECK(e["source"] == "node");
    CHECK(e["user"] == kCoordinator);
    CHECK(e["site_id"] == "101");
    CHECK(e["node_id"].get<std::string>().rfind("101-N", 0) == 0);
    CHECK(e["object"] == participants[0]);
  }
  CHECK(types == std::vector<std::string>{"participant.screened", "participant.randomized"});
  CHECK_FALSE(reveals_allocation(blinded.body, *study));
  const auto& randomized = blinded.body["entries"][1];
  CHECK(randomized["withheld"] == true);
  CHECK(randomized["signature"].get<std::string>().find(kCoordinator + " (coordinator)") == 0);
  CHECK(randomized["details"]["kits"].size() == 1);

  // The unblinded reader sees the arm and the kit type, opened with the hub's key.
  auto unblinded = hub_call(hub.port(), "GET", "/api/v1/audit?object=" + participants[0],
                            hub_login(hub.port(), "supply.sam", kPassword));
  REQUIRE(unblinded.status == 200);
  CHECK(unblinded.body["blinded"] == false);
  const auto& allocation = unblinded.body["entries"][1]["details"]["allocation"];
  REQUIRE(allocation.is_object());
  CHECK((allocation["arm"] == "A" || allocation["arm"] == "B"));
  CHECK(allocation["kit_types"].size() == 1);

  // The whole trail: hub entries and node events in one list ordered by time.
  auto all = hub_call(hub.port(), "GET", "/api/v1/audit", hub_login(hub.port(), "monitor.mo", kPassword));
  std::set<std::string> sources;
  std::string last;
  for (const auto& e : all.body["entries"]) {
    sources.insert(e["source"]);
    CHECK(e["at"].get<std::string>() >= last);
    last = e["at"];
  }
  CHECK(sources == std::set<std::string>{"hub", "node"});
  CHECK_FALSE(reveals_allocation(all.body, *study));

  // irt-hub audit prints the same trail for the same reader.
  auto cli = hub.cli({"audit", "--reader", "monitor.mo", "--object", participants[0], "--json"}, kPassword + "\n");
  REQUIRE_MESSAGE(cli.exit_code == 0, cli.err);
  CHECK(json::parse(cli.out) == blinded.body["entries"]);
}

TEST_CASE("blinding crawl: as each blinded role, every GET route of the table answers nothing that names an arm or a kit type") {
  HubProcess hub;
  hub.add_user(kCoordinator, "coordinator", "101", kPassword);
  NodeDir node(hub, "101");
  // More participants than the site has kits for: the hub's supply alert then names a kit type.
  // Each sync tops the node's slots up; the depot is emptied after the initial
  // shipment, so no resupply comes (and the failed resupply raises its own alert).
  hub.database().prepare("DELETE FROM hub_kits WHERE custody_kind = 'depot'").run();
  std::vector<std::string> participants;
  bool shortage = false;
  for (int round = 0; round < 6 && !shortage; ++round) {
    for (auto& p : randomize_at(node, 8)) participants.push_back(p);
    REQUIRE(node.sync().exit_code == 0);
    auto alerts = hub.read_as_admin({"alerts", "--json"});
    REQUIRE(alerts.exit_code == 0);
    shortage = alerts.out.find("supply.shortage") != std::string::npos;
  }
  REQUIRE(shortage);
  REQUIRE(participants.size() >= 6);
  auto study = shared::load_study_file(test::source_path("packaging/examples/study-blocks.json")).study;
  REQUIRE(study);

  auto node_list = hub.read_as_admin({"nodes", "--json"});
  REQUIRE(node_list.exit_code == 0);
  std::vector<std::string> values = {kCoordinator, "101", "SHP-000001"};  // SHP-000001: the initial shipment
  for (const auto& n : json::parse(node_list.out)) values.push_back(n["node_id"]);
  values.insert(values.end(), participants.begin(), participants.end());

  int crawled = 0, blinded_roles = 0;
  for (const auto& role : study->roles) {
    if (!hub::reads_blinded(*study, &role)) continue;
    ++blinded_roles;
    CAPTURE(role.id);
    const std::string name = "crawl." + role.id;
    hub.add_user(name, role.id, hub::is_site_role(role) ? "101" : "", kPassword);
    auto token = hub_login(hub.port(), name, kPassword);
    for (const auto& route : hub::api_routes()) {
      if (route.method != "GET") continue;
      std::vector<std::string> paths = {route.path};
      if (route.path.find('{') != std::string::npos) {
        paths.clear();
        for (const auto& v : values) paths.push_back(test::fill_path(route.path, v));
      }
      for (const auto& path : paths) {
        CAPTURE(path);
        auto r = hub_call(hub.port(), "GET", path, route.open ? "" : token);
        REQUIRE(r.status != 0);
        CHECK_MESSAGE(!r.body.is_discarded(), r.text);
        CHECK_MESSAGE(!reveals_allocation(r.body, *study), r.text);
        ++crawled;
      }
    }
  }
  CHECK(blinded_roles == 7);
  CHECK(crawled >= 7 * 5);
}
