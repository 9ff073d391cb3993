// The hub API's framework (hub/api_server.h) over real HTTP on loopback, in
// this process: the route table against docs/openapi-hub.yaml, the permission
// of every (role, route) pair, sessions, bodies and e-signatures.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <tuple>

#include "hub/audit.h"
#include "hub/sessions.h"
#include "hub/users.h"
#include "tests/hub/hub_fixture.h"
#include "tests/support/hub_api.h"

using namespace irt;
using nlohmann::json;
using test::HubApiServer;
using test::HubFixture;
using test::hub_call;
using test::hub_login;
using test::kHubNow;

namespace {

void add_staff(HubFixture& f, const std::string& name, const std::string& role) {
  const auto* r = f.hub->study().find_role(role);
  REQUIRE(r);
  std::vector<std::string> sites;
  if (hub::is_site_role(*r)) sites = {"101"};
  auto added = hub::add_user(*f.hub, {name, role, sites, test::kUserPassword}, crypto::kTest, "tester", kHubNow);
  REQUIRE_MESSAGE(added.ok(), added.error().message);
}

// (path, method, permission) of docs/openapi-hub.yaml: "none" for any
// logged-in user, "open" for no session.
std::set<std::tuple<std::string, std::string, std::string>> documented_routes() {
  std::ifstream in(test::source_path("docs/openapi-hub.yaml"));
  REQUIRE(in);
  std::set<std::tuple<std::string, std::string, std::string>> out;
  std::regex path_line(R"(^  (/\S*):\s*$)"), method_line(R"(^    (get|post|put|patch|delete):\s*$)"),
      permission_line(R"(^      x-irt-permission:\s*(\S+)\s*$)");
  bool in_paths = false;
  std::string path, method;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (line == "paths:") in_paths = true;
    else if (!line.empty() && line[0] != ' ') in_paths = false;
    if (!in_paths) continue;
    if (std::regex_match(line, m, path_line)) path = m[1];
    else if (std::regex_match(line, m, method_line)) {
      method = m[1];
      for (auto& c : method) c = static_cast<char>(std::toupper(c));
    } else if (std::regex_match(line, m, permission_line)) {
      out.emplace(path, method, m[1]);
      method.clear();
    } else if (!method.empty() && line.rfind("      ", 0) != 0 && line.rfind("    ", 0) == 0) {
      FAIL_CHECK(path << " " << method << ": no x-irt-permission in docs/openapi-hub.yaml");
    }
  }
  return out;
}

std::string permission_text(const hub::ApiRoute& r) {
  if (r.open) return "open";
  return r.permission ? shared::to_string(*r.permission) : "none";
}

// What a refused call must leave as it was.
std::string snapshot(HubFixture& f) {
  json j;
  j["audit"] = hub::audit_entries(f.hub->db()).size();
  for (const auto& u : hub::all_users(f.hub->db()))
    j["users"].push_back({u.name, u.role, u.sites, u.disabled, u.password_hash});
  auto st = f.hub->db().prepare("SELECT COUNT(*) FROM hub_sessions");
  st.step();
  j["sessions"] = st.int64(0);
  for (const auto& n : f.hub->ledger().nodes()) j["outbox"].push_back(f.hub->outbox().last_seq(n.node_id));
  return j.dump();
}

}  // namespace

TEST_CASE("the route table and docs/openapi-hub.yaml name the same paths, methods and permissions") {
  std::set<std::tuple<std::string, std::string, std::string>> table;
  for (const auto& r : hub::api_routes()) {
    CHECK_MESSAGE(table.emplace(r.path, r.method, permission_text(r)).second, r.method << " " << r.path << " twice");
    CHECK_MESSAGE((r.method == "GET" || r.method == "POST"), r.path);
    CHECK_MESSAGE((r.open || r.path.rfind("/api/v1/", 0) == 0), r.path);
  }
  auto documented = documented_routes();
  for (const auto& t : table)
    CHECK_MESSAGE(documented.count(t), std::get<1>(t) << " " << std::get<0>(t) << " (" << std::get<2>(t)
                                                      << ") is not in docs/openapi-hub.yaml with that permission");
  for (const auto& t : documented)
    CHECK_MESSAGE(table.count(t), std::get<1>(t) << " " << std::get<0>(t) << " (" << std::get<2>(t)
                                                 << ") is documented but not in the route table");
  CHECK(table.size() >= 12);
}

TEST_CASE("every role gets 403 naming the permission on each route it lacks, changing nothing, and passes the others") {
  HubFixture f;
  HubApiServer api(*f.hub);
  add_staff(f, "target.user", "monitor");
  const auto& study = f.hub->study();
  REQUIRE(study.roles.size() >= 10);
  int denied = 0, allowed = 0;
  for (const auto& role : study.roles) {
    CAPTURE(role.id);
    const std::string name = "as." + role.id;
    add_staff(f, name, role.id);
    auto token = hub_login(api.port(), name, test::kUserPassword);
    for (const auto& route : hub::api_routes()) {
      if (route.open || route.path == "/api/v1/logout") continue;
      CAPTURE(route.path);
      auto path = test::fill_path(route.path, "target.user");
      bool may = !route.permission || role.can(*route.permission);
      if (may) {
        // An empty body: allowed past the check, refused (400) or answered, never 401 or 403.
        auto r = hub_call(api.port(), route.method, path, token, route.method == "POST" ? json::object() : json());
        CHECK_MESSAGE((r.status != 401 && r.status != 403 && r.status != 0), route.method << " " << path << ": "
                                                                                       << r.status << " " << r.text);
        // A GET answers, or names the object it does not hold (a node id that is a user's name).
        bool parameter = route.path.find('{') != std::string::npos;
        if (route.method == "GET")
          CHECK_MESSAGE((r.status == 200 || (parameter && r.status == 404)), route.method << " " << path << ": "
                                                                                        << r.text);
        ++allowed;
        continue;
      }
      // A body that would do the action, signed by the caller: the role alone refuses it.
      json body = {{"reason", "matrix"}, {"sites", json::array({"101"})}, {"password", "another long password"},
                   {"name", "new.user"},  {"role", "monitor"},            {"signature", {{"password", test::kUserPassword}}}};
      auto before = snapshot(f);
      auto r = hub_call(api.port(), route.method, path, token, route.method == "POST" ? body : json());
      CHECK_MESSAGE(r.status == 403, route.method << " " << path << ": " << r.status << " " << r.text);
      CHECK(r.body["error"]["code"] == "forbidden");
      CHECK(r.body["error"]["message"].get<std::string>().find(shared::to_string(*route.permission)) !=
            std::string::npos);
      CHECK(snapshot(f) == before);
      ++denied;
    }
    auto out = hub_call(api.port(), "POST", "/api/v1/logout", token);
    CHECK(out.status == 200);
    CHECK(hub_call(api.port(), "GET", "/api/v1/me", token).status == 401);
  }
  CHECK(denied > 30);
  CHECK(allowed > 20);
}

TEST_CASE("login answers the user, role, blinding and permissions, and refuses a wrong password and an unknown user alike") {
  HubFixture f;
  HubApiServer api(*f.hub);
  add_staff(f, "ada", "admin");
  add_staff(f, "sam", "supply-manager");
  add_staff(f, "off", "monitor");
  REQUIRE(hub::set_user_disabled(*f.hub, "off", true, "left", {"ada", test::kUserPassword}, kHubNow).ok());

  auto ok = hub_call(api.port(), "POST", "/api/v1/login", "", {{"user", "ada"}, {"password", test::kUserPassword}});
  REQUIRE(ok.status == 200);
  CHECK(ok.body["token"].get<std::string>().size() == 64);
  CHECK(ok.body["user"] == "ada");
  CHECK(ok.body["role"] == "admin");
  CHECK(ok.body["blinded"] == true);
  CHECK(ok.body["permissions"] == json::array({"manage_users", "manage_nodes", "view_audit"}));
  CHECK(ok.body["expires_after_idle_s"] == 900);
  auto sam = hub_call(api.port(), "POST", "/api/v1/login", "", {{"user", "sam"}, {"password", test::kUserPassword}});
  CHECK(sam.body["blinded"] == false);

  // The table keeps the token's SHA-256, never the token.
  auto token = ok.body["token"].get<std::string>();
  auto st = f.hub->db().prepare("SELECT id FROM hub_sessions WHERE user_name = 'ada'");
  REQUIRE(st.step());
  CHECK(st.text(0) == hub::session_id(token));
  CHECK(st.text(0) != token);

  std::set<std::string> messages;
  for (auto [user, password] : std::vector<std::pair<std::string, std::string>>{
           {"ada", "not the password"}, {"nobody", test::kUserPassword}, {"off", test::kUserPassword}}) {
    auto r = hub_call(api.port(), "POST", "/api/v1/login", "", {{"user", user}, {"password", password}});
    CHECK(r.status == 401);
    CHECK(r.body["error"]["code"] == "unauthenticated");
    messages.insert(r.body["error"]["message"].get<std::string>());
    CHECK(r.text.find(password) == std::string::npos);
  }
  CHECK(messages.size() == 1);

  int logins = 0, failed = 0;
  for (const auto& e : hub::audit_entries(f.hub->db())) {
    if (e.action == "hub.login") ++logins;
    if (e.action == "hub.login_failed") ++failed;
    for (const auto& text : {e.reason, e.old_value, e.new_value}) {
      CHECK(text.find(test::kUserPassword) == std::string::npos);
      CHECK(text.find("not the password") == std::string::npos);
      CHECK(text.find(token) == std::string::npos);
    }
  }
  CHECK(logins == 2);
  CHECK(failed == 3);
}

TEST_CASE("a disabled user's token is refused at once, and a new password ends the user's other sessions") {
  HubFixture f;
  HubApiServer api(*f.hub);
  add_staff(f, "ada", "admin");
  add_staff(f, "bob", "monitor");
  auto ada = hub_login(api.port(), "ada", test::kUserPassword);
  auto bob1 = hub_login(api.port(), "bob", test::kUserPassword), bob2 = hub_login(api.port(), "bob", test::kUserPassword);
  CHECK(hub_call(api.port(), "GET", "/api/v1/me", bob1).status == 200);

  // Bob's password, set by ada: both of bob's sessions end, ada's stays.
  auto pw = hub_call(api.port(), "POST", "/api/v1/users/bob/password", ada,
                     {{"password", "bob's new password"}, {"signature", {{"password", test::kUserPassword}}}});
  REQUIRE_MESSAGE(pw.status == 200, pw.text);
  CHECK(pw.text.find("bob's new password") == std::string::npos);
  CHECK(hub_call(api.port(), "GET", "/api/v1/me", bob1).status == 401);
  CHECK(hub_call(api.port(), "GET", "/api/v1/me", bob2).status == 401);
  CHECK(hub_call(api.port(), "GET", "/api/v1/me", ada).status == 200);
  // Ada's own password, through her session: her other session ends, this one stays.
  auto ada2 = hub_login(api.port(), "ada", test::kUserPassword);
  auto own = hub_call(api.port(), "POST", "/api/v1/users/ada/password", ada,
                      {{"password", "ada's new password"}, {"signature", {{"password", test::kUserPassword}}}});
  REQUIRE_MESSAGE(own.status == 200, own.text);
  CHECK(hub_call(api.port(), "GET", "/api/v1/me", ada).status == 200);
  CHECK(hub_call(api.port(), "GET", "/api/v1/me", ada2).status == 401);

  auto bob = hub_login(api.port(), "bob", "bob's new password");
  // Disabled without the API (the command line): the next request is refused.
  REQUIRE(hub::set_user_disabled(*f.hub, "bob", true, "left", {"ada", "ada's new password"}, kHubNow).ok());
  auto refused = hub_call(api.port(), "GET", "/api/v1/me", bob);
  CHECK(refused.status == 401);
  CHECK(refused.body["error"]["code"] == "unauthenticated");
}

TEST_CASE("a signed route refuses a missing or wrong signature and changes nothing") {
  HubFixture f;
  HubApiServer api(*f.hub);
  add_staff(f, "ada", "admin");
  add_staff(f, "bob", "monitor");
  auto ada = hub_login(api.port(), "ada", test::kUserPassword);
  auto before = snapshot(f);
  auto none = hub_call(api.port(), "POST", "/api/v1/users/bob/disable", ada, {{"reason", "left"}});
  CHECK(none.status == 400);
  CHECK(none.body["error"]["message"].get<std::string>().rfind("signature:", 0) == 0);
  auto wrong = hub_call(api.port(), "POST", "/api/v1/users/bob/disable", ada,
                        {{"reason", "left"}, {"signature", {{"password", "not ada's password"}}}});
  CHECK(wrong.status == 401);
  CHECK(wrong.text.find("not ada's password") == std::string::npos);
  CHECK(snapshot(f) == before);

  auto done = hub_call(api.port(), "POST", "/api/v1/users/bob/disable", ada,
                       {{"reason", "left the team"}, {"signature", {{"password", test::kUserPassword}}}});
  REQUIRE_MESSAGE(done.status == 200, done.text);
  CHECK(done.body["user"]["status"] == "disabled");
  CHECK(done.body["signed_by"] == "ada");
  auto entries = hub::audit_entries(f.hub->db(), {std::nullopt, "ada", "bob"});
  REQUIRE_FALSE(entries.empty());
  CHECK(entries.back().action == "user.disabled");
  CHECK(entries.back().signature == "approved");
  CHECK(entries.back().reason == "left the team");
}

TEST_CASE("bodies are checked field by field, and every refusal is JSON with the status of its family") {
  HubFixture f;
  HubApiServer api(*f.hub);
  add_staff(f, "ada", "admin");
  auto ada = hub_login(api.port(), "ada", test::kUserPassword);
  auto message = [](const test::HubReply& r) { return r.body["error"]["message"].get<std::string>(); };

  auto r = hub_call(api.port(), "POST", "/api/v1/users", ada,
                    {{"name", "x.y"}, {"role", "monitor"}, {"sites", {"101", 7}}, {"password", test::kUserPassword}});
  CHECK(r.status == 400);
  CHECK(message(r) == "sites[1]: must be a string");
  r = hub_call(api.port(), "POST", "/api/v1/users", ada,
               {{"name", "x.y"}, {"role", "monitor"}, {"sites", json::array()}, {"password", test::kUserPassword}, {"admin", true}});
  CHECK(r.status == 400);
  CHECK(message(r).rfind("admin: unknown field", 0) == 0);
  r = hub_call(api.port(), "POST", "/api/v1/users", ada,
               {{"name", std::string(65, 'n')}, {"role", "monitor"}, {"sites", json::array()}, {"password", test::kUserPassword}});
  CHECK(message(r) == "name: at most 64 characters (got 65); shorten it");
  r = hub_call(api.port(), "POST", "/api/v1/users", ada, json::array({1, 2}));
  CHECK(r.status == 400);
  CHECK(message(r) == "the request body must be a JSON object");
  r = hub_call(api.port(), "POST", "/api/v1/users", ada, {{"pad", std::string(70 * 1024, 'x')}});
  CHECK(r.status == 413);
  CHECK(r.body["error"]["code"] == "invalid_input");
  // The conflict family: a taken name.
  r = hub_call(api.port(), "POST", "/api/v1/users", ada,
               {{"name", "ada"}, {"role", "monitor"}, {"sites", json::array()}, {"password", test::kUserPassword}});
  CHECK(r.status == 409);
  CHECK(r.body["error"]["code"] == "conflict");
  r = hub_call(api.port(), "POST", "/api/v1/users/nobody/enable", ada,
               {{"reason", "x"}, {"signature", {{"password", test::kUserPassword}}}});
  CHECK(r.status == 404);
  CHECK(r.body["error"]["code"] == "not_found");

  r = hub_call(api.port(), "GET", "/api/v1/no-such-thing", ada);
  CHECK(r.status == 404);
  CHECK(r.body["error"]["code"] == "not_found");
  r = hub_call(api.port(), "GET", "/api/v1/login");
  CHECK(r.status == 405);
  CHECK(r.headers.find("Allow")->second == "POST");
  r = hub_call(api.port(), "GET", "/api/v1/me");
  CHECK(r.status == 401);
  CHECK(r.body["error"]["code"] == "unauthenticated");
  r = hub_call(api.port(), "GET", "/api/v1/me", "0000");
  CHECK(r.status == 401);
  r = hub_call(api.port(), "GET", "/api/v1");
  CHECK(r.status == 200);
  CHECK(r.body["api"] == "/api/v1");
  CHECK(r.body["documentation"] == "docs/openapi-hub.yaml");
}

TEST_CASE("GET /api/v1/study names arms and kit types to unblinded readers only") {
  HubFixture f;
  HubApiServer api(*f.hub);
  add_staff(f, "mon", "monitor");
  add_staff(f, "sam", "supply-manager");
  auto blinded = hub_call(api.port(), "GET", "/api/v1/study", hub_login(api.port(), "mon", test::kUserPassword));
  auto unblinded = hub_call(api.port(), "GET", "/api/v1/study", hub_login(api.port(), "sam", test::kUserPassword));
  REQUIRE(blinded.status == 200);
  REQUIRE(unblinded.status == 200);
  CHECK(blinded.body["id"] == "VLC-301");
  CHECK(blinded.body["sites"].size() == 3);
  CHECK_FALSE(blinded.body.contains("arms"));
  CHECK_FALSE(blinded.body.contains("kit_types"));
  for (const auto& word : {"Velcardin 25 mg once daily", "Placebo once daily", "VLC25", "PBO", "Placebo matching"})
    CHECK(blinded.text.find(word) == std::string::npos);
  CHECK(unblinded.body["arms"].size() == 2);
  CHECK(unblinded.body["kit_types"][1]["id"] == "PBO");
}
