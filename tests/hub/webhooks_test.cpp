// EDC webhooks (hub/webhooks.h): subscriptions refused for bad input, the
// outbox written in the ledger append's transaction (and not at all when the
// append fails), blinded bodies, the signature, the retry schedule, and the
// worker's pass against a real receiver on loopback.
#include "hub/webhooks.h"

#include <doctest/doctest.h>
#include <httplib.h>

#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "hub/audit.h"
#include "hub/ingest.h"
#include "hub/kit_inventory.h"
#include "shared/directive_payloads.h"
#include "sync/hlc.h"
#include "tests/hub/test_node.h"
#include "tests/support/export_blinding.h"

using namespace irt;
using namespace irt::test;
using nlohmann::json;

namespace {

const std::string kSecret = "edc shared secret";
const std::vector<std::string> kWebhookKinds = {"participant.randomized", "kit.dispensed", "participant.withdrawn",
                                            "participant.completed", "participant.unblinded"};

std::int64_t webhook_rows(storage::Database& db, const std::string& sql) {
  auto st = db.prepare(sql);
  REQUIRE(st.step());
  return st.int64(0);
}

hub::Webhook add_webhook(HubFixture& f, const std::string& url, const std::vector<std::string>& kinds) {
  auto w = hub::add_webhook(*f.hub, {"", url, kinds, kSecret}, "admin", kHubNow);
  REQUIRE_MESSAGE(w.ok(), w.error().message);
  return *w;
}

// A node at site 101 with its kits, and a randomization of participant 101-001 as it records it.
struct WebhookSite {
  HubFixture f;
  TestNode a = enroll(f, "101");
  std::vector<hub::HubKit> kits = hub::kits_held_by(f.hub->db(), "node", a.id);
  hub::Ingest ingest{*f.hub};

  shared::Randomized randomized() {
    auto g = shared::parse_grant_slots(directives(f, a.id, shared::kGrantSlotsDirective).at(0).dump());
    REQUIRE(g.ok());
    const auto& arm = g->grants[0].slots[0].arm;
    std::string type;
    for (const auto& v : f.hub->study().visits)
      if (v.randomization)
        for (const auto& d : v.dispense)
          if (d.arm == arm) type = d.kit_type;
    return from_slot("101-001", g->grants[0], 0, {kits.at(0).number},
                     seal(f, shared::RandomizedSealed{arm, {{kits.at(0).number, type}}, {}}));
  }
};

}  // namespace

TEST_CASE("the signature is HMAC-SHA256 of the time, a dot and the body, as openssl computes it") {
  // printf '%s' '1767225600.{"delivery_id":"d1","kind":"kit.dispensed"}' | openssl dgst -sha256 -hmac 'edc shared secret'
  const std::string body = R"({"delivery_id":"d1","kind":"kit.dispensed"})";
  CHECK(hub::webhook_signature(kSecret, 1767225600, body) ==
        "t=1767225600,v1=cff747d6340818b06da58ce738a7a6ad8bf0cf81df084c90499d824d3e13fc5f");
  CHECK(hub::webhook_signature("another secret", 1767225600, body) !=
        hub::webhook_signature(kSecret, 1767225600, body));
  CHECK(hub::webhook_signature(kSecret, 1767225601, body) != hub::webhook_signature(kSecret, 1767225600, body));
}

TEST_CASE("a retry waits a random time up to the first delay doubled per failure, never past the cap") {
  const hub::WebhookTiming t{std::chrono::milliseconds(1000), std::chrono::milliseconds(600000),
                             std::chrono::seconds(10)};
  CHECK(hub::webhook_retry_delay_ms(1, t, 0.0) == 0);
  CHECK(hub::webhook_retry_delay_ms(1, t, 0.999) == 999);
  CHECK(hub::webhook_retry_delay_ms(2, t, 0.5) == 1000);
  CHECK(hub::webhook_retry_delay_ms(4, t, 1.0) == 8000);
  CHECK(hub::webhook_retry_delay_ms(10, t, 1.0) == 512000);
  CHECK(hub::webhook_retry_delay_ms(11, t, 1.0) == 600000);
  CHECK(hub::webhook_retry_delay_ms(1000, t, 1.0) == 600000);
}

TEST_CASE("a webhook URL is https, or plain http to a loopback host only") {
  CHECK(hub::check_webhook_url("https://edc.example.org/irt/hook").ok());
  CHECK(hub::check_webhook_url("https://edc.example.org:8443").ok());
  CHECK(hub::check_webhook_url("http://127.0.0.1:9000/hook").ok());
  CHECK(hub::check_webhook_url("http://localhost:9000/hook").ok());
  auto clear = hub::check_webhook_url("http://edc.example.org/hook");
  REQUIRE_FALSE(clear.ok());
  CHECK(clear.error().code == shared::Errc::invalid_input);
  CHECK(clear.error().message.find("use https://") != std::string::npos);
  for (const auto* bad : {"ftp://edc.example.org/", "edc.example.org/hook", "https://", "https://edc:0/",
                          "https://edc:99999/", "https://edc example/", ""})
    CHECK_MESSAGE(!hub::check_webhook_url(bad).ok(), bad);
}

TEST_CASE("a webhook with a bad URL, an unknown or repeated kind, no kind or an empty secret is refused, nothing recorded") {
  HubFixture f;
  const auto audits = hub::audit_entries(f.hub->db()).size();
  const std::vector<std::pair<hub::WebhookInput, std::string>> bad = {
      {{"", "http://edc.example.org/hook", {"kit.dispensed"}, kSecret}, "https://"},
      {{"", "https://edc.example.org/hook", {"kit.shipped"}, kSecret}, "unknown event kind 'kit.shipped'"},
      {{"", "https://edc.example.org/hook", {"kit.dispensed", "kit.dispensed"}, kSecret}, "given twice"},
      {{"", "https://edc.example.org/hook", {}, kSecret}, "no event kind"},
      {{"", "https://edc.example.org/hook", {"kit.dispensed"}, ""}, "secret is empty"},
  };
  for (const auto& [input, says] : bad) {
    auto w = hub::add_webhook(*f.hub, input, "admin", kHubNow);
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().code == shared::Errc::invalid_input);
    CHECK_MESSAGE(w.error().message.find(says) != std::string::npos, w.error().message);
  }
  CHECK(hub::webhooks(f.hub->db(), true).empty());
  CHECK(hub::audit_entries(f.hub->db()).size() == audits);
}

TEST_CASE("adding and removing a webhook is audited, and neither the list nor the trail holds its secret") {
  HubFixture f;
  auto w = add_webhook(f, "https://edc.example.org/hook", {"kit.dispensed", "participant.randomized"});
  CHECK(w.name == "edc.example.org");
  auto listed = hub::webhooks(f.hub->db());
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].events == std::vector<std::string>{"kit.dispensed", "participant.randomized"});
  CHECK(hub::to_json(listed[0]).dump().find(kSecret) == std::string::npos);
  auto removed = hub::remove_webhook(*f.hub, w.id, "admin", kHubNow + 1);
  REQUIRE(removed.ok());
  CHECK(hub::webhooks(f.hub->db()).empty());
  CHECK(hub::webhooks(f.hub->db(), true).size() == 1);
  auto again = hub::remove_webhook(*f.hub, w.id, "admin", kHubNow + 2);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == shared::Errc::not_found);
  CHECK(hub::remove_webhook(*f.hub, 999, "admin", kHubNow).error().code == shared::Errc::not_found);
  std::vector<std::string> actions;
  for (const auto& e : hub::audit_entries(f.hub->db())) {
    CHECK(e.new_value.find(kSecret) == std::string::npos);
    CHECK(e.old_value.find(kSecret) == std::string::npos);
    if (e.action.rfind("webhook.", 0) == 0) actions.push_back(e.action + " " + e.subject + " " + e.actor);
  }
  CHECK(actions == std::vector<std::string>{"webhook.added webhook 1 admin", "webhook.removed webhook 1 admin"});
}

TEST_CASE("an ingested event gets one blinded delivery per webhook subscribed to its kind, in the append") {
  WebhookSite s;
  auto both = add_webhook(s.f, "https://edc.example.org/hook", kWebhookKinds);
  add_webhook(s.f, "https://other.example.org/hook", {"kit.dispensed"});
  auto& db = s.f.hub->db();
  s.a.push_observed(*s.f.hub, shared::kScreenedEvent, screened("101-001", {{"site", "101"}, {"diabetes", "yes"}}),
                    s.ingest);
  CHECK(webhook_rows(db, "SELECT count(*) FROM hub_webhook_deliveries") == 0);  // not a kind anyone subscribes to
  auto r = s.randomized();
  s.a.push_observed(*s.f.hub, shared::kRandomizedEvent, r, s.ingest);
  auto deliveries = hub::webhook_deliveries(db);
  REQUIRE(deliveries.size() == 1);
  CHECK(deliveries[0].webhook_id == both.id);
  CHECK(deliveries[0].status == "pending");
  CHECK(deliveries[0].event_id == s.a.id + ":2");
  CHECK(deliveries[0].id.size() == 32);
  auto st = db.prepare("SELECT body FROM hub_webhook_deliveries WHERE id = ?");
  st.bind(1, deliveries[0].id);
  REQUIRE(st.step());
  const auto text = st.text(0);
  auto body = json::parse(text);
  CHECK(body["delivery_id"] == deliveries[0].id);
  CHECK(body["event_id"] == s.a.id + ":2");
  CHECK(body["kind"] == "participant.randomized");
  CHECK(body["study_id"] == s.f.hub->study().id);
  CHECK(body["site_id"] == "101");
  CHECK(body["participant"] == "101-001");
  CHECK(body["randomization_number"] == r.randomization_number);
  CHECK(body["visit"] == "V1");
  CHECK(body["kits"] == json::array({s.kits.at(0).number}));
  CHECK(body["occurred_at"] == "2026-01-01T00:00:00Z");
  CHECK(revealing(s.f.hub->study(), text).empty());
  CHECK(text.find("stratum") == std::string::npos);
  CHECK(text.find(r.sealed) == std::string::npos);
  CHECK_FALSE(r.stratum_label.empty());
  CHECK(text.find(r.stratum_label) == std::string::npos);

  s.a.push_observed(*s.f.hub, shared::kDispensedEvent,
                    shared::Dispensed{"101-001", "V2", {s.kits.at(1).number}, 28, 25, 31, "", std::nullopt,
                                      seal(s.f, shared::KitTypesSealed{{{s.kits.at(1).number, "VLC25"}}})},
                    s.ingest);
  CHECK(webhook_rows(db, "SELECT count(*) FROM hub_webhook_deliveries WHERE kind = 'kit.dispensed'") == 2);
  s.a.push_observed(*s.f.hub, shared::kUnblindedEvent,
                    shared::Unblinded{"101-001", "serious adverse event",
                                      {"dr.ines", "investigator", kHubNow + 5000, "code break"},
                                      seal(s.f, shared::ArmSealed{"A"})},
                    s.ingest);
  auto cb = db.prepare("SELECT body FROM hub_webhook_deliveries WHERE kind = 'participant.unblinded'");
  REQUIRE(cb.step());
  auto code_break = json::parse(cb.text(0));
  CHECK(code_break["unblinded_by"] == "dr.ines");
  CHECK(code_break["unblinded_at"] == "2026-01-01T00:00:05Z");
  CHECK(revealing(s.f.hub->study(), cb.text(0)).empty());
  CHECK(cb.text(0).find("adverse") == std::string::npos);
}

namespace {
// Lets the hub's ingest write everything, then fails the append as a full disk would.
struct FailingAfterIngest : sync::AppendObserver {
  hub::Ingest& ingest;
  storage::Database& db;
  std::int64_t written = -1;
  FailingAfterIngest(hub::Ingest& i, storage::Database& d) : ingest(i), db(d) {}
  void appended(const sync::LedgerNode& node, const std::vector<sync::SignedEvent>& events,
                std::int64_t now_ms) override {
    ingest.appended(node, events, now_ms);
    written = webhook_rows(db, "SELECT count(*) FROM hub_webhook_deliveries");
    throw std::runtime_error("disk full");
  }
};
}  // namespace

TEST_CASE("an append that fails leaves no delivery, and the node's retry writes it once") {
  WebhookSite s;
  add_webhook(s.f, "https://edc.example.org/hook", kWebhookKinds);
  auto& db = s.f.hub->db();
  FailingAfterIngest failing(s.ingest, db);
  auto r = s.randomized();
  CHECK_THROWS_WITH(s.a.push_observed(*s.f.hub, shared::kRandomizedEvent, r, failing), "disk full");
  CHECK(failing.written == 1);  // written inside the append's transaction ...
  CHECK(webhook_rows(db, "SELECT count(*) FROM hub_webhook_deliveries") == 0);  // ... and rolled back with it
  CHECK(s.f.hub->ledger().acked_seq(s.a.id) == 0u);
  s.a.push_observed(*s.f.hub, shared::kRandomizedEvent, r, s.ingest);
  CHECK(webhook_rows(db, "SELECT count(*) FROM hub_webhook_deliveries") == 1);
}

TEST_CASE("removing a webhook cancels its pending deliveries and stops new ones") {
  WebhookSite s;
  auto w = add_webhook(s.f, "https://edc.example.org/hook", kWebhookKinds);
  s.a.push_observed(*s.f.hub, shared::kRandomizedEvent, s.randomized(), s.ingest);
  REQUIRE(hub::remove_webhook(*s.f.hub, w.id, "admin", kHubNow).ok());
  auto d = hub::webhook_deliveries(s.f.hub->db());
  REQUIRE(d.size() == 1);
  CHECK(d[0].status == "cancelled");
  s.a.push_observed(*s.f.hub, shared::kCompletedEvent, shared::Completed{"101-001", "coordinator"}, s.ingest);
  CHECK(hub::webhook_deliveries(s.f.hub->db()).size() == 1);
  std::atomic<bool> stop{false};
  CHECK(hub::deliver_due_webhooks(*s.f.hub, hub::WebhookTiming::from_environment(), sync::system_millis() + kHour,
                                  stop) == 0);
}

TEST_CASE("a pass posts each due delivery signed, retries a failure later and marks a 2xx delivered") {
  WebhookSite s;
  // A receiver on loopback: 503 to the first request, then 200.
  httplib::Server receiver;
  std::mutex m;
  std::vector<std::pair<std::string, std::string>> seen;  // signature header, body
  std::vector<std::string> ids;
  receiver.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(m);
    seen.emplace_back(req.get_header_value("X-IRT-Signature"), req.body);
    ids.push_back(req.get_header_value("X-IRT-Delivery"));
    res.status = seen.size() == 1 ? 503 : 200;
  });
  const int port = receiver.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { receiver.listen_after_bind(); });
  add_webhook(s.f, "http://127.0.0.1:" + std::to_string(port) + "/hook", kWebhookKinds);
  s.a.push_observed(*s.f.hub, shared::kRandomizedEvent, s.randomized(), s.ingest);
  const hub::WebhookTiming timing{std::chrono::milliseconds(1000), std::chrono::milliseconds(60000),
                                  std::chrono::seconds(5)};
  std::atomic<bool> stop{false};
  CHECK(hub::deliver_due_webhooks(*s.f.hub, timing, sync::system_millis(), stop) == 1);
  auto d = hub::webhook_deliveries(s.f.hub->db()).at(0);
  CHECK(d.status == "pending");
  CHECK(d.attempts == 1);
  CHECK(d.last_status == 503);
  CHECK(d.last_error == "answered HTTP 503");
  CHECK(d.next_attempt_ms <= sync::system_millis() + 1000);
  CHECK(hub::deliver_due_webhooks(*s.f.hub, timing, sync::system_millis() + kHour, stop) == 1);
  d = hub::webhook_deliveries(s.f.hub->db()).at(0);
  CHECK(d.status == "delivered");
  CHECK(d.attempts == 2);
  CHECK(d.delivered_ms);
  CHECK(d.last_error.empty());
  CHECK(hub::deliver_due_webhooks(*s.f.hub, timing, sync::system_millis() + 2 * kHour, stop) == 0);
  receiver.stop();
  serving.join();

  REQUIRE(seen.size() == 2);
  CHECK(ids == std::vector<std::string>{d.id, d.id});
  CHECK(seen[0].second == seen[1].second);  // the same body each attempt
  for (const auto& [signature, body] : seen) {
    auto t = std::stoll(signature.substr(2, signature.find(',') - 2));
    CHECK(signature == hub::webhook_signature(kSecret, t, body));
    CHECK(signature != hub::webhook_signature("a wrong secret", t, body));
  }
  auto attempts = hub::webhook_attempts(s.f.hub->db(), d.id);
  REQUIRE(attempts.size() == 2);
  CHECK(attempts[0].http_status == 503);
  CHECK(attempts[0].next_attempt_ms);
  CHECK(attempts[1].http_status == 200);
  CHECK_FALSE(attempts[1].next_attempt_ms);
}

TEST_CASE("an attempt to a receiver that does not answer in time fails and is retried") {
  WebhookSite s;
  // A receiver that stalls until the test is done with it.
  std::promise<void> release;
  auto released = release.get_future().share();
  httplib::Server receiver;
  receiver.Post("/hook", [released](const httplib::Request&, httplib::Response& res) {
    released.wait_for(std::chrono::seconds(30));
    res.status = 200;
  });
  const int port = receiver.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { receiver.listen_after_bind(); });
  add_webhook(s.f, "http://127.0.0.1:" + std::to_string(port) + "/hook", kWebhookKinds);
  s.a.push_observed(*s.f.hub, shared::kRandomizedEvent, s.randomized(), s.ingest);
  const hub::WebhookTiming timing{std::chrono::milliseconds(1000), std::chrono::milliseconds(60000),
                                  std::chrono::seconds(1)};
  std::atomic<bool> stop{false};
  const auto started = std::chrono::steady_clock::now();
  CHECK(hub::deliver_due_webhooks(*s.f.hub, timing, sync::system_millis(), stop) == 1);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
  auto d = hub::webhook_deliveries(s.f.hub->db()).at(0);
  CHECK(d.status == "pending");
  CHECK_FALSE(d.last_status);
  CHECK(d.last_error.find("no answer") == 0);
  release.set_value();
  receiver.stop();
  serving.join();
}
