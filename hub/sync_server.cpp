#include "hub/sync_server.h"

#include <httplib.h>

#include <iostream>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <nlohmann/json.hpp>

#include "hub/audit.h"
#include "hub/consumption.h"
#include "hub/enrollment.h"
#include "hub/grants.h"
#include "shared/command_line.h"
#include "sync/batch.h"
#include "sync/hlc.h"
#include "sync/protocol.h"
#include "sync/refusal.h"

namespace irt::hub {

namespace {

namespace we = sync::wire_error;
using sync::refuse;
using sync::Refusal;

// A pull carries the node's clock; a request more than a day off is refused
// so a recorded request cannot be replayed indefinitely, while a tablet whose
// clock drifted a few hours still syncs.
constexpr std::int64_t kPullClockSkewMs = 24LL * 3600 * 1000;
constexpr std::size_t kDefaultPullLimit = 500;

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

}  // namespace

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

// How long a push that arrived ahead of its predecessor waits for it: while
// an earlier push of the same node is being checked, and a short grace for
// one that is still on the wire. Past that, the push is refused as a gap.
constexpr auto kPredecessorGrace = std::chrono::seconds(1);
constexpr auto kPredecessorLimit = std::chrono::seconds(30);

struct SyncServer::Impl {
  HubState& hub;
  std::unique_ptr<httplib::Server> server;
  // One request at a time inside the HubState, except the signature checks
  // of a push, which run outside it so that a node's next batch is verified
  // while its previous one commits.
  std::mutex mutex;
  std::condition_variable turn;  // a push committed or ended
  std::map<std::string, std::multiset<std::uint64_t>> pushing;  // node -> first seq of each push in progress

  Impl(HubState& h, bool tls) : hub(h) {
    if (tls)
      server = std::make_unique<httplib::SSLServer>(hub.paths().tls_certificate.c_str(), hub.paths().tls_key.c_str());
    else
      server = std::make_unique<httplib::Server>();
    server->set_payload_max_length(sync::kMaxBatchBytes + 64 * 1024);
    server->set_read_timeout(30, 0);
    server->set_tcp_nodelay(true);  // no delayed-ACK stall between a request and its answer
    server->set_write_timeout(30, 0);
    route();
  }

  using Body = std::function<void(const httplib::Request&, httplib::Response&)>;

  // Serialises handlers and turns an escaped exception into a 500 that names
  // nothing internal; what failed goes to the log.
  httplib::Server::Handler guarded(Body body, bool lock_whole = true) {
    return [this, body = std::move(body), lock_whole](const httplib::Request& req, httplib::Response& res) {
      try {
        std::unique_lock lock(mutex, std::defer_lock);
        if (lock_whole) lock.lock();
        body(req, res);
      } catch (const std::exception& e) {
        std::cerr << "irt-hub: " << req.method << " " << req.path << " failed: " << e.what() << "\n";
        auto r = refuse(we::kInternal, "the hub failed while handling this request and acknowledged nothing from "
                                       "it; retry later");
        res.status = 500;
        res.set_content(sync::refusal_to_json(r), "application/json");
      }
    };
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
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("token") || !body["token"].is_string() ||
        !body.contains("node_public_key") || !body["node_public_key"].is_string() ||
        (body.contains("device") && !body["device"].is_string()))
      return send_refusal(req, res, refuse(we::kBadRequest, "the enroll body must be JSON {\"token\": string, "
                                                            "\"node_public_key\": hex string, \"device\": string}"));
    EnrollRequest er{body["token"].get<std::string>(), body["node_public_key"].get<std::string>(),
                     body.value("device", std::string())};
    auto done = hub::enroll(hub, er, sync::system_millis());
    if (!done) return send_refusal(req, res, done.refusal());
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
    auto cert = base64_header(req, sync::kCertificateHeader);
    if (!cert)
      return send_refusal(req, res, refuse(we::kCertificate, "the X-IRT-Certificate header is missing or not "
                                                             "base64; send the certificate issued at enrollment"));
    auto batch = sync::decode_batch(crypto::as_bytes(req.body));
    std::unique_lock lock(mutex);
    // A stranger's malformed body is a certificate problem first.
    auto who = hub.ledger().authenticate(*cert, sync::system_millis());
    if (!who) return send_refusal(req, res, who.refusal());
    const std::string node_id = who->node_id;
    if (!batch) return refuse_push(req, res, node_id, refuse(we::kBadRequest, batch.error().message), 0);
    // The batch's first seq, read cheaply before the full check; a record that
    // does not parse is refused by check_batch.
    std::uint64_t first = 0;
    if (!batch->empty())
      if (auto e = sync::parse_event(batch->front(), sync::EventLimits::ignored)) first = e->body.seq;
    if (auto r = sync::Ledger::refuse_pusher(*who)) return refuse_push(req, res, node_id, *r, first);
    auto& mine = pushing[node_id];
    auto registered = mine.insert(first);
    struct Done {
      Impl& self;
      std::unique_lock<std::mutex>& lock;
      std::string node_id;
      std::multiset<std::uint64_t>::iterator it;
      ~Done() {
        if (!lock.owns_lock()) lock.lock();
        auto& set = self.pushing[node_id];
        set.erase(it);
        if (set.empty()) self.pushing.erase(node_id);
        self.turn.notify_all();
      }
    } done{*this, lock, node_id, registered};

    lock.unlock();
    auto checked = hub.ledger().check_batch(*who, *batch);
    lock.lock();
    if (!checked) return refuse_push(req, res, node_id, checked.refusal(), first);
    wait_for_predecessor(lock, node_id, first);

    auto now = sync::system_millis();
    auto ack = hub.ledger().append(*who, std::move(checked.value()), now,
                                   [&](const std::vector<sync::SignedEvent>& appended) {
                                     record_appended_consumption(node_id, appended, now);
                                   });
    if (!ack) return refuse_push(req, res, node_id, ack.refusal(), first);
    nlohmann::json j{{"acked_seq", ack->acked_seq},
                     {"appended", ack->appended},
                     {"already_recorded", ack->already_recorded},
                     {"receipt", nullptr}};
    if (ack->receipt) j["receipt"] = nlohmann::json::parse(sync::receipt_to_json(*ack->receipt));
    send_json(res, j);
  }

  // Refuses an authenticated node's push. A refusal that retrying cannot fix
  // leaves the node unable to sync until someone acts, so it raises an alert:
  // one open alert per node and refusal code ("push.refused.<code>"), however
  // often the node retries. Bad signatures, broken chains and equivocation
  // raise their own alerts in the ledger, and a frozen node already has one.
  // Called with `mutex` held.
  void refuse_push(const httplib::Request& req, httplib::Response& res, const std::string& node_id,
                   const Refusal& r, std::uint64_t first) {
    send_refusal(req, res, r);
    if (sync::retry_can_fix(r.code, r.http_status) || r.code == we::kBadSignature || r.code == we::kBrokenChain ||
        r.code == we::kEquivocation || r.code == we::kFrozen)
      return;
    try {
      auto seq = r.seq ? r.seq : first ? std::optional<std::uint64_t>(first) : std::nullopt;
      storage::Transaction tx(hub.db());
      hub.ledger().raise_node_alert(node_id, "push.refused." + r.code, seq,
                                    "node " + node_id + " cannot sync: the hub refuses its pushes (" + r.code +
                                        "): " + r.message,
                                    sync::system_millis());
      tx.commit();
    } catch (const std::exception& e) {
      std::cerr << "irt-hub: raising an alert for node " << node_id << " failed: " << e.what() << "\n";
    }
  }

  // A node may have two pushes in flight (docs/sync-protocol.md, "Push"): the
  // later one waits here, without the lock, until the node's events just
  // before it are recorded, or no earlier push of the node is in progress.
  void wait_for_predecessor(std::unique_lock<std::mutex>& lock, const std::string& node_id, std::uint64_t first) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      if (first <= hub.ledger().acked_seq(node_id).value_or(0) + 1) return;
      const auto& mine = pushing[node_id];
      bool earlier_in_progress = !mine.empty() && *mine.begin() < first;
      auto waited = std::chrono::steady_clock::now() - start;
      if ((!earlier_in_progress && waited >= kPredecessorGrace) || waited >= kPredecessorLimit) return;
      turn.wait_for(lock, std::chrono::milliseconds(20));
    }
  }

  // What the events just appended consumed, inside the push's transaction but
  // in a savepoint of its own: the events are recorded and acknowledged even
  // if this fails, and it is retried at the node's next push or pull (the
  // consumption cursor advances only with it).
  void record_appended_consumption(const std::string& node_id, const std::vector<sync::SignedEvent>& appended,
                                   std::int64_t now) {
    try {
      storage::Savepoint part(hub.db());
      if (consumption_recorded(node_id, now, &appended)) part.release();
    } catch (const std::exception& e) {
      report_consumption_failure(node_id, e.what());
    }
  }

  // record_consumption, with a failure logged; the caller keeps or undoes its transaction.
  bool consumption_recorded(const std::string& node_id, std::int64_t now,
                            const std::vector<sync::SignedEvent>* fresh = nullptr) {
    auto used = record_consumption(hub, node_id, now, fresh);
    if (!used) report_consumption_failure(node_id, used.error().message);
    return used.ok();
  }

  static void report_consumption_failure(const std::string& node_id, const std::string& why) {
    std::cerr << "irt-hub: recording what node " << node_id << " consumed failed: " << why << "\n";
  }

  void pull(const httplib::Request& req, httplib::Response& res) {
    auto now = sync::system_millis();
    auto cert = base64_header(req, sync::kCertificateHeader);
    if (!cert)
      return send_refusal(req, res, refuse(we::kCertificate, "the X-IRT-Certificate header is missing or not "
                                                             "base64; send the certificate issued at enrollment"));
    auto node = hub.ledger().authenticate(*cert, now);
    if (!node) return send_refusal(req, res, node.refusal());
    if (node->status == sync::NodeStatus::revoked)
      return send_refusal(req, res, refuse(we::kRevoked, "node " + node->node_id + " was revoked (" +
                                                             node->status_reason +
                                                             "); it receives no more directives. Enroll a new node"));
    auto sig_bytes = base64_header(req, sync::kSignatureHeader);
    auto sig = sig_bytes ? crypto::Signature::from_view(*sig_bytes) : std::nullopt;
    std::string signed_text = std::string(sync::kPullDomain) + req.body;
    if (!sig || !crypto::verify(node->public_key, crypto::as_bytes(signed_text), *sig))
      return send_refusal(req, res, refuse(we::kRequestSignature,
                                           "the X-IRT-Signature header is missing or does not verify: sign "
                                           "\"irt/pull/v1\\n\" followed by the exact body with the node key"));
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("node_id") || !body["node_id"].is_string() ||
        !body.contains("after") || !body["after"].is_number_unsigned() ||
        (body.contains("time_ms") && !body["time_ms"].is_number_integer()) ||
        (body.contains("limit") && !body["limit"].is_number_unsigned()))
      return send_refusal(req, res, refuse(we::kBadRequest, "the pull body must be JSON {\"node_id\": string, "
                                                            "\"after\": unsigned, \"time_ms\": integer, "
                                                            "\"limit\": unsigned}"));
    if (body["node_id"].get<std::string>() != node->node_id)
      return send_refusal(req, res, refuse(we::kWrongNode, "the pull names node '" +
                                                               body["node_id"].get<std::string>() +
                                                               "' but the certificate is for node " + node->node_id));
    if (body.contains("time_ms")) {
      auto t = body["time_ms"].get<std::int64_t>();
      if (t < now - kPullClockSkewMs || t > now + kPullClockSkewMs)
        return send_refusal(req, res, refuse(we::kBadRequest, "the pull's time_ms is more than a day away from the "
                                                              "hub's clock (" + utc_text(now) +
                                                              "); set the device's clock and retry"));
    }
    auto after = body["after"].get<std::uint64_t>();
    std::size_t limit = body.contains("limit") ? body["limit"].get<std::size_t>() : kDefaultPullLimit;
    limit = std::clamp<std::size_t>(limit, 1, sync::kMaxBatchRecords);
    if (node->status == sync::NodeStatus::active) take_consumption(node->node_id, true);
    auto records = hub.outbox().after(node->node_id, after, limit);
    res.status = 200;
    res.set_header("X-IRT-Last-Directive", std::to_string(hub.outbox().last_seq(node->node_id)));
    auto batch = sync::encode_batch(records);
    res.set_content(std::string(batch.begin(), batch.end()), "application/octet-stream");
  }

  // What the node's accepted events consumed (hub/consumption.h) and, before
  // a pull is answered, the grants that brings due (hub/grants.h), in one
  // transaction. The events are already acknowledged: a failure here is
  // logged and retried at the node's next push or pull (the consumption
  // cursor only advances on commit), it never fails the request.
  void take_consumption(const std::string& node_id, bool top_up) {
    try {
      auto now = sync::system_millis();
      storage::Transaction tx(hub.db());
      if (!consumption_recorded(node_id, now)) return;
      if (top_up) {
        auto granted = top_up_grants(hub, node_id, now);
        if (!granted) {
          std::cerr << "irt-hub: topping up node " << node_id << " failed: " << granted.error().message << "\n";
          return;
        }
      }
      tx.commit();
    } catch (const std::exception& e) {
      report_consumption_failure(node_id, e.what());
    }
  }

  void proof(const httplib::Request& req, httplib::Response& res) {
    auto seq = req.has_param("seq") ? shared::parse_u64(req.get_param_value("seq")) : std::nullopt;
    if (!req.has_param("node") || !seq)
      return send_refusal(req, res, refuse(we::kBadRequest, "give ?node=ID&seq=N (N a positive integer)"));
    auto receipt = hub.ledger().receipt(req.get_param_value("node"), *seq);
    if (!receipt) return send_refusal(req, res, refuse(we::kNotFound, receipt.error().message));
    res.status = 200;
    res.set_content(sync::receipt_to_json(*receipt), "application/json");
  }
};

SyncServer::SyncServer(HubState& hub, bool tls) : impl_(std::make_unique<Impl>(hub, tls)) {}
SyncServer::~SyncServer() = default;

shared::Status SyncServer::bind(const std::string& host, int port) {
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

}  // namespace irt::hub
