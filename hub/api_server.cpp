#include "hub/api_server.h"

#include <httplib.h>

#include <iostream>
#include <regex>

#include "hub/sessions.h"
#include "hub/tuning.h"
#include "hub/web_ui.h"
#include "storage/storage_fault.h"
#include "sync/field_limits.h"
#include "sync/hlc.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Errc;
using shared::make_error;

std::size_t utf8_chars(const std::string& s) {
  std::size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

json error_json(const shared::Error& e) {
  return {{"error", {{"code", shared::errc_name(e.code)}, {"message", e.message}}}};
}

// "/api/v1/users/{name}/disable" -> the regex cpp-httplib matches and the parameter names.
std::pair<std::string, std::vector<std::string>> compile_path(const std::string& path) {
  std::string pattern;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < path.size();) {
    if (path[i] == '{') {
      auto end = path.find('}', i);
      names.push_back(path.substr(i + 1, end - i - 1));
      pattern += "([^/]+)";
      i = end + 1;
    } else {
      if (std::string(".+*?^$()[]|\\").find(path[i]) != std::string::npos) pattern += '\\';
      pattern += path[i++];
    }
  }
  return {pattern, names};
}

}  // namespace

// ---- ApiBody

ApiBody::ApiBody(json body) : body_(std::move(body)) {}

void ApiBody::fail(const std::string& field, const std::string& what) {
  if (!error_) error_ = make_error(Errc::invalid_input, field + ": " + what);
}

const json* ApiBody::field(const std::string& name, bool required) {
  read_.insert(name);
  auto it = body_.find(name);
  if (it == body_.end() || it->is_null()) {
    if (required) fail(name, "is required");
    return nullptr;
  }
  return &*it;
}

namespace {
// Checks one string: its type, and 1 to `max` characters.
std::optional<std::string> checked_string(const json& v, std::size_t max, std::string& problem) {
  if (!v.is_string()) {
    problem = "must be a string";
    return std::nullopt;
  }
  auto s = v.get<std::string>();
  auto n = utf8_chars(s);
  if (n == 0) problem = "must not be empty";
  else if (n > max) problem = "at most " + std::to_string(max) + " characters (got " + std::to_string(n) + "); shorten it";
  else return s;
  return std::nullopt;
}
}  // namespace

std::string ApiBody::id(const std::string& name) {
  const json* v = field(name, true);
  if (!v) return "";
  std::string problem;
  auto s = checked_string(*v, sync::kMaxIdChars, problem);
  if (!s) fail(name, problem);
  return s.value_or("");
}

std::string ApiBody::text(const std::string& name) {
  auto s = optional_text(name);
  if (!s) fail(name, "is required");
  return s.value_or("");
}

std::optional<std::string> ApiBody::optional_text(const std::string& name) {
  const json* v = field(name, false);
  if (!v) return std::nullopt;
  std::string problem;
  auto s = checked_string(*v, sync::kMaxTextChars, problem);
  if (!s) fail(name, problem);
  return s;
}

std::string ApiBody::document(const std::string& name) {
  const json* v = field(name, true);
  if (!v) return "";
  std::string problem;
  auto s = checked_string(*v, kMaxApiRequestBody, problem);
  if (!s) fail(name, problem);
  return s.value_or("");
}

std::optional<bool> ApiBody::optional_flag(const std::string& name) {
  const json* v = field(name, false);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) {
    fail(name, "must be true or false");
    return std::nullopt;
  }
  return v->get<bool>();
}

std::optional<std::int64_t> ApiBody::optional_whole(const std::string& name, std::int64_t min, std::int64_t max) {
  const json* v = field(name, false);
  if (!v) return std::nullopt;
  std::optional<std::int64_t> n;
  if (v->is_number_unsigned()) {
    auto u = v->get<std::uint64_t>();
    if (max >= 0 && u <= static_cast<std::uint64_t>(max)) n = static_cast<std::int64_t>(u);
  } else if (v->is_number_integer()) {
    n = v->get<std::int64_t>();
  }
  if (!n || *n < min || *n > max) {
    fail(name, "must be a whole number from " + std::to_string(min) + " to " + std::to_string(max));
    return std::nullopt;
  }
  return n;
}

std::vector<std::string> ApiBody::ids(const std::string& name) {
  const json* v = field(name, true);
  std::vector<std::string> out;
  if (!v) return out;
  if (!v->is_array()) {
    fail(name, "must be a list of strings");
    return out;
  }
  if (v->size() > sync::kMaxListItems) {
    fail(name, "at most " + std::to_string(sync::kMaxListItems) + " items (got " + std::to_string(v->size()) + ")");
    return out;
  }
  for (std::size_t i = 0; i < v->size(); ++i) {
    std::string problem;
    auto s = checked_string((*v)[i], sync::kMaxIdChars, problem);
    if (!s) {
      fail(name + "[" + std::to_string(i) + "]", problem);
      return {};
    }
    out.push_back(*s);
  }
  return out;
}

std::string ApiBody::signature_password() {
  const json* v = field("signature", false);
  if (!v) {
    fail("signature", "this action needs your electronic signature: add \"signature\": {\"password\": \"...\"} "
                      "with your own password");
    return "";
  }
  if (!v->is_object() || v->size() != 1 || !v->contains("password")) {
    fail("signature", "must be {\"password\": \"...\"}, your own password");
    return "";
  }
  std::string problem;
  auto s = checked_string((*v)["password"], sync::kMaxTextChars, problem);
  if (!s) fail("signature.password", problem);
  return s.value_or("");
}

shared::Status ApiBody::finish() {
  if (error_) return *error_;
  for (const auto& [key, value] : body_.items())
    if (!read_.count(key)) {
      std::string known;
      for (const auto& k : read_) known += (known.empty() ? "" : ", ") + k;
      return make_error(Errc::invalid_input, key + ": unknown field; this request reads " +
                                                 (known.empty() ? std::string("no body") : known));
    }
  return {};
}

// ---- ApiCall

bool ApiCall::blinded() const { return reads_blinded(hub.study(), role); }

shared::Result<Signature> ApiCall::signature(shared::Permission needed) {
  Signature s{user ? user->name : "", body.signature_password()};
  if (auto st = body.finish(); !st) return st.error();
  if (guard)
    if (auto st = guard->check(s.user, source, now_ms); !st) return st.error();
  auto signer = check_signature(hub, s, needed);
  if (!signer) {
    if (signer.error().code != Errc::unauthenticated) return signer.error();
    if (guard) guard->failed(s.user, source, now_ms);
    if (!session_id.empty() && wrong_signature(hub.db(), session_id))
      return make_error(Errc::unauthenticated, "the signature was refused: wrong password; after " +
                                                   std::to_string(shared::kMaxWrongSignatures) +
                                                   " wrong e-signatures this session has ended; nothing was "
                                                   "changed; log in again");
    return make_error(Errc::unauthenticated, "the signature was refused: wrong password; sign with your own "
                                             "password; nothing was changed");
  }
  if (guard) guard->succeeded(s.user);
  return s;
}

std::string ApiCall::param(const std::string& name) const {
  auto it = params.find(name);
  return it == params.end() ? "" : it->second;
}

std::string ApiCall::query_value(const std::string& name) const {
  auto it = query.find(name);
  return it == query.end() ? "" : it->second;
}

// ---- the routes

const std::vector<ApiRoute>& api_routes() {
  static const std::vector<ApiRoute> routes = [] {
    std::vector<ApiRoute> all;
    for (auto group : {session_routes, user_routes, audit_routes, amendment_routes, node_routes, supply_routes,
                       kit_decision_routes, cohort_routes, forecast_routes, dashboard_routes, export_routes, transfer_routes,
                       shipment_routes})
      for (auto& r : group()) all.push_back(std::move(r));
    for (auto& r : webhook_routes()) all.push_back(std::move(r));
    return all;
  }();
  return routes;
}

// ---- the server

struct ApiServer::Impl {
  HubState& hub;
  httplib::Server& server;
  std::mutex mutex;
  shared::SignInGuard guard;

  Impl(HubState& h, httplib::Server& s) : hub(h), server(s) {}

  static void send(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    res.set_header("Cache-Control", "no-store");
  }

  static void refuse(const httplib::Request& req, httplib::Response& res, const shared::Error& e) {
    send(res, shared::http_status(e.code), error_json(e));
    // The path and the code only: a message may name a user, never a secret,
    // but the log need not repeat it.
    std::cerr << "irt-hub: " << req.method << " " << req.path << " refused " << res.status << " "
              << shared::errc_name(e.code) << "\n";
  }

  shared::Error no_session() const {
    return make_error(Errc::unauthenticated,
                      "no valid session (missing, unknown, ended at logout or by a change to the user, or unused for " +
                          std::to_string(hub.study().session_idle_minutes) +
                          " minutes); log in with POST /api/v1/login and send Authorization: Bearer TOKEN");
  }

  void handle(const ApiRoute& route, const std::vector<std::string>& names, const httplib::Request& req,
              httplib::Response& res) {
    try {
      std::unique_lock lock(mutex);
      // An amendment made elsewhere (irt-hub amend, another process) governs this answer.
      if (auto st = hub.refresh_study(); !st) throw std::runtime_error(st.error().message);
      auto now = sync::system_millis();
      ApiCall call{hub, std::nullopt, nullptr, "", {}, {}, ApiBody(json::object()), now, {}, std::nullopt, &guard,
                   req.remote_addr};
      call.without_lock = [&lock](const std::function<void()>& f) {
        struct Relock {
          std::unique_lock<std::mutex>& l;
          ~Relock() { l.lock(); }
        } relock{lock};
        lock.unlock();
        f();
      };
      if (!route.open) {
        auto auth = req.get_header_value("Authorization");
        std::optional<Session> session;
        if (auth.rfind("Bearer ", 0) == 0)
          session = touch_session(hub.db(), auth.substr(7), session_idle_ms(hub.study()), now);
        if (session) call.user = find_user(hub.db(), session->user);
        if (call.user && !call.user->disabled) call.role = hub.study().find_role(call.user->role);
        if (!call.role) {
          if (session) end_session(hub.db(), session->id);  // its user was disabled, removed or lost its role
          res.set_header("WWW-Authenticate", "Bearer");
          return refuse(req, res, no_session());
        }
        call.session_id = session->id;
        if (route.permission && !call.role->can(*route.permission))
          return refuse(req, res,
                        make_error(Errc::forbidden, "role " + call.role->id + " may not " + route.method + " " +
                                                        route.path + "; it needs the permission " +
                                                        shared::to_string(*route.permission)));
      }
      for (std::size_t i = 0; i < names.size(); ++i) call.params[names[i]] = req.matches[i + 1].str();
      for (const auto& [k, v] : req.params) call.query.emplace(k, v);
      if (req.body.size() > kMaxApiRequestBody)
        return send(res, 413, error_json(make_error(Errc::invalid_input,
                                                    "the request body is larger than " +
                                                        std::to_string(kMaxApiRequestBody / 1024) +
                                                        " KiB; nothing was changed")));
      if (!req.body.empty()) {
        auto body = json::parse(req.body, nullptr, false);
        if (body.is_discarded() || !body.is_object())
          return refuse(req, res, make_error(Errc::invalid_input, "the request body must be a JSON object"));
        call.body = ApiBody(std::move(body));
      }
      auto answer = route.handler(call);
      if (!answer) return refuse(req, res, answer.error());
      if (call.file) {
        res.status = 200;
        res.set_content(std::move(call.file->body), call.file->content_type);
        res.set_header("Content-Disposition", "attachment; filename=\"" + call.file->filename + "\"");
        res.set_header("Cache-Control", "no-store");
        return;
      }
      send(res, 200, *answer);
    } catch (const std::exception& e) {
      std::cerr << "irt-hub: " << req.method << " " << req.path << " failed: " << e.what() << "\n";
      shared::Error failure = make_error(Errc::internal, "the hub failed while handling this request; nothing was "
                                                         "changed; retry later");
      if (auto refusal = storage::storage_refusal(e, "irt-hub")) failure = *refusal;
      send(res, shared::http_status(failure.code), error_json(failure));
    }
  }

  void mount() {
    mount_web_ui(server);
    std::vector<std::pair<std::regex, std::string>> known;  // every route's pattern and method
    for (const auto& route : api_routes()) {
      auto [pattern, names] = compile_path(route.path);
      known.emplace_back(std::regex(pattern), route.method);
      auto handler = [this, &route, names = names](const httplib::Request& req, httplib::Response& res) {
        handle(route, names, req, res);
      };
      if (route.method == "GET") server.Get(pattern, handler);
      else server.Post(pattern, handler);
    }
    // Under /api/ everything else is a JSON refusal too: an unknown path 404,
    // a known path with another method 405.
    auto unknown = [known](const httplib::Request& req, httplib::Response& res) {
      std::string allowed;
      for (const auto& [re, method] : known)
        if (std::regex_match(req.path, re)) allowed += (allowed.empty() ? "" : ", ") + method;
      if (allowed.empty())
        return send(res, 404, error_json(make_error(Errc::not_found, "no " + req.method + " " + req.path +
                                                                         " in the hub's API; see docs/openapi-hub.yaml")));
      res.set_header("Allow", allowed);
      send(res, 405, error_json(make_error(Errc::invalid_input, req.path + " takes " + allowed + ", not " +
                                                                    req.method + "; see docs/openapi-hub.yaml")));
    };
    const std::string any = "/api/.*";
    server.Get(any, unknown);
    server.Post(any, unknown);
    server.Put(any, unknown);
    server.Patch(any, unknown);
    server.Delete(any, unknown);
  }
};

ApiServer::ApiServer(HubState& hub, httplib::Server& server) : impl_(std::make_unique<Impl>(hub, server)) {
  impl_->mount();
}

ApiServer::~ApiServer() = default;

}  // namespace irt::hub
