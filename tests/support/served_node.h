// Site nodes served over HTTP for the integration tests that kill, restart and
// load them (crash loop, network soak). Include only in tests built with IRT_NODE_BIN.
#pragma once

#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "tests/support/cluster.h"
#include "tests/support/site_session.h"

namespace irt::test {

inline constexpr const char* kServedNodePassword = "served-node-password";

// A count from the environment (a long run's rounds, seed or size), else `fallback`.
inline std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

struct ServedReply {
  int status = 0;  // 0: no answer (the process was killed, or is down)
  nlohmann::json body;
};

// A site's node at work: enrolled (through `hub_url` when given: a proxy in
// front of the hub), its initial shipment received offline, then `irt-node
// serve` syncing every second, with the site's coordinator logged in through
// the API. The hub must have the user "coordinator.SITE" (role coordinator,
// password kServedNodePassword) before the node enrolls. A test kills and
// restarts it at will; start() logs in again.
class ServedNode {
 public:
  ServedNode(HubProcess& hub, const std::string& site, const std::string& hub_url = "")
      : site_(site), user_("coordinator." + site), dir_(hub, site, hub_url), port_(free_port()) {
    SiteSession(dir_, user_, kServedNodePassword).receive_all();
    start();
  }
  ~ServedNode() { stop(); }

  void start() {
    serve_ = std::make_unique<Process>(
        std::vector<std::string>{IRT_NODE_BIN, "serve", "--data", dir_.data().string(), "--listen",
                                 "127.0.0.1:" + std::to_string(port_), "--sync-interval", "1"},
        std::vector<std::string>{std::string("IRT_PASSPHRASE=") + kNodePassphrase}, tmp_ / "node.log");
    REQUIRE_MESSAGE(wait_for_port(port_, 15000), read_file(tmp_ / "node.log"));
    auto r = send("POST", "/api/v1/login", {{"user", user_}, {"password", kServedNodePassword}}, "", "");
    REQUIRE_MESSAGE(r.status == 200, r.body.dump());
    token_ = r.body.value("token", "");
  }
  void kill_hard() { serve_->kill_hard(); }
  void stop() {
    if (serve_) serve_->terminate();
    serve_.reset();
  }

  // A call with the session's token and, when given, an Idempotency-Key.
  ServedReply call(const std::string& method, const std::string& path, const nlohmann::json& body = nullptr,
                   const std::string& key = "") {
    return send(method, path, body, token_, key);
  }

  // Polls (not timing) until the node reports its whole log acknowledged by the hub.
  bool wait_synced() {
    for (int i = 0; i < 600; ++i) {
      auto s = call("GET", "/api/v1/status");
      if (s.status == 200 && s.body.value("pending_events", -1) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  const std::string& site() const { return site_; }
  NodeDir& dir() { return dir_; }

 private:
  ServedReply send(const std::string& method, const std::string& path, const nlohmann::json& body,
                   const std::string& token, const std::string& key) {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(20, 0);
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    if (!key.empty()) h.emplace("Idempotency-Key", key);
    auto r = method == "GET" ? c.Get(path.c_str(), h)
                             : c.Post(path.c_str(), h, body.is_null() ? "" : body.dump(), "application/json");
    if (!r) return {};
    return {r->status, nlohmann::json::parse(r->body, nullptr, false)};
  }

  TempDir tmp_;
  std::string site_;
  std::string user_;
  NodeDir dir_;
  int port_;
  std::unique_ptr<Process> serve_;
  std::string token_;
};

}  // namespace irt::test
