// EDC webhooks end to end (hub/webhooks.h): a real hub process, a real node
// randomizing and dispensing, and a receiver on loopback that fails the first
// attempts and then accepts. Every event reaches it exactly once by delivery
// id, blinded and signed; deliveries pending when the hub is killed are
// delivered after its restart. The hub's retry delays are shortened through
// IRT_TEST_WEBHOOK_TIMING (read by `irt-hub serve`, for tests only).
#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "hub/webhooks.h"
#include "shared/study.h"
#include "tests/support/cluster.h"
#include "tests/support/export_blinding.h"
#include "tests/support/hub_api.h"
#include "tests/support/site_session.h"

using namespace irt;
using nlohmann::json;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kPassword = "a long enough password";
const std::string kSecret = "s3cr3t-edc-shared-value";
const std::string kAdminStdin = std::string(test::kHubAdminPassword) + "\n";

// What the EDC's endpoint saw: every request, and which delivery ids it accepted.
class Receiver {
 public:
  Receiver() {
    server_.Post("/edc/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(m_);
      const auto id = req.get_header_value("X-IRT-Delivery");
      requests_.push_back({id, req.get_header_value("X-IRT-Signature"), req.body});
      const bool fail = failing_ || ++tries_[id] <= 2;  // the first two attempts of each delivery fail
      res.status = fail ? 500 : 200;
      if (!fail) accepted_[id] = req.body;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/edc/hook"; }
  void fail_everything(bool on) {
    std::lock_guard lock(m_);
    failing_ = on;
  }
  struct Request {
    std::string id, signature, body;
  };
  std::vector<Request> requests() {
    std::lock_guard lock(m_);
    return requests_;
  }
  std::map<std::string, std::string> accepted() {  // delivery id -> body
    std::lock_guard lock(m_);
    return accepted_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex m_;
  bool failing_ = false;
  std::vector<Request> requests_;
  std::map<std::string, int> tries_;
  std::map<std::string, std::string> accepted_;
};

// Polls (the hub delivers on its own schedule) until `done`, for at most 20 s.
template <class F>
bool eventually(F done) {
  for (int i = 0; i < 200; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

// Whether `signature` (the X-IRT-Signature header) verifies over `body` with `secret`.
bool verifies(const std::string& signature, const std::string& body, const std::string& secret) {
  if (signature.rfind("t=", 0) != 0 || signature.find(",v1=") == std::string::npos) return false;
  const auto t = std::stoll(signature.substr(2, signature.find(',') - 2));
  return hub::webhook_signature(secret, t, body) == signature;
}

}  // namespace

TEST_CASE("irt-hub webhook add refuses a bad URL, an unknown kind and a missing or empty secret file") {
  HubProcess hub;
  test::TempDir dir;
  test::write_file(dir / "secret", kSecret + "\n");
  test::write_file(dir / "empty", "\n");
  const auto secret = (dir / "secret").string();
  auto add = [&](const std::string& url, const std::string& events, const std::string& file) {
    return hub.cli({"webhook", "add", "--url", url, "--events", events, "--secret-file", file, "--user",
                    test::kHubAdmin},
                   kAdminStdin);
  };
  struct Case {
    test::CommandResult r;
    std::string says;
  };
  const std::vector<Case> bad = {
      {add("http://edc.example.org/hook", "kit.dispensed", secret), "use https://"},
      {add("edc.example.org", "kit.dispensed", secret), "is not of the form https://"},
      {add("https://edc.example.org/hook", "kit.dispensed,kit.eaten", secret), "unknown event kind 'kit.eaten'"},
      {add("https://edc.example.org/hook", "kit.dispensed", (dir / "missing").string()), "cannot read the secret file"},
      {add("https://edc.example.org/hook", "kit.dispensed", (dir / "empty").string()), "is empty"},
  };
  for (const auto& [r, says] : bad) {
    CHECK(r.exit_code != 0);
    CHECK_MESSAGE(r.err.find(says) != std::string::npos, r.err);
    CHECK(r.err.find(kSecret) == std::string::npos);
  }
  // A role without manage_nodes may not add one.
  hub.add_user("monitor.mo", "monitor", "", kPassword);
  auto refused = hub.cli({"webhook", "add", "--url", "https://edc.example.org/hook", "--events", "kit.dispensed",
                          "--secret-file", secret, "--user", "monitor.mo"},
                         kPassword + "\n");
  CHECK(refused.exit_code != 0);
  CHECK(refused.err.find("manage_nodes") != std::string::npos);
  auto listed = hub.read_as_admin({"webhook", "list", "--json"});
  REQUIRE_MESSAGE(listed.exit_code == 0, listed.err);
  CHECK(json::parse(listed.out).empty());

  auto added = add("https://edc.example.org/hook", "kit.dispensed,participant.randomized", secret);
  REQUIRE_MESSAGE(added.exit_code == 0, added.err);
  CHECK(added.out.find(kSecret) == std::string::npos);
  listed = hub.read_as_admin({"webhook", "list", "--json"});
  REQUIRE_MESSAGE(listed.exit_code == 0, listed.err);
  CHECK(listed.out.find(kSecret) == std::string::npos);
  auto hooks = json::parse(listed.out);
  REQUIRE(hooks.size() == 1);
  CHECK(hooks[0]["url"] == "https://edc.example.org/hook");
  CHECK(hooks[0]["events"] == json::array({"kit.dispensed", "participant.randomized"}));
  auto token = test::hub_login(hub.port(), test::kHubAdmin, test::kHubAdminPassword);
  auto api = test::hub_call(hub.port(), "GET", "/api/v1/webhooks", token);
  REQUIRE(api.status == 200);
  CHECK(api.text.find(kSecret) == std::string::npos);
  CHECK(api.body["webhooks"].size() == 1);
  auto monitor = test::hub_login(hub.port(), "monitor.mo", kPassword);
  CHECK(test::hub_call(hub.port(), "GET", "/api/v1/webhooks/deliveries", monitor).status == 403);
  auto audit = hub.read_as_admin({"audit"});
  CHECK(audit.out.find("webhook.added") != std::string::npos);
  CHECK(audit.out.find(kSecret) == std::string::npos);

  auto removed = hub.cli({"webhook", "remove", hooks[0]["id"].dump(), "--user", test::kHubAdmin}, kAdminStdin);
  REQUIRE_MESSAGE(removed.exit_code == 0, removed.err);
  auto again = hub.cli({"webhook", "remove", hooks[0]["id"].dump(), "--user", test::kHubAdmin}, kAdminStdin);
  CHECK(again.exit_code != 0);
  CHECK(again.err.find("no webhook") != std::string::npos);
}

TEST_CASE("every randomization and dispensing reaches the EDC once by delivery id, blinded and signed, across a hub killed mid-delivery") {
  setenv("IRT_TEST_WEBHOOK_TIMING", "50,400,2", 1);  // retries within 0.4 s, attempts time out after 2 s
  Receiver edc;
  HubProcess hub;
  unsetenv("IRT_TEST_WEBHOOK_TIMING");
  hub.add_user("coordinator.ana", "coordinator", "101", kPassword);
  test::TempDir dir;
  test::write_file(dir / "secret", kSecret + "\n");
  auto added = hub.cli({"webhook", "add", "--url", edc.url(), "--events", "participant.randomized,kit.dispensed",
                        "--secret-file", (dir / "secret").string(), "--name", "edc", "--user", test::kHubAdmin},
                       kAdminStdin);
  REQUIRE_MESSAGE(added.exit_code == 0, added.err);
  NodeDir a(hub, "101");
  std::vector<std::string> participants;
  {
    test::SiteSession site(a, "coordinator.ana", kPassword);
    site.receive_all();
    for (const auto* diabetes : {"yes", "no"}) {
      auto number = site.screen({{"diabetes", diabetes}});
      auto done = site.ops->randomize(site.actor, number, site.password);
      REQUIRE_MESSAGE(done.ok(), done.error().message);
      participants.push_back(number);
    }
    auto d = site.ops->dispense(site.actor, participants[0], {"V2", "patient travels abroad", "", "", "", site.password});
    REQUIRE_MESSAGE(d.ok(), d.error().message);
  }
  sync_ok(a);
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_webhook_deliveries") == 3);
  REQUIRE(eventually([&] { return edc.accepted().size() == 3; }));
  CHECK(eventually(
      [&] { return hub_count(hub, "SELECT count(*) FROM hub_webhook_deliveries WHERE status = 'delivered'") == 3; }));

  // The receiver failed each delivery twice: at least three attempts each, the failures in the log.
  auto log = hub.read_as_admin({"webhook", "deliveries", "--json"});
  REQUIRE_MESSAGE(log.exit_code == 0, log.err);
  for (const auto& d : json::parse(log.out)) {
    CHECK(d["status"] == "delivered");
    CHECK(d["attempts"].get<int>() >= 3);
  }
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_webhook_attempts WHERE http_status = 500") >= 6);

  // The node goes on while the EDC is down; the hub is killed with the deliveries pending.
  edc.fail_everything(true);
  {
    test::SiteSession site(a, "coordinator.ana", kPassword);
    auto number = site.screen({{"diabetes", "yes"}});
    auto done = site.ops->randomize(site.actor, number, site.password);
    REQUIRE_MESSAGE(done.ok(), done.error().message);
    participants.push_back(number);
    auto d = site.ops->dispense(site.actor, participants[1], {"V2", "patient travels abroad", "", "", "", site.password});
    REQUIRE_MESSAGE(d.ok(), d.error().message);
  }
  sync_ok(a);
  const auto before = edc.requests().size();
  REQUIRE(eventually([&] { return edc.requests().size() >= before + 2; }));  // attempted, and refused
  hub.kill_hard();
  CHECK(hub_count(hub, "SELECT count(*) FROM hub_webhook_deliveries WHERE status = 'pending'") == 2);
  edc.fail_everything(false);
  setenv("IRT_TEST_WEBHOOK_TIMING", "50,400,2", 1);
  hub.start();
  unsetenv("IRT_TEST_WEBHOOK_TIMING");
  REQUIRE(eventually([&] { return edc.accepted().size() == 5; }));
  CHECK(eventually(
      [&] { return hub_count(hub, "SELECT count(*) FROM hub_webhook_deliveries WHERE status = 'delivered'") == 5; }));

  // Deduped by delivery id: one delivery per event, each event once.
  auto study = shared::load_study_file(test::source_path("packaging/examples/study-blocks.json")).study;
  REQUIRE(study);
  std::set<std::string> events;
  std::map<std::string, int> randomized, dispensed;
  for (const auto& [id, text] : edc.accepted()) {
    auto body = json::parse(text);
    CHECK(body["delivery_id"] == id);
    CHECK(events.insert(body["event_id"].get<std::string>()).second);
    CHECK(body["site_id"] == "101");
    CHECK(body["study_id"] == study->id);
    CHECK(body["kits"].size() == 1);
    if (body["kind"] == "participant.randomized") {
      ++randomized[body["participant"]];
      CHECK_FALSE(body["randomization_number"].get<std::string>().empty());
    } else {
      CHECK(body["kind"] == "kit.dispensed");
      CHECK(body["visit"] == "V2");
      ++dispensed[body["participant"]];
    }
    CHECK_MESSAGE(test::revealing(*study, text).empty(), test::revealing(*study, text) << " in " << text);
    CHECK(text.find("stratum") == std::string::npos);
  }
  CHECK(randomized == std::map<std::string, int>{{participants[0], 1}, {participants[1], 1}, {participants[2], 1}});
  CHECK(dispensed == std::map<std::string, int>{{participants[0], 1}, {participants[1], 1}});

  // Every request was signed over its body with the shared secret, which a wrong one does not match.
  auto requests = edc.requests();
  CHECK(requests.size() >= 5 * 3);
  for (const auto& r : requests) {
    CHECK(verifies(r.signature, r.body, kSecret));
    CHECK_FALSE(verifies(r.signature, r.body, "not the shared secret"));
    CHECK_FALSE(verifies(r.signature, r.body + " ", kSecret));
  }
}
