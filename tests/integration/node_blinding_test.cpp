// Who sees the allocation through the node's /api/v1, for each of the study's
// blinding modes (open, single, double) and each of the ten roles every study
// defines, against a real `irt-node serve` on loopback: every read route's
// answer, the answers of the changing routes, and the refusal of a visit the
// site's stock cannot cover, each checked for the presence or the absence of
// arms, kit types, kit type names and lots (docs/study-config.md, "Who sees
// the allocation").
#include <doctest/doctest.h>
#include <httplib.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "crypto/password.h"
#include "tests/support/node_api_client.h"
#include "tests/support/node_fixture.h"
#include "tests/support/test_support.h"

using namespace irt;
using nlohmann::json;

namespace {

const std::vector<std::string> kRoles = {"investigator", "coordinator",   "nurse",   "pharmacist",
                                         "monitor",      "study-manager", "supply-manager",
                                         "unblinded-statistician",        "admin",   "auditor"};

// The roles of packaging/examples/study-blocks.json holding `dispense`.
const std::set<std::string> kDispensers = {"investigator", "coordinator", "nurse", "pharmacist"};

using Reply = test::ApiReply;

// A node whose study has `blinding`, with one roster user per role (named after it).
class BlindingNode {
 public:
  explicit BlindingNode(const std::string& blinding) {
    auto doc = json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
    doc["blinding"] = blinding;
    test::write_file(tmp_ / "study.json", doc.dump(2));
    test::NodeFixtureOptions o;
    o.study_file = (tmp_ / "study.json").string();
    o.kits_per_type = 3;  // two randomizations and one V2 leave at most one kit of an arm: V3 (two kits) is short
    o.pending_kits_per_type = 0;
    fixture_ = std::make_unique<test::NodeFixture>(tmp_ / "node", o);
    {
      auto state = fixture_->open();
      json roster = {{"users", json::array()}};
      auto hash = crypto::password_hash(test::kFixturePassword, crypto::kTest);
      for (const auto& role : kRoles)
        roster["users"].push_back({{"name", role}, {"role", role}, {"sites", json::array({"101"})}, {"password_hash", hash}});
      auto st = fixture_->send(*state, "roster", roster);
      REQUIRE_MESSAGE(st, st.error().message);
    }
    port_ = test::free_port();
    process_ = test::serve_node(fixture_->dir(), port_, tmp_ / "node.log");
  }
  ~BlindingNode() { process_->terminate(); }

  Reply call(const std::string& method, const std::string& path, const std::string& token = "",
             const json& body = nullptr) {
    return test::api_call(port_, method, path, token, body);
  }
  Reply login(const std::string& user) {
    return call("POST", "/api/v1/login", "", {{"user", user}, {"password", test::kFixturePassword}});
  }
  std::string token(const std::string& user) {
    auto r = login(user);
    REQUIRE(r.status == 200);
    return r.body["token"];
  }

 private:
  test::TempDir tmp_;
  std::unique_ptr<test::NodeFixture> fixture_;
  int port_ = 0;
  std::unique_ptr<test::Process> process_;
};

// The allocation's words: arm ids and names, kit type ids and names, lots.
struct Secrets {
  std::set<std::string> words;
  std::vector<std::string> fragments;
  Secrets() {
    auto study = shared::load_study_file(test::source_path("packaging/examples/study-blocks.json")).study.value();
    for (const auto& a : study.arms) {
      words.insert(a.id);
      fragments.push_back(a.name);
    }
    for (const auto& k : study.kit_types) {
      words.insert(k.id);
      fragments.push_back(k.name);
    }
    fragments.push_back("24L");  // the fixture's lots
  }
  // True when any key or string of `j` names the allocation.
  bool revealed_by(const json& j) const { return test::reveals(j, words, fragments); }
};

// Reads a path of keys and indexes; null where any step is missing.
json at(const json& j, const std::vector<json>& path) {
  const json* cur = &j;
  for (const auto& step : path) {
    if (step.is_string() && cur->is_object() && cur->contains(step.get<std::string>()))
      cur = &(*cur)[step.get<std::string>()];
    else if (step.is_number() && cur->is_array() && step.get<std::size_t>() < cur->size())
      cur = &(*cur)[step.get<std::size_t>()];
    else
      return nullptr;
  }
  return *cur;
}

bool kit_shows_treatment(const json& k) {
  return at(k, {"kit_type"}).is_string() && at(k, {"kit_type_name"}).is_string() && at(k, {"lot"}).is_string() &&
         at(k, {"arm", "id"}).is_string() && at(k, {"arm", "name"}).is_string();
}

// What a route's answer holds when the reader sees the allocation.
bool shows_allocation(const std::string& route, const json& body) {
  if (route == "study") return at(body, {"arms"}).size() == 2 && at(body, {"kit_types"}).size() == 2;
  if (route == "participants") {
    int with_arm = 0;
    for (const auto& p : at(body, {"participants"})) with_arm += at(p, {"arm", "name"}).is_string();
    return with_arm == 2;  // the two randomized participants, not the screened one
  }
  if (route == "participant")
    return at(body, {"arm", "name"}).is_string() && kit_shows_treatment(at(body, {"visits", 0, "kits", 0}));
  if (route == "inventory" || route == "shipments") {
    auto kits = route == "inventory" ? at(body, {"kits"}) : at(body, {"shipments", 0, "kits"});
    if (!kits.is_array() || kits.empty()) return false;
    for (const auto& k : kits)
      if (!kit_shows_treatment(k)) return false;
    return true;
  }
  return false;
}

// Roles that may use a route at all (the study's permissions), whatever the blinding.
bool may_read(const std::string& route, const std::string& role) {
  static const std::map<std::string, std::set<std::string>> kReaders = {
      {"participants", {"investigator", "coordinator", "nurse", "pharmacist", "monitor", "study-manager",
                        "unblinded-statistician", "auditor"}},
      {"inventory", {"investigator", "coordinator", "nurse", "pharmacist", "monitor", "study-manager",
                     "supply-manager", "auditor"}},
      {"shipments", {"investigator", "coordinator", "nurse", "pharmacist", "monitor", "study-manager",
                     "supply-manager", "auditor"}}};
  if (route == "status" || route == "study") return true;
  const auto& readers = kReaders.at(route == "participant" ? "participants" : route);
  return readers.count(role) > 0;
}

// Every role reads every route; those in `seeing` get the allocation, the others nothing of it.
void check_reads(const std::string& blinding, const std::set<std::string>& seeing) {
  BlindingNode n(blinding);
  Secrets secrets;
  auto carla = n.token("coordinator");
  auto paul = n.token("pharmacist");

  // Two randomized participants and a screened one; the first gets V2 too.
  std::vector<std::string> numbers;
  std::vector<json> changes;
  for (int i = 0; i < 3; ++i) {
    auto s = n.call("POST", "/api/v1/participants", carla,
                    {{"factors", {{"diabetes", i % 2 ? "yes" : "no"}}}, {"eligibility", std::vector<std::string>(5, "yes")}});
    REQUIRE(s.status == 200);
    numbers.push_back(s.body["participant"]["participant"]);
  }
  for (int i = 0; i < 2; ++i) {
    auto r = n.call("POST", "/api/v1/participants/" + numbers[static_cast<std::size_t>(i)] + "/randomize", carla,
                    {{"signature_password", test::kFixturePassword}});
    REQUIRE_MESSAGE(r.status == 200, r.body.dump());
    changes.push_back(r.body);
  }
  auto v2 = n.call("POST", "/api/v1/participants/" + numbers[0] + "/dispense", paul,
                   {{"visit", "V2"}, {"override_reason", "patient travels"}, {"signature_password", test::kFixturePassword}});
  REQUIRE_MESSAGE(v2.status == 200, v2.body.dump());
  bool carla_sees = seeing.count("coordinator") > 0;
  // What the coordinator was answered while changing things follows the same rule.
  for (const auto& c : changes) {
    CHECK_MESSAGE(secrets.revealed_by(c) == carla_sees, blinding << " coordinator's randomize answer: " << c.dump());
    CHECK(kit_shows_treatment(at(c, {"kits", 0})) == carla_sees);
    CHECK(at(c, {"participant", "arm", "name"}).is_string() == carla_sees);
  }
  CHECK(kit_shows_treatment(at(v2.body, {"kits", 0})) == (seeing.count("pharmacist") > 0));
  // A kit handed to a nurse's tablet: the answer and the inventory that shows it in transit follow the same rule.
  auto stock = n.call("GET", "/api/v1/inventory?status=available", paul);
  REQUIRE(stock.status == 200);
  REQUIRE_FALSE(stock.body["kits"].empty());
  auto handed = n.call("POST", "/api/v1/kits/handover", carla,
                       {{"to_node", "101-N2"}, {"kits", {stock.body["kits"][0]["kit"]}}, {"reason", "home visit"}});
  REQUIRE_MESSAGE(handed.status == 200, handed.body.dump());
  CHECK_MESSAGE(secrets.revealed_by(handed.body) == carla_sees, blinding << " handover answer: " << handed.body.dump());
  CHECK(kit_shows_treatment(at(handed.body, {"kits", 0})) == carla_sees);

  const std::map<std::string, std::string> routes = {{"status", "/api/v1/status"},
                                                     {"study", "/api/v1/study"},
                                                     {"participants", "/api/v1/participants"},
                                                     {"participant", "/api/v1/participants/" + numbers[0]},
                                                     {"inventory", "/api/v1/inventory"},
                                                     {"shipments", "/api/v1/shipments"}};
  for (const auto& role : kRoles) {
    bool sees = seeing.count(role) > 0;
    auto login = n.login(role);
    REQUIRE(login.status == 200);
    CHECK_MESSAGE(login.body["blinded"] == !sees, blinding << " " << role);
    auto token = login.body["token"].get<std::string>();
    for (const auto& [route, path] : routes) {
      auto r = n.call("GET", path, token);
      INFO(blinding << " " << role << " GET " << path << " -> " << r.status << " " << r.body.dump());
      if (!may_read(route, role)) {
        CHECK(r.status == 403);
        CHECK(r.body["error"]["code"] == "forbidden");
        CHECK(!secrets.revealed_by(r.body));
        continue;
      }
      REQUIRE(r.status == 200);
      if (route == "status") {
        CHECK(!secrets.revealed_by(r.body));  // counts per stratum and kit status only, for every reader
        continue;
      }
      if (sees) CHECK(shows_allocation(route, r.body));
      else CHECK(!secrets.revealed_by(r.body));
    }
    // A refusal: V3 needs two kits of the first participant's arm, and at most one is left.
    auto refusal = n.call("POST", "/api/v1/participants/" + numbers[0] + "/dispense", token,
                          {{"visit", "V3"}, {"override_reason", "patient travels"}, {"order_reason", "V2 postponed"},
                           {"signature_password", test::kFixturePassword}});
    INFO(blinding << " " << role << " V3 -> " << refusal.status << " " << refusal.body.dump());
    if (kDispensers.count(role)) {
      CHECK(refusal.status == 409);
      CHECK(refusal.body["error"]["code"] == "exhausted");
      CHECK(secrets.revealed_by(refusal.body) == sees);
    } else {
      CHECK(refusal.status == 403);
      CHECK(!secrets.revealed_by(refusal.body));
    }
  }
}

}  // namespace

TEST_CASE("node API blinding: in an open study every role sees arms, kit types and lots") {
  check_reads("open", std::set<std::string>(kRoles.begin(), kRoles.end()));
}

TEST_CASE("node API blinding: in a single-blind study the roles that dispense and the unblinded roles see them") {
  check_reads("single", {"investigator", "coordinator", "nurse", "pharmacist", "supply-manager",
                         "unblinded-statistician"});
}

TEST_CASE("node API blinding: in a double-blind study only the unblinded roles see them") {
  check_reads("double", {"pharmacist", "supply-manager", "unblinded-statistician"});
}
