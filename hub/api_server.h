// The hub's JSON API under /api/v1 (docs/openapi-hub.yaml), served by
// `irt-hub serve` on the same listener as the sync protocol (hub/sync_server.h).
//
// Every route is one entry of api_routes(): its method, its path (OpenAPI
// style, "/api/v1/users/{name}/disable"), the permission of the study's roles
// it needs (none: any logged-in user) and its handler. To add a route, append
// an ApiRoute to the group of your module (a function returning
// std::vector<ApiRoute>, declared below and listed in api_routes(),
// hub/api_server.cpp) and its path
// to docs/openapi-hub.yaml; the tests then check it against the OpenAPI file,
// the permission matrix and the blinding crawl by themselves.
//
// The server does the rest the same way for every route, in this order:
// - the session: `Authorization: Bearer TOKEN` of a session opened by
//   POST /api/v1/login (hub/sessions.h); missing, unknown or idle → 401; a
//   user disabled or without a role of the study → 401, the session ended;
// - the permission: a role without it → 403 naming it, before the body is read,
//   so a refused call changes nothing;
// - the body: at most kMaxApiRequestBody bytes (413), a JSON object read field
//   by field through ApiBody, whose messages name the field ("sites[1]: must be
//   a string"); an unknown field is refused;
// - the handler, under the server's mutex (its own database connection), whose
//   Result is the answer: 200 with the JSON, or {"error":{"code","message"}}
//   with the status of the error's family (shared/result.h, docs/errors.md).
//   An exception is logged and answered 500 "internal" without detail.
// Critical actions take an electronic signature in the body,
// "signature": {"password": "..."}, of the session's own user: the handler
// calls ApiCall::signature, which checks it (hub/users.h check_signature);
// the hub function it then calls records signer, UTC time and meaning.
//
// Thread-safety: cpp-httplib runs handlers on its worker threads; one mutex
// serialises the handlers' use of the HubState given to ApiServer (its own
// database connection, apart from the sync server's, so that password hashing
// at login never holds a node's sync). The login's Argon2id runs without it.
// Nothing is kept in memory between requests: several `irt-hub serve`
// processes on one PostgreSQL database accept each other's sessions.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "hub/hub_state.h"
#include "hub/users.h"
#include "shared/result.h"
#include "shared/sign_in_guard.h"
#include "shared/study.h"

namespace httplib {
class Server;
}

namespace irt::hub {

// A request body, read field by field. The first problem is kept (a missing or
// mistyped field, one over its size limit) and reported by finish(), which
// also refuses any field no read asked for. Strings are at most
// sync::kMaxTextChars characters for free text and passwords, kMaxIdChars for
// names and ids; lists at most kMaxListItems items.
class ApiBody {
 public:
  explicit ApiBody(nlohmann::json body);
  // A required string field; "" when it is missing or wrong (and the error is kept).
  std::string id(const std::string& field);    // a name or id: 1 to kMaxIdChars characters
  std::string text(const std::string& field);  // free text: 1 to kMaxTextChars characters
  std::optional<std::string> optional_text(const std::string& field);
  std::vector<std::string> ids(const std::string& field);  // a required list of ids (may be empty)
  // A required string up to the body's own limit (kMaxApiRequestBody): a document.
  std::string document(const std::string& field);
  std::optional<bool> optional_flag(const std::string& field);
  // An optional JSON integer from `min` to `max` (a fraction, a string or a
  // number out of the range is refused, never wrapped); nullopt when absent.
  std::optional<std::int64_t> optional_whole(const std::string& field, std::int64_t min, std::int64_t max);
  // Any optional field as given (nullptr when absent), for a shape the others do not read.
  const nlohmann::json* optional_value(const std::string& field) { return this->field(field, false); }
  // The password of "signature": {"password": "..."}; "" when missing (error kept).
  std::string signature_password();
  // The first problem, or an unknown field: invalid_input naming the field.
  shared::Status finish();
  const nlohmann::json& value() const { return body_; }

 private:
  const nlohmann::json* field(const std::string& name, bool required);
  void fail(const std::string& field, const std::string& what);
  nlohmann::json body_;
  std::set<std::string> read_;
  std::optional<shared::Error> error_;
};

// A file a handler answers instead of JSON (an export): sent with its
// content type and as an attachment named `filename`.
struct ApiFile {
  std::string content_type;
  std::string filename;
  std::string body;
};

// What a handler is given.
struct ApiCall {
  HubState& hub;
  std::optional<User> user;              // the session's user; none for an open route (login)
  const shared::Role* role = nullptr;    // the user's role in the current study
  std::string session_id;                // hub/sessions.h; empty for an open route
  std::map<std::string, std::string> params;  // path parameters by name ("name" of {name})
  std::map<std::string, std::string> query;   // query parameters, decoded
  ApiBody body;
  std::int64_t now_ms = 0;
  // Runs `f` with the server's mutex released (a password hash), then takes it again.
  std::function<void(const std::function<void()>&)> without_lock;
  // Set by a handler that answers a file; its JSON answer is then not sent.
  std::optional<ApiFile> file;
  // Failed logins and e-signatures of this server process (shared/sign_in_guard.h),
  // and the address the request came from.
  shared::SignInGuard* guard = nullptr;
  std::string source;

  // True when the reader must not see an arm, a kit type that maps to one, or
  // anything that reveals either (hub/users.h reads_blinded).
  bool blinded() const;
  // The body's "signature" of the session's own user, checked: the signer,
  // for the hub function that records it. invalid_input when absent,
  // unauthenticated for a wrong password (the kMaxWrongSignatures-th ends the
  // session), rate_limited after repeated failures, forbidden for a role without `needed`.
  shared::Result<Signature> signature(shared::Permission needed);
  std::string param(const std::string& name) const;
  std::string query_value(const std::string& name) const;
};

using ApiHandler = std::function<shared::Result<nlohmann::json>(ApiCall&)>;

struct ApiRoute {
  std::string method;  // "GET" or "POST"
  std::string path;    // "/api/v1/users/{name}/disable": each {name} is one path segment
  std::optional<shared::Permission> permission;  // none: any logged-in user
  ApiHandler handler;
  bool open = false;  // no session needed (GET /api/v1, POST /api/v1/login)
};

// Every route of the API, in the order they are matched.
const std::vector<ApiRoute>& api_routes();

// The groups api_routes() assembles, one per module.
std::vector<ApiRoute> session_routes();  // /api/v1, login, logout, me, study: hub/api_routes.cpp
std::vector<ApiRoute> user_routes();     // /api/v1/users...: hub/api_users.cpp
std::vector<ApiRoute> audit_routes();    // /api/v1/audit: hub/api_audit.cpp
std::vector<ApiRoute> amendment_routes();  // /api/v1/amendments, /api/v1/study/versions: hub/api_amendments.cpp
std::vector<ApiRoute> node_routes();     // /api/v1/nodes..., alerts, deviations...: hub/api_nodes.cpp
std::vector<ApiRoute> supply_routes();   // /api/v1/lots..., kits/{kit}/history, sites/{site}/activate: hub/api_supply.cpp
std::vector<ApiRoute> cohort_routes();       // /api/v1/cohorts...: hub/api_cohorts.cpp
std::vector<ApiRoute> kit_decision_routes();  // /api/v1/quarantine..., reconciliation: hub/api_kit_decisions.cpp
std::vector<ApiRoute> shipment_routes();      // /api/v1/shipments...: hub/api_shipments.cpp
std::vector<ApiRoute> forecast_routes();  // /api/v1/forecast: hub/api_forecast.cpp
std::vector<ApiRoute> dashboard_routes();  // /api/v1/dashboard/...: hub/api_dashboard.cpp
std::vector<ApiRoute> export_routes();    // /api/v1/exports/{what}: hub/api_exports.cpp
std::vector<ApiRoute> transfer_routes();  // /api/v1/transfers...: hub/api_transfers.cpp
std::vector<ApiRoute> webhook_routes();   // /api/v1/webhooks...: hub/api_webhooks.cpp

class ApiServer {
 public:
  // Mounts every route of api_routes() on `server` (the sync server's,
  // SyncServer::http()), using `hub` (a HubState of its own) for every request,
  // and the dashboard that reads them at "/" (hub/web_ui.h).
  ApiServer(HubState& hub, httplib::Server& server);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace irt::hub
