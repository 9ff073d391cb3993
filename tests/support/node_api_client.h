// The node's /api/v1 as the integration tests call it: `irt-node serve` started
// on a prepared data directory at a free loopback port, and JSON calls to it
// with a bearer token. Include only in tests built with IRT_NODE_BIN.
#pragma once

#include <doctest/doctest.h>
#include <httplib.h>

#include <filesystem>
#include <memory>
#include <set>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/node_fixture.h"
#include "tests/support/test_support.h"

namespace irt::test {

struct ApiReply {
  int status = 0;  // 0: no answer
  nlohmann::json body;
  httplib::Headers headers;
};

// A GET, or a POST of `body` (JSON; none when null), with the token and
// `headers`; the answer's body parsed (discarded when not JSON).
inline ApiReply api_call(int port, const std::string& method, const std::string& path, const std::string& token = "",
                         const nlohmann::json& body = nullptr, httplib::Headers headers = {}) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10, 0);
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  auto r = method == "GET" ? c.Get(path.c_str(), headers)
                           : c.Post(path.c_str(), headers, body.is_null() ? "" : body.dump(), "application/json");
  if (!r) return {};
  return {r->status, nlohmann::json::parse(r->body, nullptr, false), r->headers};
}

// `irt-node serve` of the node in `data`, listening on 127.0.0.1:`port`, its
// output in `log`; returns once the port accepts connections.
inline std::unique_ptr<Process> serve_node(const std::filesystem::path& data, int port,
                                           const std::filesystem::path& log) {
  auto process = std::make_unique<Process>(
      std::vector<std::string>{IRT_NODE_BIN, "serve", "--data", data.string(), "--listen",
                               "127.0.0.1:" + std::to_string(port)},
      std::vector<std::string>{std::string("IRT_PASSPHRASE=") + kFixturePassphrase}, log);
  REQUIRE_MESSAGE(wait_for_port(port, 15000), read_file(log));
  return process;
}

// True when any string in `j` (key or value) is one of `words`, or contains
// one of `fragments`, or a key names the allocation (arm, kit type, lot):
// what a blinded role must never receive.
inline bool reveals(const nlohmann::json& j, const std::set<std::string>& words, const std::vector<std::string>& fragments) {
  if (j.is_string()) {
    auto s = j.get<std::string>();
    if (words.count(s)) return true;
    for (const auto& f : fragments)
      if (s.find(f) != std::string::npos) return true;
    return false;
  }
  if (j.is_object()) {
    for (const auto& [k, v] : j.items())
      if (k == "arm" || k == "kit_type" || k == "kit_type_name" || k == "lot" || k == "arms" || k == "kit_types" ||
          reveals(v, words, fragments))
        return true;
    return false;
  }
  if (j.is_array())
    for (const auto& v : j)
      if (reveals(v, words, fragments)) return true;
  return false;
}

}  // namespace irt::test
