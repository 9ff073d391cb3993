// A node stays usable whatever its link and its users do: a real irt-hub, a
// fault proxy in front of it and a real `irt-node serve`, on loopback. While a
// sync round is stuck behind a link that accepts and never answers, and while
// wrong logins run Argon2id in parallel, the node's API keeps answering.
#include <doctest/doctest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "node/node_state.h"
#include "node/site_operations.h"
#include "storage/database.h"
#include "tests/support/cluster.h"
#include "tests/support/fault_proxy.h"

using namespace irt;
using nlohmann::json;

namespace {

const std::string kUser = "coordinator.ana";
const std::string kPassword = "site-101-password";
// Bounds every API call, so that a call stuck behind the sync round or a login
// fails this test cleanly instead of hanging it.
constexpr int kClientTimeoutSeconds = 10;

struct Reply {
  int status = 0;
  json body;
  double ms = 0;  // measured for the report, never asserted
};

// A hub, a proxy in front of it, and `irt-node serve --listen` of site 101
// enrolled through the proxy, with its initial shipment received and synced.
class Site {
 public:
  Site() {
    hub_.add_user(kUser, "coordinator", "101", kPassword);  // Argon2id at the hub's interactive cost
    proxy_ = std::make_unique<test::FaultProxy>(hub_.port());
    node_ = std::make_unique<test::NodeDir>(hub_, "101", "http://127.0.0.1:" + std::to_string(proxy_->port()));
    receive_shipment();
    port_ = test::free_port();
    serve_ = std::make_unique<test::Process>(
        std::vector<std::string>{IRT_NODE_BIN, "serve", "--data", node_->data().string(), "--listen",
                                 "127.0.0.1:" + std::to_string(port_), "--sync-interval", "3600"},
        std::vector<std::string>{std::string("IRT_PASSPHRASE=") + test::kNodePassphrase}, tmp_ / "node.log");
    REQUIRE_MESSAGE(test::wait_for_port(port_, 15000), test::read_file(tmp_ / "node.log"));
    token_ = login(kPassword).body.value("token", "");
    REQUIRE_FALSE(token_.empty());
    REQUIRE_MESSAGE(wait_synced(), status().body.dump());
  }
  ~Site() {
    proxy_->release();  // a round held by the proxy would hold the node's shutdown
    serve_->terminate();
  }

  Reply call(const std::string& method, const std::string& path, const json& body = nullptr,
             const std::string& token = "") {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(kClientTimeoutSeconds, 0);
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    auto start = std::chrono::steady_clock::now();
    auto r = method == "GET" ? c.Get(path.c_str(), h)
                             : c.Post(path.c_str(), h, body.is_null() ? "" : body.dump(), "application/json");
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!r) return {0, nullptr, ms};
    return {r->status, json::parse(r->body, nullptr, false), ms};
  }
  // `on_sent`, when given, runs once the request's body is handed to the socket.
  Reply login(const std::string& password, const std::function<void()>& on_sent = {}) {
    json body = {{"user", kUser}, {"password", password}};
    if (!on_sent) return call("POST", "/api/v1/login", body);
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(kClientTimeoutSeconds, 0);
    auto text = body.dump();
    auto r = c.Post("/api/v1/login", {}, text.size(),
                    [&](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                      sink.write(text.data() + offset, length);
                      if (offset + length == text.size()) on_sent();
                      return true;
                    },
                    "application/json");
    if (!r) return {};
    return {r->status, json::parse(r->body, nullptr, false)};
  }
  Reply status() { return call("GET", "/api/v1/status", nullptr, token_); }
  Reply screen() {
    return call("POST", "/api/v1/participants",
                {{"factors", {{"diabetes", "no"}}}, {"eligibility", std::vector<std::string>(5, "yes")}}, token_);
  }
  Reply randomize(const std::string& number) {
    return call("POST", "/api/v1/participants/" + number + "/randomize", {{"signature_password", kPassword}},
                token_);
  }

  // Polls (not timing) until the node reports every event acknowledged by the hub.
  bool wait_synced() {
    for (int i = 0; i < 300; ++i) {
      auto s = status();
      if (s.status == 200 && s.body.value("online", false) && s.body.value("pending_events", -1) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::int64_t hub_count(const std::string& sql) {
    auto db = hub_.database();
    auto st = db.prepare(sql);
    st.bind(1, std::string("101-N1"));
    REQUIRE(st.step());
    return st.int64(0);
  }

  test::FaultProxy& proxy() { return *proxy_; }
  test::HubProcess& hub() { return hub_; }

 private:
  // Offline, before serve starts: kits in custody so that randomization can hand one out.
  void receive_shipment() {
    auto state = node::NodeState::open(node_->data(), test::kNodePassphrase);
    REQUIRE_MESSAGE(state.ok(), state.error().message);
    auto& s = **state;
    node::SiteOperations ops(s);
    auto actor = ops.login(node::check_password(node::find_user(s.log(), kUser), kUser, kPassword));
    REQUIRE_MESSAGE(actor.ok(), actor.error().message);
    const auto& shipment = s.domain().shipments().begin()->first;
    std::vector<node::KitReceipt> receipt;
    for (const auto& [number, kit] : s.domain().kits()) receipt.push_back({number, "received"});
    auto received = ops.receive_shipment(*actor, shipment, receipt, {});
    REQUIRE_MESSAGE(received.ok(), received.error().message);
  }

  test::TempDir tmp_;
  test::HubProcess hub_;
  std::unique_ptr<test::FaultProxy> proxy_;
  std::unique_ptr<test::NodeDir> node_;
  int port_ = 0;
  std::unique_ptr<test::Process> serve_;
  std::string token_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

TEST_CASE("while a sync round is stuck behind a stalled link the node screens - randomizes and reports status") {
  Site site;
  site.proxy().stall_all();
  // A local action pokes a round, whose push the proxy reads and never answers.
  auto first = site.screen();
  REQUIRE(first.status == 200);
  REQUIRE(site.proxy().wait_stalled(1, std::chrono::seconds(20)));

  auto screened = site.screen();
  CHECK_MESSAGE(screened.status == 200, screened.body.dump());
  CHECK(site.proxy().stalled_now() >= 1);
  REQUIRE(screened.status == 200);
  auto number = screened.body["participant"]["participant"].get<std::string>();
  auto randomized = site.randomize(number);
  CHECK_MESSAGE(randomized.status == 200, randomized.body.dump());
  CHECK(site.proxy().stalled_now() >= 1);
  auto status = site.status();
  CHECK(status.status == 200);
  CHECK(status.body.value("pending_events", 0) > 0);  // nothing of this reached the hub yet
  // Only release() lets a held request go: every answer above came while the round's request was held.
  CHECK(site.proxy().stalled_now() >= 1);
  MESSAGE("during the stall: screen " << screened.ms << " ms, randomize " << randomized.ms << " ms, status "
                                      << status.ms << " ms");

  // The link gives up; the round fails, and the next one (after backoff) converges.
  site.proxy().release();
  CHECK(site.wait_synced());
  CHECK(site.hub_count("SELECT count(*) FROM hub_allocations WHERE node_id = ?") == 1);
  CHECK(site.hub_count("SELECT count(*) FROM hub_participants WHERE node_id = ?") == 2);
  test::check_ledger_holds(site.hub(), "101-N1", site.status().body.value("last_seq", -1));
}

TEST_CASE("while logins run Argon2id the node's status answers") {
  Site site;
  std::vector<double> quiet;
  for (int i = 0; i < 30; ++i) quiet.push_back(site.status().ms);

  // One wrong login, marked sent once its body is handed to the socket. Were
  // its Argon2id (interactive cost: tens to hundreds of milliseconds) run under
  // the node's lock, only the few statuses that reach the node before the
  // login's handler takes the lock could be answered before it; with no lock
  // held, statuses are answered all along (hundreds, as measured).
  std::atomic<bool> sent{false}, answered{false};
  std::thread login([&] {
    auto r = site.login("not-the-password", [&] { sent = true; });
    answered = true;
    CHECK(r.status == 401);
  });
  while (!sent) std::this_thread::yield();
  int before_login = 0;
  for (int i = 0; i < 10000 && !answered; ++i)
    if (site.status().status == 200 && !answered) ++before_login;
  login.join();
  CHECK(before_login >= 50);

  // Four loops of logins: every status is still answered. (Right passwords:
  // wrong ones in a row are slowed and then locked without Argon2id being
  // run at all, shared/sign_in_guard.h, so they would not load the node.)
  constexpr int kLoops = 4;
  std::atomic<bool> stop{false};
  std::atomic<int> logins{0}, not_refused{0};
  std::vector<std::thread> loops;
  for (int i = 0; i < kLoops; ++i)
    loops.emplace_back([&] {
      while (!stop) {
        if (site.login(kPassword).status != 200) ++not_refused;
        ++logins;
      }
    });
  while (logins < kLoops) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling, not timing
  int ok = 0;
  std::vector<double> burst;
  for (int i = 0; i < 30; ++i) {
    auto r = site.status();
    if (r.status == 200) ++ok;
    burst.push_back(r.ms);
  }
  int logins_meanwhile = logins;
  stop = true;
  for (auto& t : loops) t.join();
  CHECK(ok == 30);
  CHECK(logins > logins_meanwhile);  // the loops were still running when the last status was answered
  CHECK(not_refused == 0);
  MESSAGE("status median " << median(quiet) << " ms quiet; " << before_login
                           << " statuses answered during one wrong login; with " << kLoops
                           << " login loops median " << median(burst) << " ms, max "
                           << *std::max_element(burst.begin(), burst.end()) << " ms, " << logins.load()
                           << " logins");
}
