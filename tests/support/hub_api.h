// The hub's /api/v1 as tests call it: JSON over real HTTP on loopback, to an
// `irt-hub serve` process (tests/support/cluster.h) or to an ApiServer mounted
// in the test's own process on a HubFixture's hub (HubApiServer).
#pragma once

#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "hub/api_server.h"

namespace irt::test {

struct HubReply {
  int status = 0;  // 0: no answer
  nlohmann::json body;
  std::string text;
  httplib::Headers headers;
};

// A GET, or a POST of `body` (JSON; none when null), with the bearer token.
inline HubReply hub_call(int port, const std::string& method, const std::string& path, const std::string& token = "",
                         const nlohmann::json& body = nullptr) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30, 0);
  httplib::Headers headers;
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  auto r = method == "GET" ? c.Get(path.c_str(), headers)
                           : c.Post(path.c_str(), headers, body.is_null() ? "" : body.dump(), "application/json");
  if (!r) return {};
  return {r->status, nlohmann::json::parse(r->body, nullptr, false), r->body, r->headers};
}

// The token of a fresh session of `user`; fails the test when refused.
inline std::string hub_login(int port, const std::string& user, const std::string& password) {
  auto r = hub_call(port, "POST", "/api/v1/login", "", {{"user", user}, {"password", password}});
  REQUIRE_MESSAGE(r.status == 200, user << ": " << r.text);
  return r.body["token"].get<std::string>();
}

// "/api/v1/users/{name}/disable" with every {parameter} replaced by `value`.
inline std::string fill_path(std::string path, const std::string& value) {
  for (auto at = path.find('{'); at != std::string::npos; at = path.find('{'))
    path.replace(at, path.find('}', at) - at + 1, value);
  return path;
}

// The hub's API in this process, on a free loopback port, over `hub`.
class HubApiServer {
 public:
  explicit HubApiServer(hub::HubState& hub) : api_(hub, server_) {
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~HubApiServer() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  httplib::Server server_;
  hub::ApiServer api_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace irt::test
