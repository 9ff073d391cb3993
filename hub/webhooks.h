// EDC webhooks (docs/exports.md, "EDC webhooks"): the hub POSTs a blinded JSON message to
// each subscribed URL when it ingests a participant randomized, kit dispensed,
// participant withdrawn or completed, or code break event.
//
// Durability: a subscription's deliveries are rows of an outbox written by
// record_webhook_deliveries inside the ledger append's transaction
// (hub/ingest.h): an event commits with its delivery rows or neither does.
// The worker (WebhookWorker, in `irt-hub serve`) posts each row until the
// receiver answers 2xx, and only then marks it delivered; a hub that stops
// mid-delivery posts it again after its restart. Delivery is thus at least
// once: the receiver dedupes by the delivery id (header X-IRT-Delivery and
// "delivery_id" in the body), which never changes between attempts.
//
// Signature: X-IRT-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
// "<t>.<body>")>, t the time of the attempt, so a receiver can refuse a
// replay (a t too old) and a forgery (a wrong v1).
//
// Blinding: a body never holds an arm, a kit type, a stratum, a sealed field
// or any free text a site typed (a withdrawal reason may describe an effect);
// a code break says who broke it and when, not what it revealed.
//
// Secrets: the shared secret is read from a file by the caller, stored in the
// hub's database for the worker, and never returned by a function here but
// webhook_secret (the worker's).
// Thread-safety: as HubState (one thread per connection); WebhookWorker runs a
// thread of its own on a HubState of its own.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "hub/hub_state.h"
#include "shared/result.h"
#include "storage/database.h"
#include "sync/event.h"
#include "sync/ledger.h"

namespace irt::hub {

// The event kinds a webhook may subscribe to: the event types of
// shared/event_payloads.h.
const std::vector<std::string>& webhook_event_kinds();

struct WebhookInput {
  std::string name;  // for people; defaults to the URL's host
  std::string url;
  std::vector<std::string> events;
  std::string secret;  // the shared secret's bytes, as read from its file
};

struct Webhook {
  std::int64_t id = 0;
  std::string name;
  std::string url;
  std::vector<std::string> events;
  std::string created_by;
  std::int64_t created_ms = 0;
  std::optional<std::int64_t> removed_ms;  // removed: no new deliveries; its pending ones cancelled
};

struct WebhookDelivery {
  std::string id;  // 32 hex digits, random: the receiver's dedupe key
  std::int64_t webhook_id = 0;
  std::string event_id;  // "<node id>:<seq>"
  std::string kind;
  std::string status;  // "pending", "delivered" or "cancelled" (its webhook was removed)
  std::int64_t attempts = 0;
  std::int64_t created_ms = 0;
  std::int64_t next_attempt_ms = 0;  // pending only
  std::optional<std::int64_t> delivered_ms;
  std::optional<int> last_status;  // the last attempt's HTTP status, none when it got no answer
  std::string last_error;          // the last attempt's failure, "" after a 2xx
};

struct WebhookAttempt {
  std::string delivery_id;
  std::int64_t at_ms = 0;
  std::optional<int> http_status;
  std::string error;
  std::optional<std::int64_t> next_attempt_ms;  // none: delivered
};

shared::Status migrate_webhooks(storage::Database& db);

// As the API and `--json` show them: times as UTC text, never the secret.
nlohmann::json to_json(const Webhook& w);
nlohmann::json to_json(const WebhookDelivery& d);
nlohmann::json to_json(const WebhookAttempt& a);

// invalid_input unless `url` is https://HOST[:PORT][/PATH], or http:// to a
// loopback host (sync::is_loopback_host).
shared::Status check_webhook_url(const std::string& url);

// check_webhook_url, and the kinds and secret as add_webhook requires them.
shared::Status check_webhook_input(const WebhookInput& input);

// Adds a subscription, audited ("webhook.added", the URL and kinds, never the
// secret) as `actor`, in one transaction. invalid_input for a bad URL, an
// unknown or repeated kind, no kind, an empty secret.
shared::Result<Webhook> add_webhook(HubState& hub, const WebhookInput& input, const std::string& actor,
                                    std::int64_t now_ms);
// Removes one, audited ("webhook.removed"), cancelling its pending
// deliveries. not_found for an unknown or already removed id.
shared::Result<Webhook> remove_webhook(HubState& hub, std::int64_t id, const std::string& actor, std::int64_t now_ms);
std::vector<Webhook> webhooks(storage::Database& db, bool include_removed = false);

// The newest `limit` deliveries, newest first, and one delivery's attempts, oldest first.
std::vector<WebhookDelivery> webhook_deliveries(storage::Database& db, std::size_t limit = 500);
std::vector<WebhookAttempt> webhook_attempts(storage::Database& db, const std::string& delivery_id);

// Inside the caller's (the append's) transaction: one pending delivery per
// event of a subscribed kind and active webhook subscribed to it. Throws on a
// database failure, so that the push fails and is retried rather than
// committing events whose deliveries were lost. An event whose payload does not
// parse is logged and has no delivery (hub/consumption.h raises its deviation).
void record_webhook_deliveries(HubState& hub, const sync::LedgerNode& node,
                               const std::vector<sync::SignedEvent>& events, std::int64_t now_ms);

// "t=<unix_seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
std::string webhook_signature(std::string_view secret, std::int64_t unix_seconds, std::string_view body);

// The retry schedule: full jitter, a delay drawn uniformly in
// [0, min(cap, first * 2^(attempts-1))] after the attempts-th failure.
struct WebhookTiming {
  std::chrono::milliseconds first;
  std::chrono::milliseconds cap;
  std::chrono::seconds timeout;  // per attempt: connect, and each read and write
  // tuning.h's constants, unless IRT_TEST_WEBHOOK_TIMING="FIRST_MS,CAP_MS,TIMEOUT_S"
  // (integration tests only: a receiver that fails a few times must not take minutes).
  static WebhookTiming from_environment();
};
std::int64_t webhook_retry_delay_ms(std::int64_t attempts, const WebhookTiming& timing, double uniform01);

// One pass: posts every pending delivery due at `now_ms` (oldest first, at
// most `limit`), each without holding a transaction across the POST, and
// records each attempt. Returns how many were attempted. `stop` ends a pass early.
std::size_t deliver_due_webhooks(HubState& hub, const WebhookTiming& timing, std::int64_t now_ms,
                                 const std::atomic<bool>& stop, std::size_t limit = 100);

// `irt-hub serve`'s delivery worker: deliver_due_webhooks every
// kWebhookPollMs from a thread of its own. A failure is logged to standard
// error and retried at the next poll. The destructor stops and joins it.
class WebhookWorker {
 public:
  WebhookWorker(std::unique_ptr<HubState> hub, WebhookTiming timing);
  ~WebhookWorker();
  WebhookWorker(const WebhookWorker&) = delete;
  WebhookWorker& operator=(const WebhookWorker&) = delete;

 private:
  void run();
  std::unique_ptr<HubState> hub_;
  WebhookTiming timing_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace irt::hub
