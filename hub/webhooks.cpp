#include "hub/webhooks.h"

#include <httplib.h>
#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "crypto/bytes.h"
#include "hub/audit.h"
#include "hub/tuning.h"
#include "shared/event_payloads.h"
#include "sync/hlc.h"
#include "sync/transport.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Errc;
using shared::make_error;

const std::vector<storage::Migration> kWebhooksMigrations = {
    {1, R"sql(
CREATE TABLE hub_webhooks (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  url TEXT NOT NULL,
  events TEXT NOT NULL,
  secret TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  removed_ms INTEGER
);
CREATE TABLE hub_webhook_deliveries (
  id TEXT PRIMARY KEY,
  webhook_id INTEGER NOT NULL REFERENCES hub_webhooks(id),
  node_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  next_attempt_ms INTEGER NOT NULL,
  delivered_ms INTEGER,
  last_status INTEGER,
  last_error TEXT NOT NULL DEFAULT '',
  UNIQUE (webhook_id, node_id, seq)
);
CREATE INDEX hub_webhook_deliveries_due ON hub_webhook_deliveries(status, next_attempt_ms);
CREATE TABLE hub_webhook_attempts (
  id INTEGER PRIMARY KEY,
  delivery_id TEXT NOT NULL REFERENCES hub_webhook_deliveries(id),
  at_ms INTEGER NOT NULL,
  http_status INTEGER,
  error TEXT NOT NULL,
  next_attempt_ms INTEGER
);
CREATE INDEX hub_webhook_attempts_delivery ON hub_webhook_attempts(delivery_id);
)sql"},
};

struct Url {
  bool tls = false;
  std::string host;
  int port = 0;
  std::string path;
};

shared::Result<Url> parse_url(const std::string& url) {
  static const std::regex re(R"(^(https?)://([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?(/[^\s#]*)?$)");
  std::smatch m;
  int port = 0;
  if (url.size() <= 2000 && std::regex_match(url, m, re))
    port = m[3].matched ? std::stoi(m[3]) : (m[1] == "https" ? 443 : 80);
  if (port < 1 || port > 65535)
    return make_error(Errc::invalid_input, "webhook URL '" + url +
                                               "' is not of the form https://HOST[:PORT][/PATH] (PORT 1 to 65535)");
  return Url{m[1] == "https", m[2], port, m[4].matched ? std::string(m[4]) : "/"};
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::size_t from = 0;
  while (from <= text.size() && !text.empty()) {
    auto comma = text.find(',', from);
    out.push_back(text.substr(from, comma == std::string::npos ? std::string::npos : comma - from));
    if (comma == std::string::npos) break;
    from = comma + 1;
  }
  return out;
}

Webhook webhook_row(storage::Statement& st) {
  Webhook w{st.int64(0), st.text(1), st.text(2), split(st.text(3)), st.text(4), st.int64(5), std::nullopt};
  if (!st.is_null(6)) w.removed_ms = st.int64(6);
  return w;
}

const char* kWebhookColumns = "SELECT id, name, url, events, created_by, created_ms, removed_ms FROM hub_webhooks";

std::optional<Webhook> find_webhook(storage::Database& db, std::int64_t id) {
  auto st = db.prepare(std::string(kWebhookColumns) + " WHERE id = ?");
  st.bind(1, id);
  if (!st.step()) return std::nullopt;
  return webhook_row(st);
}

// The blinded facts of one event: what an EDC needs to record it, nothing
// sealed, no stratum, no free text. invalid_input when the payload does not parse.
shared::Result<json> event_facts(const sync::SignedEvent& e) {
  const std::string_view text(reinterpret_cast<const char*>(e.body.payload.data()), e.body.payload.size());
  const auto& type = e.body.type;
  if (type == shared::kRandomizedEvent) {
    auto r = shared::parse_randomized(text);
    if (!r) return r.error();
    return json{{"participant", r->participant}, {"randomization_number", r->randomization_number},
                {"visit", r->visit}, {"kits", r->kits}};
  }
  if (type == shared::kDispensedEvent) {
    auto d = shared::parse_dispensed(text);
    if (!d) return d.error();
    return json{{"participant", d->participant}, {"visit", d->visit}, {"kits", d->kits}};
  }
  if (type == shared::kWithdrawnEvent) {
    auto w = shared::parse_withdrawn(text);
    if (!w) return w.error();
    return json{{"participant", w->participant}};
  }
  if (type == shared::kCompletedEvent) {
    auto c = shared::parse_completed(text);
    if (!c) return c.error();
    return json{{"participant", c->participant}};
  }
  auto u = shared::parse_unblinded(text);
  if (!u) return u.error();
  return json{{"participant", u->participant},
              {"unblinded_by", u->esignature.signer},
              {"unblinded_at", utc_text(u->esignature.signed_ms)}};
}

std::string hex_hmac(std::string_view secret, std::string_view message) {
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(message.data()), message.size());
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> mac{};
  crypto_auth_hmacsha256_final(&state, mac.data());
  crypto::secure_zero(&state, sizeof state);
  return crypto::to_hex(crypto::ByteView(mac.data(), mac.size()));
}

struct DueDelivery {
  std::string id;
  std::string url;
  std::string secret;
  std::string body;
  std::int64_t attempts = 0;
  std::int64_t next_attempt_ms = 0;
};

struct PostOutcome {
  std::optional<int> status;
  std::string error;
};

PostOutcome post(const DueDelivery& d, const WebhookTiming& timing, std::int64_t unix_seconds) {
  auto url = parse_url(d.url);
  if (!url) return {std::nullopt, url.error().message};
  httplib::Client client((url->tls ? "https://" : "http://") + url->host + ":" + std::to_string(url->port));
  client.set_connection_timeout(timing.timeout);
  client.set_read_timeout(timing.timeout);
  client.set_write_timeout(timing.timeout);
  if (url->tls) client.enable_server_certificate_verification(true);
  httplib::Headers headers{{"X-IRT-Delivery", d.id},
                           {"X-IRT-Signature", webhook_signature(d.secret, unix_seconds, d.body)},
                           {"User-Agent", "irt-hub"}};
  auto r = client.Post(url->path, headers, d.body, "application/json");
  if (!r) return {std::nullopt, "no answer: " + httplib::to_string(r.error())};
  if (r->status >= 200 && r->status < 300) return {r->status, ""};
  return {r->status, "answered HTTP " + std::to_string(r->status)};
}

// Records one attempt and its outcome; a delivery that was cancelled meanwhile stays cancelled.
void record_attempt(HubState& hub, const DueDelivery& d, const PostOutcome& outcome, const WebhookTiming& timing,
                    std::int64_t at_ms) {
  const bool delivered = outcome.error.empty();
  const auto attempts = d.attempts + 1;
  std::optional<std::int64_t> next;
  if (!delivered) next = at_ms + webhook_retry_delay_ms(attempts, timing, randombytes_uniform(1u << 30) / double(1u << 30));
  auto& db = hub.db();
  storage::Transaction tx(db);
  auto st = db.prepare(
      "INSERT INTO hub_webhook_attempts(delivery_id, at_ms, http_status, error, next_attempt_ms) "
      "VALUES (?, ?, ?, ?, ?)");
  st.bind_all(d.id, at_ms, outcome.status, outcome.error, next).run();
  auto up = db.prepare(
      "UPDATE hub_webhook_deliveries SET attempts = ?, status = ?, next_attempt_ms = ?, delivered_ms = ?, "
      "last_status = ?, last_error = ? WHERE id = ? AND status = 'pending'");
  std::optional<std::int64_t> delivered_ms;
  if (delivered) delivered_ms = at_ms;
  up.bind_all(attempts, delivered ? "delivered" : "pending", next.value_or(at_ms), delivered_ms, outcome.status,
              outcome.error, d.id)
      .run();
  tx.commit();
  if (!delivered)
    std::cerr << "irt-hub: webhook delivery " << d.id << " attempt " << attempts << " failed (" << outcome.error
              << "); next attempt at " << utc_text(*next) << "\n";
}

}  // namespace

const std::vector<std::string>& webhook_event_kinds() {
  static const std::vector<std::string> kinds = {
      std::string(shared::kRandomizedEvent), std::string(shared::kDispensedEvent),
      std::string(shared::kWithdrawnEvent), std::string(shared::kCompletedEvent),
      std::string(shared::kUnblindedEvent)};
  return kinds;
}

shared::Status migrate_webhooks(storage::Database& db) { return db.migrate("hub.webhooks", kWebhooksMigrations); }

json to_json(const Webhook& w) {
  json j = {{"id", w.id}, {"name", w.name}, {"url", w.url}, {"events", w.events}, {"created_by", w.created_by},
            {"created", utc_text(w.created_ms)}, {"active", !w.removed_ms}};
  if (w.removed_ms) j["removed"] = utc_text(*w.removed_ms);
  return j;
}

json to_json(const WebhookDelivery& d) {
  json j = {{"id", d.id},           {"webhook_id", d.webhook_id}, {"event_id", d.event_id},
            {"kind", d.kind},       {"status", d.status},         {"attempts", d.attempts},
            {"created", utc_text(d.created_ms)}, {"last_error", d.last_error}};
  j["last_status"] = d.last_status ? json(*d.last_status) : json(nullptr);
  if (d.status == "pending") j["next_attempt"] = utc_text(d.next_attempt_ms);
  if (d.delivered_ms) j["delivered"] = utc_text(*d.delivered_ms);
  return j;
}

json to_json(const WebhookAttempt& a) {
  json j = {{"at", utc_text(a.at_ms)}, {"error", a.error}};
  j["http_status"] = a.http_status ? json(*a.http_status) : json(nullptr);
  j["next_attempt"] = a.next_attempt_ms ? json(utc_text(*a.next_attempt_ms)) : json(nullptr);
  return j;
}

shared::Status check_webhook_url(const std::string& url) {
  auto u = parse_url(url);
  if (!u) return u.error();
  if (!u->tls && !sync::is_loopback_host(u->host))
    return make_error(Errc::invalid_input, "webhook URL '" + url +
                                               "' is plain http:// to a host that is not loopback; participant data "
                                               "never crosses a network in clear: use https://");
  return {};
}

shared::Status check_webhook_input(const WebhookInput& in) {
  if (auto st = check_webhook_url(in.url); !st) return st.error();
  if (in.events.empty())
    return make_error(Errc::invalid_input, "no event kind given; subscribe to one or more of " +
                                               join(webhook_event_kinds()));
  std::set<std::string> seen;
  for (const auto& k : in.events) {
    const auto& kinds = webhook_event_kinds();
    if (std::find(kinds.begin(), kinds.end(), k) == kinds.end())
      return make_error(Errc::invalid_input, "unknown event kind '" + k + "'; the kinds are " + join(kinds));
    if (!seen.insert(k).second)
      return make_error(Errc::invalid_input, "event kind '" + k + "' is given twice; name each kind once");
  }
  if (in.secret.empty())
    return make_error(Errc::invalid_input, "the shared secret is empty; put at least one byte (better 32 random "
                                           "ones) in the secret file");
  if (in.secret.size() > kMaxWebhookSecretBytes)
    return make_error(Errc::invalid_input, "the shared secret is longer than " +
                                               std::to_string(kMaxWebhookSecretBytes) + " bytes; use a shorter one");
  return {};
}

shared::Result<Webhook> add_webhook(HubState& hub, const WebhookInput& in, const std::string& actor,
                                    std::int64_t now_ms) {
  if (auto st = check_webhook_input(in); !st) return st.error();
  const std::string name = in.name.empty() ? parse_url(in.url)->host : in.name;
  auto& db = hub.db();
  storage::Transaction tx(db);
  auto st = db.prepare(
      "INSERT INTO hub_webhooks(name, url, events, secret, created_by, created_ms) VALUES (?, ?, ?, ?, ?, ?)");
  st.bind_all(name, in.url, join(in.events), in.secret, actor, now_ms).run();
  auto id = db.last_insert_rowid();
  record_audit(db, {now_ms, actor, "webhook.added", "webhook " + std::to_string(id), "", "",
                    name + " " + in.url + " " + join(in.events), ""});
  auto added = find_webhook(db, id);
  tx.commit();
  return *added;
}

shared::Result<Webhook> remove_webhook(HubState& hub, std::int64_t id, const std::string& actor, std::int64_t now_ms) {
  auto& db = hub.db();
  storage::Transaction tx(db);
  auto w = find_webhook(db, id);
  if (!w || w->removed_ms)
    return make_error(Errc::not_found, "no webhook " + std::to_string(id) +
                                           (w ? " in use: it was removed already" : "") +
                                           "; 'irt-hub webhook list' shows the webhooks");
  db.prepare("UPDATE hub_webhooks SET removed_ms = ? WHERE id = ?").bind_all(now_ms, id).run();
  db.prepare("UPDATE hub_webhook_deliveries SET status = 'cancelled' WHERE webhook_id = ? AND status = 'pending'")
      .bind_all(id)
      .run();
  const auto cancelled = db.changes();
  record_audit(db, {now_ms, actor, "webhook.removed", "webhook " + std::to_string(id), "",
                    w->name + " " + w->url + " " + join(w->events),
                    "removed; " + std::to_string(cancelled) + " pending deliveries cancelled", ""});
  w->removed_ms = now_ms;
  tx.commit();
  return *w;
}

std::vector<Webhook> webhooks(storage::Database& db, bool include_removed) {
  auto st = db.prepare(std::string(kWebhookColumns) + (include_removed ? "" : " WHERE removed_ms IS NULL") +
                       " ORDER BY id");
  std::vector<Webhook> out;
  while (st.step()) out.push_back(webhook_row(st));
  return out;
}

std::vector<WebhookDelivery> webhook_deliveries(storage::Database& db, std::size_t limit) {
  auto st = db.prepare(
      "SELECT id, webhook_id, node_id, seq, kind, status, attempts, created_ms, next_attempt_ms, delivered_ms, "
      "last_status, last_error FROM hub_webhook_deliveries ORDER BY created_ms DESC, node_id DESC, seq DESC, "
      "webhook_id DESC LIMIT ?");
  st.bind(1, static_cast<std::int64_t>(limit));
  std::vector<WebhookDelivery> out;
  while (st.step()) {
    WebhookDelivery d{st.text(0), st.int64(1), st.text(2) + ":" + std::to_string(st.int64(3)), st.text(4),
                      st.text(5), st.int64(6), st.int64(7), st.int64(8)};
    if (!st.is_null(9)) d.delivered_ms = st.int64(9);
    if (!st.is_null(10)) d.last_status = static_cast<int>(st.int64(10));
    d.last_error = st.text(11);
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<WebhookAttempt> webhook_attempts(storage::Database& db, const std::string& delivery_id) {
  auto st = db.prepare(
      "SELECT delivery_id, at_ms, http_status, error, next_attempt_ms FROM hub_webhook_attempts WHERE delivery_id = ? "
      "ORDER BY id");
  st.bind(1, delivery_id);
  std::vector<WebhookAttempt> out;
  while (st.step()) {
    WebhookAttempt a{st.text(0), st.int64(1), std::nullopt, st.text(3), std::nullopt};
    if (!st.is_null(2)) a.http_status = static_cast<int>(st.int64(2));
    if (!st.is_null(4)) a.next_attempt_ms = st.int64(4);
    out.push_back(std::move(a));
  }
  return out;
}

void record_webhook_deliveries(HubState& hub, const sync::LedgerNode& node,
                               const std::vector<sync::SignedEvent>& events, std::int64_t now_ms) {
  const auto& kinds = webhook_event_kinds();
  bool any = false;
  for (const auto& e : events) any = any || std::find(kinds.begin(), kinds.end(), e.body.type) != kinds.end();
  if (!any) return;
  auto& db = hub.db();
  const auto subscribed = webhooks(db);
  if (subscribed.empty()) return;
  auto insert = db.prepare(
      "INSERT INTO hub_webhook_deliveries(id, webhook_id, node_id, seq, kind, body, status, created_ms, "
      "next_attempt_ms) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)");
  for (const auto& e : events) {
    if (std::find(kinds.begin(), kinds.end(), e.body.type) == kinds.end()) continue;
    std::optional<shared::Result<json>> facts;
    for (const auto& w : subscribed) {
      if (std::find(w.events.begin(), w.events.end(), e.body.type) == w.events.end()) continue;
      if (!facts) facts = event_facts(e);
      if (!facts->ok()) {
        std::cerr << "irt-hub: event " << node.node_id << ":" << e.body.seq << " (" << e.body.type
                  << ") has no webhook delivery: " << facts->error().message << "\n";
        break;
      }
      json body = facts->value();
      const auto id = crypto::to_hex(crypto::random_bytes(16));
      body["delivery_id"] = id;
      body["event_id"] = node.node_id + ":" + std::to_string(e.body.seq);
      body["kind"] = e.body.type;
      body["study_id"] = hub.study().id;
      body["site_id"] = node.site_id;
      body["node_id"] = node.node_id;
      body["occurred_at"] = utc_text(e.body.device_time_ms);
      body["recorded_at"] = utc_text(now_ms);
      insert.reset();
      insert.bind_all(id, w.id, node.node_id, static_cast<std::int64_t>(e.body.seq), e.body.type, body.dump(),
                      now_ms, now_ms)
          .run();
    }
  }
}

std::string webhook_signature(std::string_view secret, std::int64_t unix_seconds, std::string_view body) {
  const auto t = std::to_string(unix_seconds);
  std::string message = t + ".";
  message.append(body);
  return "t=" + t + ",v1=" + hex_hmac(secret, message);
}

WebhookTiming WebhookTiming::from_environment() {
  WebhookTiming t{std::chrono::milliseconds(kWebhookRetryFirstMs), std::chrono::milliseconds(kWebhookRetryCapMs),
                  std::chrono::seconds(kWebhookTimeoutSeconds)};
  const char* text = std::getenv("IRT_TEST_WEBHOOK_TIMING");
  if (!text) return t;
  auto parts = split(text);
  std::vector<long> v;
  for (const auto& p : parts) {
    long n = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), n);
    if (ec != std::errc() || end != p.data() + p.size() || n < 1) break;
    v.push_back(n);
  }
  if (v.size() != 3 || parts.size() != 3) {
    std::cerr << "irt-hub: IRT_TEST_WEBHOOK_TIMING must be FIRST_MS,CAP_MS,TIMEOUT_S (got '" << text
              << "'); the defaults are used\n";
    return t;
  }
  return {std::chrono::milliseconds(v[0]), std::chrono::milliseconds(v[1]), std::chrono::seconds(v[2])};
}

std::int64_t webhook_retry_delay_ms(std::int64_t attempts, const WebhookTiming& timing, double uniform01) {
  const std::int64_t cap = timing.cap.count();
  std::int64_t ceiling = timing.first.count();
  for (std::int64_t i = 1; i < attempts && ceiling < cap; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, cap);
  return static_cast<std::int64_t>(uniform01 * static_cast<double>(ceiling));
}

std::size_t deliver_due_webhooks(HubState& hub, const WebhookTiming& timing, std::int64_t now_ms,
                                 const std::atomic<bool>& stop, std::size_t limit) {
  auto& db = hub.db();
  std::vector<DueDelivery> due;
  {
    auto st = db.prepare(
        "SELECT d.id, w.url, w.secret, d.body, d.attempts, d.next_attempt_ms FROM hub_webhook_deliveries d "
        "JOIN hub_webhooks w ON w.id = d.webhook_id WHERE d.status = 'pending' AND d.next_attempt_ms <= ? "
        "ORDER BY d.next_attempt_ms, d.created_ms, d.node_id, d.seq LIMIT ?");
    st.bind_all(now_ms, static_cast<std::int64_t>(limit));
    while (st.step()) due.push_back({st.text(0), st.text(1), st.text(2), st.text(3), st.int64(4), st.int64(5)});
  }
  std::size_t attempted = 0;
  for (auto& d : due) {
    if (stop) break;
    // Claimed for this attempt: another serve process on the same database
    // skips it until the claim lapses (a process killed mid-attempt).
    {
      storage::Transaction tx(db);
      db.prepare(
            "UPDATE hub_webhook_deliveries SET next_attempt_ms = ? WHERE id = ? AND status = 'pending' AND "
            "next_attempt_ms = ?")
          .bind_all(now_ms + std::chrono::milliseconds(timing.timeout).count() + kWebhookClaimMs, d.id,
                    d.next_attempt_ms)
          .run();
      const bool claimed = db.changes() == 1;
      tx.commit();
      if (!claimed) continue;
    }
    const auto started = sync::system_millis();
    auto outcome = post(d, timing, started / 1000);
    crypto::secure_zero(d.secret.data(), d.secret.size());
    record_attempt(hub, d, outcome, timing, sync::system_millis());
    ++attempted;
  }
  for (auto& d : due) crypto::secure_zero(d.secret.data(), d.secret.size());
  return attempted;
}

WebhookWorker::WebhookWorker(std::unique_ptr<HubState> hub, WebhookTiming timing)
    : hub_(std::move(hub)), timing_(timing), thread_([this] { run(); }) {}

WebhookWorker::~WebhookWorker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void WebhookWorker::run() {
  while (!stopping_) {
    std::size_t attempted = 0;
    try {
      attempted = deliver_due_webhooks(*hub_, timing_, sync::system_millis(), stopping_);
    } catch (const std::exception& e) {
      std::cerr << "irt-hub: webhook deliveries failed: " << e.what() << "; retried at the next poll\n";
    }
    if (attempted > 0) continue;  // more may be due at once
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, std::chrono::milliseconds(kWebhookPollMs), [this] { return stopping_.load(); });
  }
}

}  // namespace irt::hub
