#include "hub/sync_server.h"

#include <httplib.h>

#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "hub/enrollment.h"
#include "hub/ingest.h"
#include "hub/push_order.h"
#include "hub/tls_identity.h"
#include "hub/tuning.h"
#include "shared/command_line.h"
#include "storage/storage_fault.h"
#include "sync/batch.h"
#include "sync/hlc.h"
#include "sync/protocol.h"
#include "sync/refusal.h"

namespace irt::hub {

namespace {

namespace we = sync::wire_error;
using sync::refuse;
using sync::Refusal;

void send_refusal(const httplib::Request& req, httplib::Response& res, const Refusal& r) {
  res.status = r.http_status;
  res.set_content(sync::refusal_to_json(r), "application/json");
  std::cerr << "irt-hub: " << req.method << " " << req.path << " refused " << r.http_status << " " << r.code << ": "
            << r.message << "\n";
}

void send_json(httplib::Response& res, const nlohmann::json& j) {
  res.status = 200;
  res.set_content(j.dump(), "application/json");
}

std::optional<crypto::Bytes> base64_header(const httplib::Request& req, const char* name) {
  if (!req.has_header(name)) return std::nullopt;
  return crypto::from_base64(req.get_header_value(name));
}

// The refusal of a push, pull or proof request without a readable certificate.
Refusal missing_certificate() {
  return refuse(sync::wire_error::kCertificate,
                "the X-IRT-Certificate header is missing or not base64; send the certificate issued at enrollment");
}

}  // namespace

// Sync requests refused before they proved a node's key, counted per source
// address in windows of kRefusedSyncWindowMs. Kept in memory: a restart
// clears it, and each process of a hub counts its own.
class RefusedSyncSources {
 public:
  // The seconds a source past the limit must wait; nullopt when it may go on.
  std::optional<std::int64_t> wait_seconds(const std::string& source, std::int64_t now_ms) {
    std::lock_guard lock(mutex_);
    auto it = by_source_.find(source);
    if (it == by_source_.end() || now_ms - it->second.start_ms >= kRefusedSyncWindowMs ||
        it->second.count < kRefusedSyncRequestsPerMinute)
      return std::nullopt;
    return (it->second.start_ms + kRefusedSyncWindowMs - now_ms + 999) / 1000;
  }
  void refused(const std::string& source, std::int64_t now_ms) {
    std::lock_guard lock(mutex_);
    if (by_source_.size() > kMaxSourcesKept)
      std::erase_if(by_source_, [&](const auto& s) { return now_ms - s.second.start_ms >= kRefusedSyncWindowMs; });
    auto& w = by_source_[source];
    if (now_ms - w.start_ms >= kRefusedSyncWindowMs) w = {now_ms, 0};
    ++w.count;
  }

 private:
  static constexpr std::size_t kMaxSourcesKept = 10000;  // past it, ended windows are forgotten
  struct Window {
    std::int64_t start_ms = 0;
    int count = 0;
  };
  std::mutex mutex_;
  std::map<std::string, Window> by_source_;
};

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

struct SyncServer::Impl {
  HubState& hub;
  std::unique_ptr<httplib::Server> server;
  // Guards the HubState's one database connection: one request at a time
  // inside it, except the signature checks of a push, which run outside it
  // so that a node's next batch is verified while its previous one commits.
  // It is not what keeps the hub's state consistent: several processes may
  // serve one PostgreSQL database, and there every write transaction takes
  // the database's writer lock (storage::Transaction), pushes in progress are
  // rows (PushOrder), and sessions and outboxes are tables, so a request may
  // reach any process (docs/architecture.md, hub).
  std::mutex mutex;
  PushOrder order;  // under `mutex`
  Ingest ingest;
  RefusedSyncSources refused_sources;  // its own lock

  shared::Status tls_status;  // why the TLS identity could not be loaded

  Impl(HubState& h, bool tls) : hub(h), order(h.db()), ingest(h) {
    // The key is given from memory: it is stored only sealed (hub/hub_state.h).
    auto identity = tls ? load_tls_identity(hub.paths().tls_certificate, hub.tls_key_pem())
                        : shared::Result<TlsIdentity>(TlsIdentity{});
    if (!identity) {
      tls_status = identity.error();
      server = std::make_unique<httplib::Server>();
    } else if (tls) {
      server = std::make_unique<httplib::SSLServer>(identity->certificate.get(), identity->key.get());
    } else {
      server = std::make_unique<httplib::Server>();
    }
    server->set_payload_max_length(kMaxSyncRequestBody);
    server->set_read_timeout(kSyncServerTimeoutSeconds, 0);
    server->set_tcp_nodelay(true);  // no delayed-ACK stall between a request and its answer
    server->set_write_timeout(kSyncServerTimeoutSeconds, 0);
    route();
  }

  using Body = std::function<void(const httplib::Request&, httplib::Response&)>;

  // An amendment made by `irt-hub amend` (another process) governs the next
  // request: enrollment, grants and ingest read hub.study(). Called with `mutex` held.
  void current_study() {
    if (auto st = hub.refresh_study(); !st) throw std::runtime_error(st.error().message);
  }

  // Serialises handlers and turns an escaped exception into a 500 that names
  // nothing internal, or a full disk or read-only database into a 503 naming
  // the fault and the fix; what failed goes to the log. Every answer carries
  // the hub's clock (sync::kHubTimeHeader).
  httplib::Server::Handler guarded(Body body, bool lock_whole = true) {
    return [this, body = std::move(body), lock_whole](const httplib::Request& req, httplib::Response& res) {
      res.set_header(sync::kHubTimeHeader, std::to_string(sync::system_millis()));
      try {
        std::unique_lock lock(mutex, std::defer_lock);
        if (lock_whole) {
          lock.lock();
          current_study();
        }
        body(req, res);
      } catch (const std::exception& e) {
        std::cerr << "irt-hub: " << req.method << " " << req.path << " failed: " << e.what() << "\n";
        auto r = refuse(we::kInternal,
                        "the hub failed while handling this request and acknowledged nothing from it; retry later");
        if (auto refusal = storage::storage_refusal(e, "irt-hub")) r = refuse(we::kUnavailable, refusal->message);
        res.status = r.http_status;
        res.set_content(sync::refusal_to_json(r), "application/json");
      }
    };
  }

  // Answers 429 when the request's source is past its refused requests; the
  // request is not read further.
  bool source_limited(const httplib::Request& req, httplib::Response& res) {
    auto wait = refused_sources.wait_seconds(req.remote_addr, sync::system_millis());
    if (!wait) return false;
    send_refusal(req, res, refuse(we::kRateLimited, "too many refused sync requests from " + req.remote_addr +
                                                        " in the last minute; try again in " +
                                                        std::to_string(*wait) + " s"));
    res.set_header("Retry-After", std::to_string(*wait));
    return true;
  }
  // Refuses a request that did not prove a node's key (or an enrollment
  // token): nothing is stored, no alert raised, the source is counted.
  void refuse_unauthenticated(const httplib::Request& req, httplib::Response& res, const Refusal& r) {
    refused_sources.refused(req.remote_addr, sync::system_millis());
    send_refusal(req, res, r);
  }

  void route() {
    server->Get("/healthz", guarded([this](const httplib::Request&, httplib::Response& res) {
      send_json(res, {{"status", "ok"}, {"study_id", hub.study().id}, {"tree_size", hub.ledger().tree_size()}});
    }));
    server->Post(sync::kEnrollPath, guarded([this](const auto& req, auto& res) { enroll(req, res); }));
    server->Post(sync::kPushPath, guarded([this](const auto& req, auto& res) { push(req, res); }, false));
    server->Post(sync::kPullPath, guarded([this](const auto& req, auto& res) { pull(req, res); }));
    server->Get(sync::kCheckpointPath, guarded([this](const httplib::Request&, httplib::Response& res) {
      res.status = 200;
      res.set_content(hub.ledger().latest_checkpoint(), "text/plain; charset=utf-8");
    }));
    server->Get(sync::kProofPath, guarded([this](const auto& req, auto& res) { proof(req, res); }));
    // Unknown paths, wrong methods, oversized bodies: JSON like every other refusal.
    server->set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req,
                                                                      httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      if (req.path.rfind("/api/", 0) == 0) {  // the API's error shape and codes (hub/api_server.h)
        auto errc = shared::errc_for_http_status(res.status);
        std::string message = res.status == 413 ? "the request body is too large; nothing was changed"
                              : res.status == 400
                                  ? "the request could not be read; a POST sends Content-Length (with {} for no body)"
                                  : "the request was refused (HTTP " + std::to_string(res.status) + ")";
        nlohmann::json j{{"error", {{"code", shared::errc_name(errc)}, {"message", message + "; see docs/openapi-hub.yaml"}}}};
        res.set_content(j.dump(), "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }
      std::string code = res.status == 404 ? we::kNotFound : res.status >= 500 ? we::kInternal : we::kBadRequest;
      Refusal r{code, res.status, "", std::nullopt, std::nullopt};
      r.message = res.status == 404   ? "no " + req.method + " " + req.path + " on this hub; see docs/sync-protocol.md"
                  : res.status == 413 ? "the request body is too large; send smaller batches"
                                      : "the request was refused (HTTP " + std::to_string(res.status) + ")";
      res.set_content(sync::refusal_to_json(r), "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }));
  }

  void enroll(const httplib::Request& req, httplib::Response& res) {
    if (source_limited(req, res)) return;
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("token") || !body["token"].is_string() ||
        !body.contains("node_public_key") || !body["node_public_key"].is_string() ||
        (body.contains("device") && !body["device"].is_string()))
      return send_refusal(req, res, refuse(we::kBadRequest, "the enroll body must be JSON {\"token\": string, "
                                                            "\"node_public_key\": hex string, \"device\": string}"));
    EnrollRequest er{body["token"].get<std::string>(), body["node_public_key"].get<std::string>(),
                     body.value("device", std::string())};
    auto done = hub::enroll(hub, er, sync::system_millis());
    if (!done) {
      if (done.refusal().code == we::kTokenInvalid) return refuse_unauthenticated(req, res, done.refusal());
      return send_refusal(req, res, done.refusal());
    }
    const auto& cert = done->certificate;
    std::cerr << "irt-hub: enrolled node " << cert.node_id << " (" << cert.kind << " node of site " << cert.site_id
              << ")\n";
    send_json(res, {{"node_id", cert.node_id},
                    {"site_id", cert.site_id},
                    {"kind", cert.kind},
                    {"certificate", crypto::to_base64(cert.record)},
                    {"certificate_serial", cert.serial},
                    {"valid_until_ms", cert.valid_until_ms},
                    {"hub_public_key", hub.signing_key().public_key().hex()},
                    {"hub_unblinding_key", hub.unblinding_key().public_key().hex()},
                    {"study_id", hub.study().id},
                    {"ledger_origin", hub.ledger().origin()},
                    {"checkpoint_key_name", sync::kCheckpointKeyName},
                    {"tls_fingerprint", hub.tls_fingerprint()},
                    {"directives", done->directives}});
  }

  // Takes `mutex` itself: authenticate under it, check signatures without it,
  // then wait for the node's earlier push in progress, if any, and append.
  void push(const httplib::Request& req, httplib::Response& res) {
    if (source_limited(req, res)) return;
    auto cert = base64_header(req, sync::kCertificateHeader);
    if (!cert) return refuse_unauthenticated(req, res, missing_certificate());
    auto batch = sync::decode_batch(crypto::as_bytes(req.body));
    std::unique_lock lock(mutex);
    current_study();
    // A stranger's malformed body is a certificate problem first. A request
    // that does not prove the node's key stores nothing and raises no alert.
    auto who = hub.ledger().authenticate_request(*cert, sync::kPushDomain, base64_header(req, sync::kSignatureHeader),
                                                 req.get_header_value(sync::kTimeHeader), req.body,
                                                 sync::system_millis());
    if (!who) return refuse_unauthenticated(req, res, who.refusal());
    const std::string node_id = who->node_id;
    if (!batch) return refuse_push(req, res, node_id, refuse(we::kBadRequest, batch.error().message), 0);
    // The batch's first seq, read cheaply before the full check; a record that
    // does not parse is refused by check_batch.
    std::uint64_t first = 0;
    if (!batch->empty())
      if (auto e = sync::parse_event(batch->front(), sync::EventLimits::ignored)) first = e->body.seq;
    if (auto r = sync::Ledger::refuse_pusher(*who)) {
      if (r->code == we::kRevoked) ingest.keep_revoked_events(node_id, *batch, sync::system_millis());
      return refuse_push(req, res, node_id, *r, first);
    }
    auto ticket = order.begin(node_id, first);  // ends, with `mutex` held, before `lock` unlocks

    auto checked = [&] {
      struct Relock {
        std::unique_lock<std::mutex>& lock;
        ~Relock() { lock.lock(); }
      } relock{lock};
      lock.unlock();
      return hub.ledger().check_batch(*who, *batch);
    }();
    if (!checked) return refuse_push(req, res, node_id, checked.refusal(), first);
    order.wait_for_predecessor(lock, node_id, first,
                               [&] { return hub.ledger().acked_seq(node_id).value_or(0); });

    auto ack = hub.ledger().append(*who, std::move(checked.value()), sync::system_millis(), &ingest);
    if (!ack) return refuse_push(req, res, node_id, ack.refusal(), first);
    nlohmann::json j{{"acked_seq", ack->acked_seq},
                     {"appended", ack->appended},
                     {"already_recorded", ack->already_recorded},
                     {"receipt", nullptr}};
    if (ack->receipt) j["receipt"] = nlohmann::json::parse(sync::receipt_to_json(*ack->receipt));
    send_json(res, j);
  }

  // Refuses an authenticated node's push; Ingest::push_refused decides
  // whether it raises an alert. Called with `mutex` held.
  void refuse_push(const httplib::Request& req, httplib::Response& res, const std::string& node_id,
                   const Refusal& r, std::uint64_t first) {
    send_refusal(req, res, r);
    ingest.push_refused(node_id, r, first, sync::system_millis());
  }

  void pull(const httplib::Request& req, httplib::Response& res) {
    if (source_limited(req, res)) return;
    auto now = sync::system_millis();
    auto cert = base64_header(req, sync::kCertificateHeader);
    if (!cert) return refuse_unauthenticated(req, res, missing_certificate());
    auto pull = hub.ledger().authenticate_pull(*cert, base64_header(req, sync::kSignatureHeader), req.body, now);
    if (!pull) {
      if (pull.refusal().code == we::kRevoked)
        if (auto who = hub.ledger().authenticate(*cert, now)) ingest.revoked_pull(who->node_id, now);
      return refuse_unauthenticated(req, res, pull.refusal());
    }
    const auto& node_id = pull->node.node_id;
    ingest.before_pull(*pull, now);
    auto records = hub.outbox().after(node_id, pull->after, pull->limit);
    res.status = 200;
    res.set_header("X-IRT-Last-Directive", std::to_string(hub.outbox().last_seq(node_id)));
    auto batch = sync::encode_batch(records);
    res.set_content(std::string(batch.begin(), batch.end()), "application/octet-stream");
  }

  // A node's receipt for one of its own events: the request is signed like a
  // push, over "node=ID&seq=N", so nobody else can list nodes or count events.
  void proof(const httplib::Request& req, httplib::Response& res) {
    auto parsed = req.has_param("seq") ? shared::parse_u64(req.get_param_value("seq")) : std::nullopt;
    if (!req.has_param("node") || !parsed)
      return send_refusal(req, res, refuse(we::kBadRequest, "give ?node=ID&seq=N (N a positive integer)"));
    const std::uint64_t seq = *parsed;
    const auto node = req.get_param_value("node");
    if (source_limited(req, res)) return;
    auto cert = base64_header(req, sync::kCertificateHeader);
    if (!cert) return refuse_unauthenticated(req, res, missing_certificate());
    auto who = hub.ledger().authenticate_request(*cert, sync::kProofDomain, base64_header(req, sync::kSignatureHeader),
                                                 req.get_header_value(sync::kTimeHeader),
                                                 "node=" + node + "&seq=" + std::to_string(seq), sync::system_millis());
    if (!who) return refuse_unauthenticated(req, res, who.refusal());
    if (who->node_id != node)
      return send_refusal(req, res, refuse(we::kWrongNode, "node " + who->node_id + " asked for a receipt of node " +
                                                               node + "'s event; a node reads only its own receipts"));
    auto receipt = hub.ledger().receipt(node, seq);
    if (!receipt) return send_refusal(req, res, refuse(we::kNotFound, receipt.error().message));
    res.status = 200;
    res.set_content(sync::receipt_to_json(*receipt), "application/json");
  }
};

SyncServer::SyncServer(HubState& hub, bool tls) : impl_(std::make_unique<Impl>(hub, tls)) {}
SyncServer::~SyncServer() = default;

shared::Status SyncServer::bind(const std::string& host, int port) {
  if (!impl_->tls_status) return impl_->tls_status;
  if (!impl_->server->is_valid())
    return shared::make_error(shared::Errc::internal,
                              "the TLS key or certificate in " + impl_->hub.paths().tls_key.parent_path().string() +
                                  " cannot be loaded; restore the data directory from backup");
  std::string bind_host = host.size() > 2 && host.front() == '[' ? host.substr(1, host.size() - 2) : host;
  if (!impl_->server->bind_to_port(bind_host, port))
    return shared::make_error(shared::Errc::unavailable, "cannot listen on " + host + ":" + std::to_string(port) +
                                                             "; is the port in use or the address not local?");
  return {};
}

void SyncServer::run() { impl_->server->listen_after_bind(); }
void SyncServer::stop() { impl_->server->stop(); }
httplib::Server& SyncServer::http() { return *impl_->server; }

}  // namespace irt::hub
