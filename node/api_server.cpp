#include "node/api_server.h"

#include <httplib.h>

#include <iostream>
#include <limits>

#include "node/request_body.h"
#include "node/sessions.h"
#include "node/site_operations.h"
#include "node/tuning.h"
#include "node/web_ui.h"
#include "shared/sign_in_guard.h"
#include "storage/storage_fault.h"

namespace irt::node {

namespace {

using nlohmann::json;
using shared::Errc;
using shared::make_error;

// Well-formed UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
bool valid_utf8(std::string_view s) {
  static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 4;
    if (n == 4 || s.size() - i <= n) return false;  // a stray continuation byte, or cut short
    std::uint32_t cp = c & (n == 0 ? 0x7Fu : 0x7Fu >> (n + 1));
    for (std::size_t k = 1; k <= n; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3Fu);
    }
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

json error_json(const shared::Error& e) {
  return {{"error", {{"code", shared::errc_name(e.code)}, {"message", e.message}}}};
}

}  // namespace

struct ApiServer::Impl {
  NodeState& state;
  std::mutex& mutex;
  SyncService* sync;
  SiteOperations ops;
  Sessions sessions;
  shared::SignInGuard guard;
  httplib::Server server;

  Impl(NodeState& s, SyncService* y, std::int64_t idle_ms)
      : state(s), mutex(s.mutex()), sync(y), ops(s), sessions(irt::sync::system_millis, idle_ms) {}

  using Handler = std::function<shared::Result<json>(const httplib::Request&, const Actor&)>;
  using SigningHandler =
      std::function<shared::Result<json>(const httplib::Request&, const Actor&, const PasswordCheck&)>;
  // A signing route with a witness: the second check is of the body's
  // "witness" and "witness_password", made like the signer's without the lock.
  using WitnessedHandler = std::function<shared::Result<json>(const httplib::Request&, const Actor&,
                                                              const PasswordCheck&, const PasswordCheck&)>;

  void send(httplib::Response& res, int status, const json& body) {
    res.status = status;
    // Path parameters are checked (bad_param) and JSON bodies are UTF-8 by
    // parsing; should any other text slip through, it is sent with U+FFFD
    // rather than failing the answer.
    res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    res.set_header("Cache-Control", "no-store");
  }

  // Every refusal of the API: the status of its code (shared/result.h, docs/errors.md).
  void send_error(httplib::Response& res, const shared::Error& e) {
    send(res, shared::http_status(e.code), error_json(e));
  }

  // Checks `password` of `user` against the roster: reads the entry (or a
  // decoy for an unknown user) under the node's lock, runs Argon2id without
  // it (node/roster.h). Failed checks slow and then lock the user and the
  // source address (shared/sign_in_guard.h): rate_limited, nothing checked.
  shared::Result<PasswordCheck> check_without_lock(const std::string& user, const std::string& password,
                                                   const std::string& source) {
    if (password.empty()) return check_password(std::nullopt, user, password);
    if (auto st = guard.check(user, source, irt::sync::system_millis()); !st) return st.error();
    std::optional<RosterUser> entry;
    std::string decoy;
    {
      std::lock_guard lock(mutex);
      entry = find_user(state.log(), user);
      if (!entry) decoy = decoy_hash(state.log());
    }
    auto c = check_password(std::move(entry), user, password, decoy);
    if (c.matches) guard.succeeded(user);
    else guard.failed(user, source, irt::sync::system_millis());
    return c;
  }

  void route(const char* method, const std::string& pattern, bool mutating, Handler handler,
             Sessions::Use use = Sessions::Use::person) {
    add_route(
        method, pattern, mutating, false,
        [handler](const httplib::Request& req, const Actor& a, const PasswordCheck&, const PasswordCheck&) {
          return handler(req, a);
        },
        use);
  }

  // A read that a page repeats on its own: it does not keep the session alive.
  void poll_route(const std::string& pattern, Handler handler) {
    route("GET", pattern, false, std::move(handler), Sessions::Use::poll);
  }

  std::string idle_time() const {
    auto ms = sessions.idle_ms();
    return ms % 60000 == 0 ? std::to_string(ms / 60000) + " minutes" : std::to_string(ms / 1000) + " seconds";
  }

  // A POST that needs the actor's e-signature: the body's signature_password is
  // checked before the node's lock is taken, and the handler gets the check.
  void signing_route(const std::string& pattern, SigningHandler handler) {
    add_route("POST", pattern, true, true,
              [handler](const httplib::Request& req, const Actor& a, const PasswordCheck& sig, const PasswordCheck&) {
                return handler(req, a, sig);
              });
  }

  void witnessed_route(const std::string& pattern, WitnessedHandler handler) {
    add_route("POST", pattern, true, true, std::move(handler));
  }

  // Authenticated route: the bearer token names the actor; every handler runs
  // under the node's lock. A mutating route pokes the sync service afterwards.
  void add_route(const char* method, const std::string& pattern, bool mutating, bool signs, WitnessedHandler handler,
                 Sessions::Use use = Sessions::Use::person) {
    auto wrapped = [this, mutating, signs, handler, use](const httplib::Request& req, httplib::Response& res) {
      try {
        auto auth = req.get_header_value("Authorization");
        std::optional<Actor> actor;
        if (auth.rfind("Bearer ", 0) == 0) actor = sessions.touch(auth.substr(7), use);
        if (!actor) {
          send_error(res, make_error(Errc::unauthenticated, "no valid session (missing, unknown or idle for " +
                                                                idle_time() +
                                                                "); log in again with POST /api/v1/login"));
          return;
        }
        if (auto bad = bad_param(req)) {
          send_error(res, *bad);
          return;
        }
        PasswordCheck signature, witness;
        if (signs) {
          RequestBody b(req.body);
          auto password = b.text("signature_password");
          auto witness_name = b.text("witness");
          auto witness_password = b.text("witness_password");
          if (!b.ok()) return send_error(res, b.error());
          auto own = check_without_lock(actor->user, password, req.remote_addr);
          if (!own) return send_error(res, own.error());
          signature = *own;
          if (signature.given && !signature.matches && sessions.wrong_signature(auth.substr(7)))
            return send_error(res, make_error(Errc::unauthenticated,
                                              "the signature was refused: wrong password; after " +
                                                  std::to_string(shared::kMaxWrongSignatures) +
                                                  " wrong e-signatures this session has ended; nothing was "
                                                  "recorded; log in again"));
          if (!witness_name.empty()) {
            auto theirs = check_without_lock(witness_name, witness_password, req.remote_addr);
            if (!theirs) return send_error(res, theirs.error());
            witness = *theirs;
          }
        }
        const SigningHandler bound = [&](const httplib::Request& r, const Actor& a, const PasswordCheck& sig) {
          return handler(r, a, sig, witness);
        };
        shared::Result<json> result = json();
        bool recorded = false;  // a refusal may record a fact too (a supply shortage) for the hub
        bool replayed = false;
        {
          std::lock_guard lock(mutex);
          auto before = state.log().last_seq();
          result = mutating ? run_once(bound, req, *actor, signature, replayed) : bound(req, *actor, signature);
          recorded = state.log().last_seq() != before;
        }
        if (!result)
          send_error(res, result.error());
        else {
          if (replayed) res.set_header("Idempotent-Replayed", "true");
          send(res, 200, *result);
        }
        if (mutating && sync && (result || recorded)) sync->poke();
      } catch (const std::exception& e) {
        std::cerr << "irt-node: internal error on " << req.method << " " << req.path << ": " << e.what() << "\n";
        send_error(res, failure(e, "internal error; nothing was changed; the node's log has the details"));
      }
    };
    if (std::string(method) == "GET") server.Get(pattern, wrapped);
    else server.Post(pattern, wrapped);
  }

  // What an exception that escaped a handler answers: a full disk, a read-only
  // database or a disk I/O error says so and how to fix it (storage_refusal);
  // anything else is an internal error with `internal_message`.
  static shared::Error failure(const std::exception& e, std::string internal_message) {
    if (auto refusal = storage::storage_refusal(e, "irt-node")) return *refusal;
    return make_error(Errc::internal, std::move(internal_message));
  }

  static std::string param(const httplib::Request& req, std::size_t i) { return req.matches[i].str(); }

  // Path parameters are echoed in messages ("participant X is not known") and
  // a JSON answer cannot carry invalid UTF-8: one check for every route, each
  // parameter named after the path segment before it ("participant id").
  static std::optional<shared::Error> bad_param(const httplib::Request& req) {
    for (std::size_t i = 1; i < req.matches.size(); ++i) {
      if (valid_utf8(param(req, i))) continue;
      std::string before = req.path.substr(0, static_cast<std::size_t>(req.matches.position(i)));
      if (!before.empty() && before.back() == '/') before.pop_back();
      std::string noun = before.substr(before.find_last_of('/') + 1);
      if (!noun.empty() && noun.back() == 's') noun.pop_back();
      return make_error(Errc::invalid_input, noun + " id: not valid UTF-8; use the id as printed");
    }
    return std::nullopt;
  }

  // The optional Idempotency-Key of a mutating route: SiteOperations::once
  // applies the request at most once per user and key, and replays its answer.
  // The body is identified without its signature_password (a fast hash of a
  // password must not be kept); a replay still needs a given signature to match.
  shared::Result<json> run_once(const SigningHandler& handler, const httplib::Request& req, const Actor& a,
                                const PasswordCheck& signature, bool& replayed) {
    if (!req.has_header("Idempotency-Key")) return handler(req, a, signature);
    auto key = req.get_header_value("Idempotency-Key");
    if (!RequestMemory::valid_key(key))
      return make_error(Errc::invalid_input, "Idempotency-Key: use 1 to " + std::to_string(kMaxIdempotencyKeyLength) +
                                                 " printable ASCII characters without spaces (e.g. a UUID), a new "
                                                 "one for each action and the same one when retrying it");
    auto body = json::parse(req.body, nullptr, false);
    for (const char* secret : {"signature_password", "witness_password"})
      if (body.is_object() && body.contains(secret)) body[secret] = "(given)";
    auto identity = body.is_discarded() ? req.body : body.dump(-1, ' ', false, json::error_handler_t::replace);
    RequestIdentity request{a.user, key, req.method + " " + req.path,
                            crypto::hash_domain("irt/node/request-body/v1", crypto::as_bytes(identity))};
    auto o = ops.once(request, [&] { return handler(req, a, signature); });
    if (!o) return o.error();
    if (o->replayed && signature.given && !signature.matches) return SiteOperations::signature_refused();
    replayed = o->replayed;
    return std::move(o->answer);
  }

  void install() {
    server.set_payload_max_length(kMaxRequestBody);
    // Answers are small and written in pieces: without this, Nagle's algorithm
    // and the client's delayed ACK add tens of milliseconds to each request.
    server.set_tcp_nodelay(true);
    // cpp-httplib closes a kept-alive connection after 5 requests by default,
    // so a browser reconnects (a TCP handshake and a new worker) every fifth call.
    server.set_keep_alive_max_count(kKeepAliveRequests);
    mount_web_ui(server);
    server.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      if (res.status == 413)
        send(res, 413, error_json(make_error(Errc::invalid_input,
                                             "the request body is larger than " +
                                                 std::to_string(kMaxRequestBody / 1024) +
                                                 " KiB; nothing was recorded; shorten the text fields")));
      else if (res.status == 404)
        send(res, 404, error_json(make_error(Errc::not_found, "no such endpoint; see docs/openapi.yaml")));
      else  // the request itself could not be read, e.g. a POST with neither a body nor Content-Length
        send(res, res.status,
             error_json(make_error(Errc::invalid_input,
                                   "the request could not be read (HTTP " + std::to_string(res.status) +
                                       "): a POST needs a Content-Length header, 0 for no body; nothing was "
                                       "recorded")));
      return httplib::Server::HandlerResponse::Handled;
    }));

    server.Post("/api/v1/login", [this](const httplib::Request& req, httplib::Response& res) {
      try {
        RequestBody b(req.body);
        auto user = b.text("user"), password = b.text("password");
        if (!b.ok()) return send_error(res, b.error());
        if (user.empty() || password.empty())
          return send_error(res, make_error(Errc::invalid_input, "give user and password"));
        auto check = check_without_lock(user, password, req.remote_addr);
        if (!check) return send_error(res, check.error());
        shared::Result<Actor> actor = make_error(Errc::internal, "");
        json answer;
        {
          std::lock_guard lock(mutex);
          actor = ops.login(*check);
          if (actor) answer = ops.session_view(*actor);
        }
        if (!actor) return send_error(res, actor.error());
        answer["token"] = sessions.open(*actor);
        answer["idle_timeout_s"] = sessions.idle_ms() / 1000;
        send(res, 200, answer);
      } catch (const std::exception& e) {
        std::cerr << "irt-node: internal error on login: " << e.what() << "\n";
        send_error(res, failure(e, "internal error; nothing was changed"));
      }
    });
    server.Post("/api/v1/logout", [this](const httplib::Request& req, httplib::Response& res) {
      auto auth = req.get_header_value("Authorization");
      if (auth.rfind("Bearer ", 0) == 0) sessions.close(auth.substr(7));
      send(res, 200, {{"logged_out", true}});
    });

    // Before login too (the login page's pill): whether the node reaches its hub, nothing else.
    server.Get("/api/v1/connection", [this](const httplib::Request&, httplib::Response& res) {
      auto st = sync ? sync->status() : SyncStatus{};
      send(res, 200, {{"online", st.online}, {"sync_state", to_string(st.state)}, {"last_sync_ms", st.last_sync_ms}});
    });
    poll_route("/api/v1/status", [this](const httplib::Request&, const Actor& a) -> shared::Result<json> {
      return ops.status_view(a, sync ? sync->status() : SyncStatus{});
    });
    // "Sync now": a round at once, even while offline; the page watches
    // /status until sync_rounds passes the answer's `rounds`.
    route("POST", "/api/v1/sync", false, [this](const httplib::Request&, const Actor&) -> shared::Result<json> {
      if (!sync) return make_error(Errc::conflict, "this node runs without sync; start it with 'irt-node serve'");
      auto rounds = sync->status().rounds;
      sync->sync_now();
      return json{{"requested", true}, {"rounds", rounds}};
    });
    route("GET", "/api/v1/study", false, [this](const httplib::Request&, const Actor& a) -> shared::Result<json> {
      return ops.study_view(a);
    });

    // ---- participants
    route("POST", "/api/v1/participants", true, [this](const httplib::Request& req, const Actor& a) -> shared::Result<json> {
      RequestBody b(req.body);
      ScreenRequest r;
      const auto& factors = b.raw("factors");
      if (!factors.is_null()) {
        if (!factors.is_object()) b.fail("factors", "an object of factor id to level");
        else
          for (const auto& [k, v] : factors.items()) {
            if (!v.is_string()) b.fail("factors." + k, "a level (string)");
            else r.factors[k] = v.get<std::string>();
          }
      }
      const auto& elig = b.raw("eligibility");
      if (!elig.is_null()) {
        if (!elig.is_array()) b.fail("eligibility", "a list of yes/no answers");
        else
          for (const auto& v : elig) {
            if (v.is_boolean()) r.eligibility.push_back(v.get<bool>() ? "yes" : "no");
            else if (v.is_string()) r.eligibility.push_back(v.get<std::string>());
            else b.fail("eligibility", "a list of yes/no answers");
          }
      }
      r.screen_failure_reason = b.text("screen_failure_reason");
      r.cohort = b.text("cohort");
      if (!b.ok()) return b.error();
      auto o = ops.screen(a, r);
      if (!o) return o.error();
      auto j = ops.outcome_view(a, *o);
      j.erase("kits");
      return j;
    });
    route("GET", "/api/v1/participants", false, [this](const httplib::Request& req, const Actor& a) -> shared::Result<json> {
      return ops.participants_view(a, req.get_param_value("status"));
    });
    route("GET", R"(/api/v1/participants/([^/]+))", false,
          [this](const httplib::Request& req, const Actor& a) -> shared::Result<json> {
            return ops.participant_view(a, param(req, 1));
          });
    auto outcome = [this](const OperationOutcome& o, const Actor& a) { return ops.outcome_view(a, o); };
    signing_route(R"(/api/v1/participants/([^/]+)/randomize)",
          [this, outcome](const httplib::Request& req, const Actor& a, const PasswordCheck& sig) -> shared::Result<json> {
            auto o = ops.randomize(a, param(req, 1), sig);
            if (!o) return o.error();
            auto j = outcome(*o, a);
            j["randomization_number"] = o->participant.randomization_number;
            return j;
          });
    signing_route(R"(/api/v1/participants/([^/]+)/dispense)",
          [this, outcome](const httplib::Request& req, const Actor& a, const PasswordCheck& sig) -> shared::Result<json> {
            RequestBody b(req.body);
            DispenseRequest r{b.text("visit"),       b.text("override_reason"), b.text("replace_kit"),
                              b.text("replace_condition"), b.text("reason"), sig, b.text("order_reason")};
            if (!b.ok()) return b.error();
            if (r.visit.empty()) return make_error(Errc::invalid_input, "visit is required: the visit id, e.g. V2");
            auto o = ops.dispense(a, param(req, 1), r);
            if (!o) return o.error();
            return outcome(*o, a);
          });
    signing_route(R"(/api/v1/participants/([^/]+)/unblind)",
          [this](const httplib::Request& req, const Actor& a, const PasswordCheck& sig) -> shared::Result<json> {
            RequestBody b(req.body);
            auto reason = b.text("reason");
            if (!b.ok()) return b.error();
            auto o = ops.unblind(a, param(req, 1), reason, sig);
            if (!o) return o.error();
            return ops.code_break_answer(*o);
          });
    signing_route(R"(/api/v1/participants/([^/]+)/withdraw)",
          [this, outcome](const httplib::Request& req, const Actor& a, const PasswordCheck& sig) -> shared::Result<json> {
            RequestBody b(req.body);
            auto reason = b.text("reason");
            if (!b.ok()) return b.error();
            auto o = ops.withdraw(a, param(req, 1), reason, sig);
            if (!o) return o.error();
            return outcome(*o, a);
          });
    route("POST", R"(/api/v1/participants/([^/]+)/complete)", true,
          [this, outcome](const httplib::Request& req, const Actor& a) -> shared::Result<json> {
            auto o = ops.complete(a, param(req, 1));
            if (!o) return o.error();
            return outcome(*o, a);
          });
    route("POST", R"(/api/v1/participants/([^/]+)/transfer)", true,
          [this, outcome](const httplib::Request& req, const Actor& a) -> shared::Result<json> {
            RequestBody b(req.body);
            auto to = b.text("to_site"), reason = b.text("reason");
            if (!b.ok()) return b.error();
            auto o = ops.request_transfer(a, param(req, 1), to, reason);
            if (!o) return o.error();
            return outcome(*o, a);
          });

    // ---- visits
    route("GET", R"(/api/v1/participants/([^/]+)/dispense-preview)", false,
          [this](const httplib::Request& req, const Actor& a) -> shared::Result<json> {
            auto kits = ops.dispense_preview(a, param(req, 1), req.get_param_value("visit"));
            if (!kits) return kits.error();
            json list = json::array();
            for (const auto& k : *kits) list.push_back(ops.kit_answer(a, k, 0)["kit"]);
            return json{{"participant", param(req, 1)}, {"visit", req.get_param_value("visit")}, {"kits", list}};
          });
    route("POST", R"(/api/v1/participants/([^/]+)/visits/([^/]+))", true,
          [this, outcome](const httplib::Request& req, const Actor& a) -> shared::Result<json> {
            RequestBody b(req.body);
            auto result = b.text("outcome"), reason = b.text("reason");
            if (!b.ok()) return b.error();
            if (result != "done" && result != "missed")
              return make_error(Errc::invalid_input, "outcome: use done (a visit that dispenses nothing) or missed "
                                                     "(with a reason)");
            auto o = ops.record_visit(a, param(req, 1), param(req, 2), result == "missed", reason);
            if (!o) return o.error();
            return outcome(*o, a);
          });
    route("GET", "/api/v1/visits/due", false, [this](const httplib::Request& req, const Actor& a) -> shared::Result<json> {
      int days = 7;
      if (req.has_param("days")) {
        try {
          days = std::stoi(req.get_param_value("days"));
        } catch (const std::exception&) {
          return make_error(Errc::invalid_input, "days: use 0 to 366 (default 7)");
        }
      }
      return ops.visits_due_view(a, days);
    });

    // ---- inventory
    route("GET", "/api/v1/inventory", false, [this](const httplib::Request& req, const Actor& a) -> shared::Result<json> {
      return ops.inventory_view(a, {req.get_param_value("status"), req.get_param_value("kit"),
                                    req.get_param_value("expiring_before")});
    });
    route("GET", "/api/v1/shipments", false, [this](const httplib::Request&, const Actor& a) -> shared::Result<json> {
      return ops.shipments_view(a);
    });
    signing_route(R"(/api/v1/shipments/([^/]+)/receive)",
          [this](const httplib::Request& req, const Actor& a, const PasswordCheck& sig) -> shared::Result<json> {
            RequestBody b(req.body);
            std::vector<KitReceipt> receipts;
            const auto& kits = b.raw("kits");
            if (!kits.is_array()) b.fail("kits", "a list of {\"kit\", \"condition\"}");
            else
              for (const auto& k : kits) {
                if (!k.is_object() || !k.contains("kit") || !k["kit"].is_string()) {
                  b.fail("kits", "a list of {\"kit\", \"condition\"}");
                  break;
                }
                receipts.push_back({k["kit"].get<std::string>(), k.value("condition", std::string("received"))});
              }
            auto location = b.text("location");
            if (!b.ok()) return b.error();
            auto seq = ops.receive_shipment(a, param(req, 1), receipts, sig, location);
            if (!seq) return seq.error();
            return ops.shipment_answer(a, param(req, 1), *seq);
          });
    auto kit_answer = [this](const std::string& kit, std::uint64_t seq, const Actor& a) {
      return ops.kit_answer(a, kit, seq);
    };
    route("POST", R"(/api/v1/kits/([^/]+)/quarantine)", true,
          [this, kit_answer](const httplib::Request& req, const Actor& a) -> shared::Result<json> {
            RequestBody b(req.body);
            auto reason = b.text("reason");
            auto temperature = b.number("temperature_celsius");
            if (!b.ok()) return b.error();
            auto seq = ops.quarantine(a, param(req, 1), reason, temperature);
            if (!seq) return seq.error();
            return kit_answer(param(req, 1), *seq, a);
          });
    route("POST", R"(/api/v1/kits/([^/]+)/return)", true,
          [this, kit_answer](const httplib::Request& req, const Actor& a) -> shared::Result<json> {
            RequestBody b(req.body);
            auto units = b.whole_number("units_returned", 0, std::numeric_limits<int>::max());
            auto visit = b.text("visit");
            if (!b.ok()) return b.error();
            if (!units) return make_error(Errc::invalid_input, "units_returned is required: the whole units brought back");
            auto seq = ops.return_kit(a, param(req, 1), static_cast<int>(*units), visit);
            if (!seq) return seq.error();
            return kit_answer(param(req, 1), *seq, a);
          });
    witnessed_route(R"(/api/v1/kits/([^/]+)/destroy)",
          [this, kit_answer](const httplib::Request& req, const Actor& a, const PasswordCheck& sig,
                             const PasswordCheck& witness) -> shared::Result<json> {
            RequestBody b(req.body);
            auto reason = b.text("reason");
            if (!b.ok()) return b.error();
            auto seq = ops.destroy_kit(a, param(req, 1), reason, sig, witness);
            if (!seq) return seq.error();
            return kit_answer(param(req, 1), *seq, a);
          });
    route("POST", R"(/api/v1/kits/([^/]+)/relabelled)", true,
          [this, kit_answer](const httplib::Request& req, const Actor& a) -> shared::Result<json> {
            auto seq = ops.confirm_relabel(a, param(req, 1));
            if (!seq) return seq.error();
            return kit_answer(param(req, 1), *seq, a);
          });
    route("POST", "/api/v1/excursions", true, [this](const httplib::Request& req, const Actor& a) -> shared::Result<json> {
      RequestBody b(req.body);
      ExcursionReport r;
      r.kits = b.kits("kits");
      r.location = b.text("location");
      r.minimum_celsius = b.number("minimum_celsius");
      r.maximum_celsius = b.number("maximum_celsius");
      r.duration_minutes = b.whole_number("duration_minutes", -kMaxExactWhole, kMaxExactWhole);
      r.reason = b.text("reason");
      if (!b.ok()) return b.error();
      auto done = ops.report_excursion(a, r);
      if (!done) return done.error();
      return json{{"quarantined", done->kits}, {"event_seq", done->event_seq}};
    });
    route("POST", "/api/v1/kits/location", true, [this](const httplib::Request& req, const Actor& a) -> shared::Result<json> {
      RequestBody b(req.body);
      auto kits = b.kits("kits");
      auto location = b.text("location");
      if (!b.ok()) return b.error();
      auto seq = ops.store_kits(a, kits, location);
      if (!seq) return seq.error();
      return json{{"kits", kits}, {"location", location}, {"event_seq", *seq}};
    });
    route("POST", "/api/v1/kits/handover", true, [this](const httplib::Request& req, const Actor& a) -> shared::Result<json> {
      RequestBody b(req.body);
      auto to_node = b.text("to_node");
      auto reason = b.text("reason");
      std::vector<std::string> kits;
      const auto& listed = b.raw("kits");
      if (!listed.is_array()) b.fail("kits", "a list of kit numbers");
      else
        for (const auto& k : listed) {
          if (!k.is_string()) {
            b.fail("kits", "a list of kit numbers");
            break;
          }
          kits.push_back(k.get<std::string>());
        }
      if (!b.ok()) return b.error();
      auto seq = ops.hand_over_kits(a, to_node, kits, reason);
      if (!seq) return seq.error();
      json answer = {{"to_node", to_node}, {"kits", json::array()}, {"event_seq", *seq}};
      for (const auto& k : kits) answer["kits"].push_back(ops.kit_answer(a, k, *seq)["kit"]);
      return answer;
    });
    // A return shipment to a depot (SiteOperations::ship_return); the hub names it RET-<node>-<event seq>.
    signing_route("/api/v1/shipments/returns", [this](const httplib::Request& req, const Actor& a,
                                                                 const PasswordCheck& sig) -> shared::Result<json> {
      RequestBody b(req.body);
      SiteOperations::ReturnShipment r;
      r.depot = b.text("depot");
      r.kits = b.kits("kits");
      r.reason = b.text("reason");
      r.courier = b.text("courier");
      r.tracking = b.text("tracking");
      if (!b.ok()) return b.error();
      auto seq = ops.ship_return(a, r, sig);
      if (!seq) return seq.error();
      return ops.shipment_answer(a, return_shipment_id(state.enrollment().node_id, *seq), *seq);
    });
  }
};

ApiServer::ApiServer(NodeState& state, SyncService* sync, std::int64_t session_idle_ms)
    : impl_(std::make_unique<Impl>(state, sync, session_idle_ms)) {
  impl_->install();
}

ApiServer::~ApiServer() { stop(); }

shared::Status ApiServer::bind(const std::string& host, int port) {
  if (!impl_->server.bind_to_port(host.c_str(), port))
    return make_error(Errc::invalid_input, "cannot listen on " + host + ":" + std::to_string(port) +
                                               " (in use or not a local address); choose another --listen");
  return {};
}

void ApiServer::run() { impl_->server.listen_after_bind(); }

void ApiServer::stop() { impl_->server.stop(); }

}  // namespace irt::node
