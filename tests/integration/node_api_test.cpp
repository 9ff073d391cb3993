// The node's /api/v1 against a real `irt-node serve` process on loopback, on a
// data directory prepared without a hub (tests/support/node_fixture.h): every
// flow, bad input that must change nothing, blinding per role, and a kill -9
// in the middle of a burst of randomizations.
#include <doctest/doctest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include <sys/stat.h>

#include "shared/web_assets.h"
#include "tests/support/node_api_client.h"
#include "tests/support/node_fixture.h"
#include "tests/support/test_support.h"

using namespace irt;
using nlohmann::json;

namespace {

using Reply = test::ApiReply;

class NodeServer {
 public:
  explicit NodeServer(test::NodeFixtureOptions o = {}) : fixture_(tmp_ / "node", std::move(o)) { start(); }

  void start() {
    port_ = test::free_port();
    process_ = test::serve_node(fixture_.dir(), port_, tmp_ / "node.log");
  }
  int stop() { return process_->terminate(); }
  void kill_hard() { process_->kill_hard(); }

  Reply call(const std::string& method, const std::string& path, const std::string& token = "",
             const json& body = nullptr) {
    return test::api_call(port_, method, path, token, body);
  }
  // A POST with extra headers (Idempotency-Key), its answer's headers kept.
  Reply post(const std::string& path, const std::string& token, const json& body, httplib::Headers headers) {
    return test::api_call(port_, "POST", path, token, body, std::move(headers));
  }
  std::string login(const std::string& user) {
    auto r = call("POST", "/api/v1/login", "", {{"user", user}, {"password", test::kFixturePassword}});
    REQUIRE(r.status == 200);
    return r.body["token"];
  }
  // Everything an API user can see; two equal snapshots mean nothing changed.
  json snapshot(const std::string& token) {
    auto st = call("GET", "/api/v1/status", token).body;
    st.erase("online");
    st.erase("sync_state");
    st.erase("sync_error");
    st.erase("last_sync_ms");
    st.erase("sync_failures");
    st.erase("sync_rounds");
    return {{"status", st}, {"inventory", call("GET", "/api/v1/inventory", token).body},
            {"participants", call("GET", "/api/v1/participants", token).body}};
  }
  std::vector<std::string> yes() const { return std::vector<std::string>(5, "yes"); }
  std::string screen(const std::string& token, const std::string& diabetes = "no") {
    auto r = call("POST", "/api/v1/participants", token, {{"factors", {{"diabetes", diabetes}}}, {"eligibility", yes()}});
    REQUIRE(r.status == 200);
    return r.body["participant"]["participant"];
  }
  Reply randomize(const std::string& token, const std::string& number) {
    return call("POST", "/api/v1/participants/" + number + "/randomize", token,
                {{"signature_password", test::kFixturePassword}});
  }
  test::NodeFixture& fixture() { return fixture_; }
  int port() const { return port_; }
  const std::filesystem::path& tmp() const { return tmp_.path(); }

 private:
  test::TempDir tmp_;
  test::NodeFixture fixture_;
  int port_ = 0;
  std::unique_ptr<test::Process> process_;
};

// A refused request: the expected status, an error body with code and message, and no change.
void refused(NodeServer& n, const std::string& token, int status, const std::string& method, const std::string& path,
             const json& body, const std::string& message_part) {
  auto before = n.snapshot(token);
  auto r = n.call(method, path, token, body);
  CHECK_MESSAGE(r.status == status, method << " " << path << " -> " << r.status << " " << r.body.dump());
  CHECK(r.body["error"]["code"].is_string());
  CHECK_MESSAGE(r.body["error"]["message"].get<std::string>().find(message_part) != std::string::npos,
                r.body["error"]["message"]);
  CHECK(n.snapshot(token) == before);
}

// `j` with the participant's own identifiers (number, randomization number,
// kit numbers) replaced, to compare what two participants' answers say.
json anonymous(const json& j, std::vector<std::string> own) {
  std::sort(own.begin(), own.end(), [](const auto& x, const auto& y) { return x.size() > y.size(); });
  auto text = j.dump();
  for (const auto& id : own)
    for (auto at = text.find(id); at != std::string::npos; at = text.find(id)) text.replace(at, id.size(), "#");
  return json::parse(text);
}

using test::reveals;

}  // namespace

TEST_CASE("node API: the tablet UI is served as files under a CSP with no inline script or style, no framing") {
  NodeServer n;
  httplib::Client c("127.0.0.1", n.port());
  auto page = c.Get("/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->get_header_value("Content-Type") == "text/html; charset=utf-8");
  CHECK(page->body.find("<script src=\"/web/app.js\"") != std::string::npos);
  CHECK(page->body.find("<script>") == std::string::npos);
  CHECK(page->body.find("<style>") == std::string::npos);
  for (const std::string file : {"/", "/web/app.js", "/web/app.css"}) {
    CAPTURE(file);
    auto r = c.Get(file);
    REQUIRE(r);
    REQUIRE(r->status == 200);
    // No inline style or handler attribute anywhere, including in the markup the script writes.
    CHECK(r->body.find("style=") == std::string::npos);
    CHECK(r->body.find(" onclick=") == std::string::npos);
    auto csp = r->get_header_value("Content-Security-Policy");
    CHECK(csp == shared::kWebContentSecurityPolicy);
    CHECK(csp.find("unsafe-inline") == std::string::npos);
    CHECK(csp.find("unsafe-eval") == std::string::npos);
    CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
    CHECK(r->get_header_value("X-Content-Type-Options") == "nosniff");
    CHECK(r->get_header_value("Referrer-Policy") == "no-referrer");
    CHECK(r->get_header_value("Cache-Control") == "no-store");
  }
  CHECK(c.Get("/web/app.css")->get_header_value("Content-Type") == "text/css; charset=utf-8");
  CHECK(c.Get("/web/index.html")->status == 404);
  CHECK(c.Get("/web/nothing.js")->status == 404);
}

TEST_CASE("node API: a call without a valid token answers 401 and a wrong password is refused") {
  NodeServer n;
  CHECK(n.call("GET", "/api/v1/status").status == 401);
  CHECK(n.call("GET", "/api/v1/participants", "not-a-token").status == 401);
  CHECK(n.call("POST", "/api/v1/participants", "", {{"factors", json::object()}}).status == 401);
  auto bad = n.call("POST", "/api/v1/login", "", {{"user", "carla"}, {"password", "nope"}});
  CHECK(bad.status == 401);
  CHECK(bad.body["error"]["message"] == n.call("POST", "/api/v1/login", "", {{"user", "nobody"}, {"password", "x"}})
                                           .body["error"]["message"]);
  auto token = n.login("carla");
  CHECK(n.call("GET", "/api/v1/status", token).status == 200);
  CHECK(n.call("POST", "/api/v1/logout", token).status == 200);
  CHECK(n.call("GET", "/api/v1/status", token).status == 401);
}

TEST_CASE("node API: failed logins slow the user down, a wrong e-signature thrice ends the session") {
  NodeServer n;
  // A wrong e-signature twice is refused; the third ends the session, nothing recorded.
  auto carla = n.login("carla");
  auto number = n.screen(carla);
  const auto path = "/api/v1/participants/" + number + "/randomize";
  for (int i = 1; i <= 2; ++i)
    refused(n, carla, 401, "POST", path, {{"signature_password", "guess " + std::to_string(i)}},
            "electronic signature did not verify");
  auto before = n.snapshot(n.login("paul"));
  auto third = n.call("POST", path, carla, {{"signature_password", "guess 3"}});
  CHECK(third.status == 401);
  CHECK(third.body["error"]["message"].get<std::string>().find("this session has ended") != std::string::npos);
  CHECK(n.call("GET", "/api/v1/status", carla).status == 401);
  CHECK(n.snapshot(n.login("paul")) == before);

  // Logins: after three failures in a row even the right password waits, and
  // the refusal says for how long without saying whether the user exists.
  for (const char* guess : {"one", "two", "three"})
    CHECK(n.call("POST", "/api/v1/login", "", {{"user", "mona"}, {"password", guess}}).status == 401);
  auto slowed = n.call("POST", "/api/v1/login", "", {{"user", "mona"}, {"password", test::kFixturePassword}});
  CHECK(slowed.status == 429);
  CHECK(slowed.body["error"]["code"] == "rate_limited");
  CHECK(slowed.body["error"]["message"].get<std::string>().find("try again in 1 s") != std::string::npos);
  CHECK(n.call("POST", "/api/v1/login", "", {{"user", "paul"}, {"password", test::kFixturePassword}}).status == 200);
}

TEST_CASE("node API: screen - randomize - dispense - withdraw - inventory - with every bad input a 4xx that changes nothing") {
  NodeServer n;
  auto carla = n.login("carla");
  auto paul = n.login("paul");
  auto mona = n.login("mona");

  // Screening.
  refused(n, carla, 400, "POST", "/api/v1/participants", {{"factors", {{"diabetes", "maybe"}}}, {"eligibility", n.yes()}},
          "not a level");
  refused(n, carla, 400, "POST", "/api/v1/participants", {{"factors", {{"diabetes", "no"}}}, {"eligibility", {"yes"}}},
          "answers were given");
  refused(n, carla, 400, "POST", "/api/v1/participants", "[1,2]", "JSON object");
  refused(n, mona, 403, "POST", "/api/v1/participants", {{"factors", {{"diabetes", "no"}}}, {"eligibility", n.yes()}},
          "may not screen");
  auto failed = n.call("POST", "/api/v1/participants", carla,
                       {{"factors", {{"diabetes", "no"}}}, {"eligibility", {"yes", "no", "yes", "yes", "yes"}},
                        {"screen_failure_reason", "under 18"}});
  CHECK(failed.status == 200);
  CHECK(failed.body["participant"]["status"] == "screen_failed");
  auto number = n.screen(carla);

  // Randomization.
  refused(n, carla, 404, "POST", "/api/v1/participants/101-999/randomize", {{"signature_password", test::kFixturePassword}},
          "not known at this node");
  refused(n, carla, 400, "POST", "/api/v1/participants/" + number + "/randomize", json::object(),
          "electronic signature");
  refused(n, carla, 401, "POST", "/api/v1/participants/" + number + "/randomize", {{"signature_password", "wrong"}},
          "electronic signature did not verify");
  auto r = n.randomize(carla, number);
  REQUIRE(r.status == 200);
  CHECK(r.body["randomization_number"].get<std::string>().rfind("R", 0) == 0);
  REQUIRE(r.body["kits"].size() == 1);
  auto kit = r.body["kits"][0]["kit"].get<std::string>();
  CHECK(kit != n.fixture().expired_kit);
  CHECK(kit != n.fixture().near_expiry_kit);
  refused(n, carla, 409, "POST", "/api/v1/participants/" + number + "/randomize",
          {{"signature_password", test::kFixturePassword}}, "already randomized");
  refused(n, carla, 409, "POST", "/api/v1/participants/" + failed.body["participant"]["participant"].get<std::string>() +
                                     "/randomize",
          {{"signature_password", test::kFixturePassword}}, "cannot be randomized");

  // Dispensing.
  auto path = "/api/v1/participants/" + number + "/dispense";
  refused(n, paul, 404, "POST", path, {{"visit", "V9"}}, "not in the schedule");
  refused(n, paul, 400, "POST", path, json::object(), "visit is required");
  refused(n, paul, 409, "POST", path, {{"visit", "V2"}}, "outside its window");
  refused(n, paul, 400, "POST", path, {{"visit", "V2"}, {"override_reason", "travel"}}, "electronic signature");
  refused(n, paul, 404, "POST", path,
          {{"visit", "V1"}, {"replace_kit", "999999"}, {"reason", "dropped"}, {"signature_password", test::kFixturePassword}},
          "was not dispensed");
  refused(n, paul, 400, "POST", path, {{"visit", "V1"}, {"replace_kit", kit}, {"signature_password", test::kFixturePassword}},
          "reason is required");
  auto d = n.call("POST", path, paul,
                  {{"visit", "V2"}, {"override_reason", "patient travels"}, {"signature_password", test::kFixturePassword}});
  REQUIRE(d.status == 200);
  CHECK(d.body["deviation"] == true);
  refused(n, paul, 409, "POST", path, {{"visit", "V2"}, {"override_reason", "again"}, {"signature_password", test::kFixturePassword}},
          "already dispensed");
  auto replaced = n.call("POST", path, paul,
                         {{"visit", "V1"}, {"replace_kit", kit}, {"replace_condition", "damaged"}, {"reason", "cracked"},
                          {"signature_password", test::kFixturePassword}});
  REQUIRE(replaced.status == 200);
  CHECK(replaced.body["kits"][0]["kit"] != kit);

  // Code break, withdrawal.
  auto ines = n.login("ines");
  refused(n, carla, 403, "POST", "/api/v1/participants/" + number + "/unblind",
          {{"reason", "x"}, {"signature_password", test::kFixturePassword}}, "may not break the code");
  refused(n, ines, 400, "POST", "/api/v1/participants/" + number + "/unblind",
          {{"signature_password", test::kFixturePassword}}, "reason is required");
  auto u = n.call("POST", "/api/v1/participants/" + number + "/unblind", ines,
                  {{"reason", "anaphylaxis"}, {"signature_password", test::kFixturePassword}});
  REQUIRE(u.status == 200);
  CHECK(u.body["code_break"] == true);
  CHECK((u.body["arm"]["id"] == "A" || u.body["arm"]["id"] == "B"));
  refused(n, carla, 400, "POST", "/api/v1/participants/" + number + "/withdraw", json::object(), "reason is required");
  refused(n, carla, 404, "POST", "/api/v1/participants/101-998/withdraw", {{"reason", "x"}}, "not known");
  // Withdrawal is signed: a wrong password is refused and records nothing.
  refused(n, carla, 401, "POST", "/api/v1/participants/" + number + "/withdraw",
          {{"reason", "moved"}, {"signature_password", "not my password"}}, "electronic signature did not verify");
  refused(n, carla, 400, "POST", "/api/v1/participants/" + number + "/withdraw", {{"reason", "moved"}},
          "withdrawal needs your electronic signature");
  CHECK(n.call("GET", "/api/v1/participants/" + number, carla).body["status"] == "randomized");
  CHECK(n.call("POST", "/api/v1/participants/" + number + "/withdraw", carla,
               {{"reason", "moved"}, {"signature_password", test::kFixturePassword}})
            .status == 200);
  auto withdrawn = n.call("GET", "/api/v1/participants/" + number, carla).body;
  CHECK(withdrawn["status"] == "withdrawn");
  CHECK(withdrawn["withdrawal_reason"] == "moved");
  CHECK(withdrawn["withdrawn_by"] == "carla");
  CHECK(withdrawn["withdrawn_on"].get<std::string>().size() == 10);  // YYYY-MM-DD

  // Inventory: receipt, quarantine, returns.
  const auto& pending = n.fixture().pending_shipment();
  refused(n, carla, 404, "POST", "/api/v1/shipments/SHP-9/receive", {{"kits", {{{"kit", "1"}}}}}, "not expected");
  refused(n, carla, 404, "POST", "/api/v1/shipments/" + pending.shipment_id + "/receive",
          {{"kits", {{{"kit", kit}, {"condition", "received"}}}}}, "not part of shipment");
  refused(n, carla, 400, "POST", "/api/v1/shipments/" + pending.shipment_id + "/receive",
          {{"kits", {{{"kit", pending.kits[0].kit_number}, {"condition", "damaged"}}}}}, "electronic signature");
  auto rec = n.call("POST", "/api/v1/shipments/" + pending.shipment_id + "/receive", carla,
                    {{"kits", {{{"kit", pending.kits[0].kit_number}, {"condition", "received"}},
                               {{"kit", pending.kits[1].kit_number}, {"condition", "missing"}}}}});
  REQUIRE(rec.status == 200);
  refused(n, carla, 404, "POST", "/api/v1/kits/424242/quarantine", {{"reason", "fridge"}}, "not in this site's custody");
  refused(n, carla, 400, "POST", "/api/v1/kits/" + pending.kits[0].kit_number + "/quarantine", json::object(),
          "reason is required");
  refused(n, carla, 409, "POST", "/api/v1/kits/" + kit + "/quarantine", {{"reason", "fridge"}}, "only kits available");
  auto q = n.call("POST", "/api/v1/kits/" + pending.kits[0].kit_number + "/quarantine", carla,
                  {{"reason", "fridge at 12 C"}, {"temperature_celsius", 12.5}});
  REQUIRE(q.status == 200);
  CHECK(q.body["kit"]["status"] == "quarantined");
  auto inv = n.call("GET", "/api/v1/inventory?status=quarantined", carla);
  REQUIRE(inv.body["kits"].size() == 1);
  auto expired = n.call("GET", "/api/v1/inventory?kit=" + n.fixture().expired_kit, carla);
  CHECK(expired.body["kits"][0]["status"] == "available");
  refused(n, carla, 400, "GET", "/api/v1/inventory?expiring_before=tomorrow", nullptr, "YYYY-MM-DD");
  auto d_kit = d.body["kits"][0]["kit"].get<std::string>();
  refused(n, carla, 400, "POST", "/api/v1/kits/" + d_kit + "/return", json::object(), "units_returned");
  CHECK(n.call("POST", "/api/v1/kits/" + d_kit + "/return", carla, {{"units_returned", 12}}).status == 200);

  auto status = n.call("GET", "/api/v1/status", carla).body;
  CHECK(status["online"] == false);
  CHECK(status["pending_events"].get<int>() > 5);
  CHECK(status["slots_left"].size() == 2);
  CHECK(status["kits"]["quarantined"] == 1);
  n.stop();
  auto verify = test::run({IRT_NODE_BIN, "verify", "--data", n.fixture().dir().string()}, "",
                          {std::string("IRT_PASSPHRASE=") + test::kFixturePassphrase});
  CHECK_MESSAGE(verify.exit_code == 0, verify.err);
}

TEST_CASE("node API: every text, id and list field over its limit is a 400 naming the field and the limit") {
  NodeServer n;
  auto carla = n.login("carla");
  auto number = n.screen(carla);
  const std::string p = "/api/v1/participants/" + number;
  const std::string kit = n.fixture().expired_kit;
  const std::string text(2001, 'x'), id(65, 'k');
  json many_kits = json::array(), many_answers = json::array(), many_factors = json::object();
  for (int i = 0; i < 501; ++i) {
    many_kits.push_back({{"kit", "K" + std::to_string(i)}});
    many_answers.push_back("yes");
    many_factors["f" + std::to_string(i)] = "no";
  }
  struct Case {
    std::string path;
    json body;
    std::string message;
  };
  const std::string text_over = ": at most 2000 characters (got 2001); shorten it";
  const std::string id_over = ": at most 64 characters (got 65); shorten it";
  const std::string list_over = ": at most 500 items (got 501); send the rest in another request";
  const json screen = {{"factors", {{"diabetes", "no"}}}, {"eligibility", n.yes()}};
  auto with = [](json body, const std::string& field, const json& value) {
    body[field] = value;
    return body;
  };
  const std::vector<Case> cases = {
      {"/api/v1/login", {{"user", id}, {"password", "x"}}, "user" + id_over},
      {"/api/v1/login", {{"user", "carla"}, {"password", text}}, "password" + text_over},
      {"/api/v1/participants", with(screen, "screen_failure_reason", text), "screen_failure_reason" + text_over},
      {"/api/v1/participants", with(screen, "eligibility", many_answers), "eligibility" + list_over},
      {"/api/v1/participants", with(screen, "eligibility", {id}), "eligibility[0]" + id_over},
      {"/api/v1/participants", with(screen, "factors", many_factors), "factors" + list_over},
      {"/api/v1/participants", with(screen, "factors", {{"diabetes", id}}), "factors.diabetes" + id_over},
      {"/api/v1/participants", with(screen, "factors", {{id, "no"}}), "factors key" + id_over},
      {p + "/randomize", {{"signature_password", text}}, "signature_password" + text_over},
      {p + "/dispense", {{"visit", id}}, "visit" + id_over},
      {p + "/dispense", {{"visit", "V2"}, {"override_reason", text}}, "override_reason" + text_over},
      {p + "/dispense", {{"visit", "V2"}, {"replace_kit", id}}, "replace_kit" + id_over},
      {p + "/dispense", {{"visit", "V2"}, {"replace_condition", id}}, "replace_condition" + id_over},
      {p + "/dispense", {{"visit", "V2"}, {"reason", text}}, "reason" + text_over},
      {p + "/dispense", {{"visit", "V2"}, {"signature_password", text}}, "signature_password" + text_over},
      {p + "/unblind", {{"reason", text}}, "reason" + text_over},
      {p + "/unblind", {{"reason", "SAE"}, {"signature_password", text}}, "signature_password" + text_over},
      {p + "/withdraw", {{"reason", text}}, "reason" + text_over},
      {p + "/transfer", {{"to_site", id}, {"reason", "moved"}}, "to_site" + id_over},
      {p + "/transfer", {{"to_site", "102"}, {"reason", text}}, "reason" + text_over},
      {"/api/v1/shipments/S-1/receive", {{"kits", many_kits}}, "kits" + list_over},
      {"/api/v1/shipments/S-1/receive", {{"kits", {{{"kit", id}}}}}, "kits[0].kit" + id_over},
      {"/api/v1/shipments/S-1/receive", {{"kits", {{{"kit", kit}, {"condition", id}}}}}, "kits[0].condition" + id_over},
      {"/api/v1/shipments/S-1/receive", {{"kits", {{{"kit", kit}}}}, {"signature_password", text}},
       "signature_password" + text_over},
      {"/api/v1/kits/" + kit + "/quarantine", {{"reason", text}}, "reason" + text_over},
      {"/api/v1/kits/" + kit + "/destroy", {{"reason", text}}, "reason" + text_over},
      {"/api/v1/kits/" + kit + "/destroy", {{"reason", "broken"}, {"signature_password", text}},
       "signature_password" + text_over},
  };
  for (const auto& c : cases) {
    CAPTURE(c.path);
    CAPTURE(c.message);
    auto before = n.snapshot(carla);
    auto r = n.call("POST", c.path, c.path == "/api/v1/login" ? "" : carla, c.body);
    CHECK(r.status == 400);
    CHECK(r.body["error"]["code"] == "invalid_input");
    CHECK(r.body["error"]["message"] == c.message);
    CHECK(n.snapshot(carla) == before);
  }
  // Characters, not bytes: 2000 two-byte characters are within the limit.
  std::string accented;
  for (int i = 0; i < 2000; ++i) accented += "\xc3\xa9";
  auto ok = n.call("POST", p + "/withdraw", carla, {{"reason", accented}, {"signature_password", test::kFixturePassword}});
  CHECK_MESSAGE(ok.status == 200, ok.body.dump());
}

TEST_CASE("node API: a kit the hub asked to relabel is confirmed once, by a role that handles the stock") {
  test::NodeFixtureOptions o;
  o.relabel_kits = 2;
  NodeServer n(o);
  const auto& kits = n.fixture().relabel_kits;
  REQUIRE(kits.size() == 2);
  auto paul = n.login("paul"), nadia = n.login("nadia");
  auto listed = [&] {
    std::vector<std::string> out;
    auto inventory = n.call("GET", "/api/v1/inventory", paul).body;
    for (const auto& k : inventory["kits"])
      if (k.contains("relabel_expiry")) out.push_back(k["kit"]);
    return out;
  };
  CHECK(listed().size() == 2);
  refused(n, nadia, 403, "POST", "/api/v1/kits/" + kits[0] + "/relabelled", json::object(), "may not");
  auto done = n.call("POST", "/api/v1/kits/" + kits[0] + "/relabelled", paul, json::object());
  REQUIRE_MESSAGE(done.status == 200, done.body.dump());
  CHECK(done.body["kit"]["kit"] == kits[0]);
  CHECK(done.body["kit"]["expiry"] == n.fixture().relabel_expiry);
  CHECK_FALSE(done.body["kit"].contains("relabel_expiry"));
  CHECK(listed() == std::vector<std::string>{kits[1]});
  refused(n, paul, 409, "POST", "/api/v1/kits/" + kits[0] + "/relabelled", json::object(), "no new label to print");
}

TEST_CASE("node API: a body over 1 MiB is a 413 with a JSON error and changes nothing") {
  NodeServer n;
  auto carla = n.login("carla");
  auto before = n.snapshot(carla);
  auto r = n.call("POST", "/api/v1/participants", carla,
                  {{"factors", {{"diabetes", "no"}}}, {"eligibility", n.yes()},
                   {"screen_failure_reason", std::string((1 << 20) + 10, 'x')}});
  CHECK(r.status == 413);
  CHECK(r.body["error"]["code"] == "invalid_input");
  CHECK(r.body["error"]["message"].get<std::string>().find("larger than 1024 KiB") != std::string::npos);
  CHECK(n.snapshot(carla) == before);
}

TEST_CASE("node API: a POST with no Content-Length is refused saying so, and an unknown path is a 404") {
  NodeServer n;
  // What `curl -X POST URL` sends: no body and no Content-Length (Debian's curl: packaging/dev.sh installs it).
  const std::string url = "http://127.0.0.1:" + std::to_string(n.port());
  auto bare = test::run({"/usr/bin/curl", "-s", "-X", "POST", "-w", "\n%{http_code}", url + "/api/v1/sync"});
  REQUIRE(bare.exit_code == 0);
  CHECK(bare.out.find("a POST needs a Content-Length header") != std::string::npos);
  CHECK(bare.out.find("no such endpoint") == std::string::npos);
  CHECK(bare.out.substr(bare.out.rfind('\n') + 1) == "400");
  auto unknown = n.call("GET", "/api/v1/no-such-thing");
  CHECK(unknown.status == 404);
  CHECK(unknown.body["error"]["message"].get<std::string>().find("no such endpoint") != std::string::npos);
}

TEST_CASE("node API: expired and near-expiry kits are never handed out and the refusal says what is missing") {
  test::NodeFixtureOptions o;
  o.kits_per_type = 0;  // only the expired and the near-expiry kit of each type
  NodeServer n(o);
  auto carla = n.login("carla");
  auto number = n.screen(carla);
  auto before = n.snapshot(carla);
  auto r = n.randomize(carla, number);
  CHECK(r.status == 409);
  CHECK(r.body["error"]["code"] == "exhausted");
  CHECK(r.body["error"]["message"] == "no dispensable kit for participant " + number +
                                         " at visit V1 in this site's custody, so the participant is not randomized; "
                                         "nothing was changed; the shortage is recorded and the supply team is "
                                         "alerted at the next sync");
  // Nothing changed but the log, which holds the shortage for the hub.
  auto after = n.snapshot(carla);
  CHECK(after["status"]["last_seq"] == before["status"]["last_seq"].get<int>() + 1);
  for (auto* j : {&before, &after}) {
    (*j)["status"].erase("last_seq");
    (*j)["status"].erase("pending_events");
  }
  CHECK(after == before);
}

TEST_CASE("node API: blinded roles never see an arm - a kit type or a lot - the pharmacist does") {
  NodeServer n;
  auto study = shared::load_study_file(test::source_path("packaging/examples/study-blocks.json")).study.value();
  std::set<std::string> words;
  std::vector<std::string> fragments;
  for (const auto& a : study.arms) {
    words.insert(a.id);
    fragments.push_back(a.name);
  }
  for (const auto& k : study.kit_types) {
    words.insert(k.id);
    fragments.push_back(k.name);
  }
  for (const auto& k : n.fixture().first_shipment().kits) words.insert(k.lot);
  // The protocol title ("Velcardin versus placebo ...") is public; arm and kit names are not.

  auto carla = n.login("carla");
  auto paul = n.login("paul");
  std::vector<std::string> numbers;
  std::vector<json> responses;
  for (int i = 0; i < 3; ++i) {
    auto number = n.screen(carla, i % 2 ? "yes" : "no");
    auto r = n.randomize(carla, number);
    REQUIRE(r.status == 200);
    responses.push_back(r.body);
    numbers.push_back(number);
  }
  responses.push_back(n.call("POST", "/api/v1/participants/" + numbers[0] + "/dispense", carla,
                             {{"visit", "V2"}, {"override_reason", "travel"}, {"signature_password", test::kFixturePassword}})
                          .body);
  responses.push_back(n.call("POST", "/api/v1/shipments/SHP-0002/receive", carla,
                             {{"kits", {{{"kit", n.fixture().pending_shipment().kits[0].kit_number}}}}})
                          .body);
  for (const auto& r : responses) CHECK_MESSAGE(!reveals(r, words, fragments), r.dump());
  // An exhaustion message, as a blinded role sees it.
  for (const std::string role_user : {"carla", "ines", "nadia", "mona"}) {
    auto token = n.login(role_user);
    std::vector<std::string> paths = {"/api/v1/status", "/api/v1/study", "/api/v1/participants", "/api/v1/inventory",
                                      "/api/v1/shipments"};
    for (const auto& num : numbers) paths.push_back("/api/v1/participants/" + num);
    for (const auto& p : paths) {
      auto r = n.call("GET", p, token);
      CHECK_MESSAGE(!reveals(r.body, words, fragments), role_user << " " << p << ": " << r.body.dump());
    }
  }
  auto as_pharmacist = n.call("GET", "/api/v1/participants/" + numbers[0], paul);
  CHECK(as_pharmacist.body["arm"]["name"].is_string());
  auto inventory = n.call("GET", "/api/v1/inventory?status=dispensed", paul);
  CHECK(inventory.body["kits"][0]["arm"]["id"].is_string());
  CHECK(inventory.body["kits"][0]["kit_type"].is_string());
}

TEST_CASE("node API: blinded roles get the same answers for participants of either arm when one arm's kits are short") {
  NodeServer n;
  auto carla = n.login("carla");
  auto paul = n.login("paul");
  const std::vector<std::string> blinded = {carla, n.login("ines"), n.login("nadia")};
  // One randomized participant per arm; only the pharmacist can tell which.
  struct Participant {
    std::string number;
    json randomized;
    std::vector<std::string> own;
  };
  std::map<std::string, Participant> by_arm;
  for (int i = 0; i < 8 && by_arm.size() < 2; ++i) {
    auto number = n.screen(carla);
    auto r = n.randomize(carla, number);
    REQUIRE(r.status == 200);
    auto arm = n.call("GET", "/api/v1/participants/" + number, paul).body["arm"]["id"].get<std::string>();
    if (by_arm.count(arm)) continue;
    std::vector<std::string> own = {number, r.body["randomization_number"].get<std::string>()};
    for (const auto& k : r.body["kits"]) own.push_back(k["kit"].get<std::string>());
    r.body.erase("event_seq");
    by_arm[arm] = {number, r.body, own};
  }
  REQUIRE(by_arm.size() == 2);
  const auto& a = by_arm["A"];
  const auto& b = by_arm["B"];
  CHECK(anonymous(a.randomized, a.own) == anonymous(b.randomized, b.own));

  // The pharmacist quarantines the arm's stock until `keep` kits (the latest expiring) are left.
  auto leave = [&](const std::string& arm, std::size_t keep) {
    std::vector<json> stock;
    auto available = n.call("GET", "/api/v1/inventory?status=available", paul).body;
    for (const auto& k : available["kits"])
      if (k["arm"]["id"] == arm) stock.push_back(k);
    REQUIRE(stock.size() > keep);
    std::sort(stock.begin(), stock.end(), [](const json& x, const json& y) { return x["expiry"] > y["expiry"]; });
    for (std::size_t i = keep; i < stock.size(); ++i)
      REQUIRE(n.call("POST", "/api/v1/kits/" + stock[i]["kit"].get<std::string>() + "/quarantine", paul,
                     {{"reason", "fridge at 31 C for 3 h"}, {"temperature_celsius", 31}})
                  .status == 200);
  };
  // What each blinded role receives about the participant: its view, a dispensing of V3 (two kits,
  // outside the window) with a wrong password and with its own, and whether anything else changed.
  auto answers = [&](const Participant& p) {
    json out = json::array();
    for (const auto& token : blinded) {
      auto path = "/api/v1/participants/" + p.number;
      auto before = n.snapshot(token);
      auto wrong = n.call("POST", path + "/dispense", token,
                          {{"visit", "V3"}, {"override_reason", "patient travels"}, {"order_reason", "V2 postponed"}, {"signature_password", "nope"}});
      auto refused = n.call("POST", path + "/dispense", token,
                            {{"visit", "V3"}, {"override_reason", "patient travels"}, {"order_reason", "V2 postponed"},
                             {"signature_password", test::kFixturePassword}});
      auto after = n.snapshot(token);
      CHECK(after["status"]["last_seq"] == before["status"]["last_seq"].get<int>() + 1);
      for (auto* j : {&before, &after}) {
        (*j)["status"].erase("last_seq");
        (*j)["status"].erase("pending_events");
      }
      out.push_back({{"view", n.call("GET", path, token).body},
                     {"wrong_password", {wrong.status, wrong.body}},
                     {"refused", {refused.status, refused.body}},
                     {"unchanged", after == before}});
    }
    return anonymous(out, p.own);
  };
  // Arm A one kit short, arm B well stocked.
  leave("A", 1);
  auto for_a = answers(a);
  // Arm B two kits short, arm A restocked by the pending shipment.
  json receipt = json::array();
  for (const auto& k : n.fixture().pending_shipment().kits) receipt.push_back({{"kit", k.kit_number}});
  REQUIRE(n.call("POST", "/api/v1/shipments/SHP-0002/receive", carla, {{"kits", receipt}}).status == 200);
  leave("B", 0);
  auto for_b = answers(b);

  CHECK(for_a == for_b);
  for (const auto& r : for_a) {
    CHECK(r["wrong_password"][0] == 401);
    CHECK(r["wrong_password"][1]["error"]["message"].get<std::string>().find("electronic signature did not verify") !=
          std::string::npos);
    CHECK(r["refused"][0] == 409);
    CHECK(r["refused"][1]["error"]["code"] == "exhausted");
    CHECK(r["refused"][1]["error"]["message"] ==
          "no dispensable kit for participant # at visit V3 in this site's custody; nothing was changed; the "
          "shortage is recorded and the supply team is alerted at the next sync");
    CHECK(r["unchanged"] == true);
  }
}

TEST_CASE("node API: kill -9 during a burst of randomizations loses no acknowledged one and reuses no slot or kit") {
  test::NodeFixtureOptions o;
  o.slots_per_stratum = 40;
  o.kits_per_type = 50;
  NodeServer n(o);
  auto carla = n.login("carla");
  std::vector<std::string> numbers;
  for (int i = 0; i < 40; ++i) numbers.push_back(n.screen(carla, i % 2 ? "yes" : "no"));
  std::mutex m;
  std::map<std::string, json> acknowledged;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> killed{false};
  auto worker = [&] {
    for (;;) {
      auto i = next++;
      if (i >= numbers.size() || killed) return;
      auto r = n.randomize(carla, numbers[i]);
      if (r.status == 200) {
        std::lock_guard lock(m);
        acknowledged[numbers[i]] = r.body;
      }
    }
  };
  std::thread a(worker), b(worker);
  for (int spins = 0; spins < 2000; ++spins) {
    {
      std::lock_guard lock(m);
      if (acknowledged.size() >= 12) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  n.kill_hard();
  killed = true;
  a.join();
  b.join();
  REQUIRE(acknowledged.size() >= 12);
  REQUIRE(acknowledged.size() < numbers.size());

  n.start();
  carla = n.login("carla");
  std::set<std::string> kits, randomization_numbers;
  std::size_t randomized = 0;
  for (const auto& number : numbers) {
    auto p = n.call("GET", "/api/v1/participants/" + number, carla).body;
    if (p["status"] != "randomized") {
      CHECK_FALSE(acknowledged.count(number));
      continue;
    }
    ++randomized;
    CHECK(randomization_numbers.insert(p["randomization_number"].get<std::string>()).second);
    for (const auto& k : p["visits"][0]["kits"]) CHECK(kits.insert(k["kit"].get<std::string>()).second);
    if (acknowledged.count(number)) {
      CHECK(p["randomization_number"] == acknowledged[number]["randomization_number"]);
      CHECK(p["visits"][0]["kits"][0]["kit"] == acknowledged[number]["kits"][0]["kit"]);
    }
  }
  CHECK(randomized >= acknowledged.size());
  auto inv = n.call("GET", "/api/v1/inventory?status=dispensed", carla).body;
  CHECK(inv["kits"].size() == kits.size());
  // The rest still randomize after the restart, from the next free slots.
  for (const auto& number : numbers)
    if (n.call("GET", "/api/v1/participants/" + number, carla).body["status"] == "screened")
      CHECK(n.randomize(carla, number).status == 200);
  n.stop();
  auto verify = test::run({IRT_NODE_BIN, "verify", "--data", n.fixture().dir().string()}, "",
                          {std::string("IRT_PASSPHRASE=") + test::kFixturePassphrase});
  CHECK_MESSAGE(verify.exit_code == 0, verify.out << verify.err);
}

TEST_CASE("node API: a path id that is not UTF-8 is refused with 400 and a JSON body on every route that takes one") {
  NodeServer n;
  auto carla = n.login("carla");
  const std::string bad = "%ff%fe";
  const json sign = {{"signature_password", test::kFixturePassword}};
  struct Route {
    std::string method, path, noun;
    json body;
  };
  std::vector<Route> routes = {
      {"GET", "/api/v1/participants/" + bad, "participant", nullptr},
      {"POST", "/api/v1/participants/" + bad + "/randomize", "participant", sign},
      {"POST", "/api/v1/participants/" + bad + "/dispense", "participant", {{"visit", "V2"}}},
      {"POST", "/api/v1/participants/" + bad + "/unblind", "participant",
       {{"reason", "emergency"}, {"signature_password", test::kFixturePassword}}},
      {"POST", "/api/v1/participants/" + bad + "/withdraw", "participant", {{"reason", "moved away"}}},
      {"POST", "/api/v1/participants/" + bad + "/complete", "participant", nullptr},
      {"POST", "/api/v1/participants/" + bad + "/transfer", "participant", {{"to_site", "102"}, {"reason", "moved"}}},
      {"POST", "/api/v1/shipments/" + bad + "/receive", "shipment",
       {{"kits", json::array()}, {"signature_password", test::kFixturePassword}}},
      {"POST", "/api/v1/kits/" + bad + "/quarantine", "kit", {{"reason", "fridge at 12C"}}},
      {"POST", "/api/v1/kits/" + bad + "/return", "kit", {{"units_returned", 1}}},
      {"POST", "/api/v1/kits/" + bad + "/destroy", "kit",
       {{"reason", "expired"}, {"signature_password", test::kFixturePassword}}},
  };
  for (const auto& r : routes) {
    CAPTURE(r.path);
    refused(n, carla, 400, r.method, r.path, r.body, r.noun + " id: not valid UTF-8");
  }
  // Valid UTF-8 that is not a known id is echoed intact.
  auto e = n.call("GET", "/api/v1/participants/%C3%A9", carla);
  CHECK(e.status == 404);
  CHECK(e.body["error"]["message"].get<std::string>().find("participant \u00e9 is not known") != std::string::npos);
}

TEST_CASE("node API: a screen request repeated with one Idempotency-Key creates one participant and answers the same") {
  NodeServer n;
  auto carla = n.login("carla");
  auto count = [&] { return n.call("GET", "/api/v1/participants", carla).body["participants"].size(); };
  auto before = count();
  json body = {{"factors", {{"diabetes", "no"}}}, {"eligibility", n.yes()}};
  auto first = n.post("/api/v1/participants", carla, body, {{"Idempotency-Key", "3f6c1d2e-screen-1"}});
  auto again = n.post("/api/v1/participants", carla, body, {{"Idempotency-Key", "3f6c1d2e-screen-1"}});
  REQUIRE(first.status == 200);
  CHECK(again.status == 200);
  CHECK(again.body == first.body);
  CHECK_FALSE(first.headers.count("Idempotent-Replayed"));
  CHECK(again.headers.find("Idempotent-Replayed")->second == "true");
  CHECK(count() == before + 1);

  // Remembered durably: still replayed after kill -9 and a restart, still one participant.
  n.kill_hard();
  n.start();
  carla = n.login("carla");
  auto after = n.post("/api/v1/participants", carla, body, {{"Idempotency-Key", "3f6c1d2e-screen-1"}});
  CHECK(after.status == 200);
  CHECK(after.body == first.body);
  CHECK(count() == before + 1);

  // A key is the user's own: another user's identical request with it is a new one.
  auto ines = n.login("ines");
  auto other = n.post("/api/v1/participants", ines, body, {{"Idempotency-Key", "3f6c1d2e-screen-1"}});
  CHECK(other.status == 200);
  CHECK(other.body["participant"]["participant"] != first.body["participant"]["participant"]);
  CHECK(count() == before + 2);
}

TEST_CASE("node API: without an Idempotency-Key two identical screen requests create two participants") {
  NodeServer n;
  auto carla = n.login("carla");
  auto a = n.screen(carla), b = n.screen(carla);
  CHECK(a != b);
}

TEST_CASE("node API: an Idempotency-Key reused for another body or route is refused and changes nothing") {
  NodeServer n;
  auto carla = n.login("carla");
  json body = {{"factors", {{"diabetes", "no"}}}, {"eligibility", n.yes()}};
  auto first = n.post("/api/v1/participants", carla, body, {{"Idempotency-Key", "key-7"}});
  REQUIRE(first.status == 200);
  std::string number = first.body["participant"]["participant"];
  auto before = n.snapshot(carla);
  json other = {{"factors", {{"diabetes", "yes"}}}, {"eligibility", n.yes()}};
  auto r = n.post("/api/v1/participants", carla, other, {{"Idempotency-Key", "key-7"}});
  CHECK(r.status == 409);
  CHECK(r.body["error"]["message"].get<std::string>().find("already used for another request") != std::string::npos);
  r = n.post("/api/v1/participants/" + number + "/randomize", carla, {{"signature_password", test::kFixturePassword}},
             {{"Idempotency-Key", "key-7"}});
  CHECK(r.status == 409);
  CHECK(n.snapshot(carla) == before);
}

TEST_CASE("node API: a refused request is not remembered under its Idempotency-Key, and bad keys are refused") {
  NodeServer n;
  auto carla = n.login("carla");
  auto number = n.screen(carla);
  json wrong = {{"signature_password", "not my password"}};
  auto r = n.post("/api/v1/participants/" + number + "/randomize", carla, wrong, {{"Idempotency-Key", "rnd-1"}});
  CHECK(r.status == 401);
  json right = {{"signature_password", test::kFixturePassword}};
  auto ok = n.post("/api/v1/participants/" + number + "/randomize", carla, right, {{"Idempotency-Key", "rnd-1"}});
  CHECK(ok.status == 200);
  auto replay = n.post("/api/v1/participants/" + number + "/randomize", carla, right, {{"Idempotency-Key", "rnd-1"}});
  CHECK(replay.status == 200);
  CHECK(replay.body == ok.body);
  // The password is not part of the remembered body, and a replay still needs it to match.
  auto unsigned_replay = n.post("/api/v1/participants/" + number + "/randomize", carla, wrong,
                                {{"Idempotency-Key", "rnd-1"}});
  CHECK(unsigned_replay.status == 401);
  CHECK(unsigned_replay.body["error"]["message"].get<std::string>().find("electronic signature") != std::string::npos);

  auto before = n.snapshot(carla);
  json body = {{"factors", {{"diabetes", "no"}}}, {"eligibility", n.yes()}};
  for (const std::string& key : {std::string(129, 'k'), std::string("two words")}) {
    auto bad = n.post("/api/v1/participants", carla, body, {{"Idempotency-Key", key}});
    CHECK(bad.status == 400);
    CHECK(bad.body["error"]["message"].get<std::string>().find("Idempotency-Key") != std::string::npos);
  }
  CHECK(n.snapshot(carla) == before);
}

TEST_CASE("node API: the node's database and its WAL and SHM files are private to its account (0600)") {
  auto old = ::umask(022);  // the usual default, which would leave them readable by everyone
  {
    NodeServer n;
    n.screen(n.login("carla"));  // a write through the running node: its WAL and SHM are in use
    for (const char* name : {"node.db", "node.db-wal", "node.db-shm"}) {
      CAPTURE(name);
      struct stat st {};
      REQUIRE(::stat((n.fixture().dir() / name).c_str(), &st) == 0);
      CHECK((st.st_mode & 0777) == 0600);
    }
  }
  ::umask(old);
}

TEST_CASE("node API: Sync now runs a round at once while offline, sooner than the node's backoff would") {
  NodeServer n;
  auto token = n.login("carla");
  auto rounds = [&] { return n.call("GET", "/api/v1/status", token).body["sync_rounds"].get<int>(); };
  // No hub: each round fails and the next waits longer (1 s, 2 s, 4 s, 8 s, each x0.5 to x1.5).
  // After three rounds the schedule alone runs at most two more in the next 6 s.
  for (int i = 0; i < 200 && rounds() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(rounds() >= 3);
  for (int press = 0; press < 4; ++press) {
    auto asked = n.call("POST", "/api/v1/sync", token);
    REQUIRE(asked.status == 200);
    const int before = asked.body["rounds"].get<int>();
    int now = before;
    for (int i = 0; i < 30 && now == before; ++i) {  // at most 1.5 s
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      now = rounds();
    }
    CHECK_MESSAGE(now > before, "press " << press << ": no round within 1.5 s");
  }
  auto st = n.call("GET", "/api/v1/status", token).body;
  CHECK(st["sync_state"] == "offline");
  CHECK_FALSE(st["sync_error"].get<std::string>().empty());
  CHECK(n.call("POST", "/api/v1/sync").status == 401);
}
