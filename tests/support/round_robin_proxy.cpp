#include "tests/support/round_robin_proxy.h"

#include <httplib.h>

#include <string>

#include "tests/support/test_support.h"

namespace irt::test {

RoundRobinProxy::RoundRobinProxy(std::vector<int> upstream_ports)
    : upstreams_(std::move(upstream_ports)), server_(std::make_unique<httplib::Server>()) {
  for (std::size_t i = 0; i < upstreams_.size(); ++i) answered_.push_back(std::make_unique<std::atomic<std::size_t>>(0));
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    httplib::Headers headers;
    for (const auto& [k, v] : req.headers)
      if (k.rfind("X-IRT-", 0) == 0) headers.emplace(k, v);
    const std::size_t start = next_++;
    for (std::size_t attempt = 0; attempt < upstreams_.size(); ++attempt) {
      std::size_t i = (start + attempt) % upstreams_.size();
      httplib::Client up("127.0.0.1", upstreams_[i]);
      up.set_connection_timeout(2, 0);
      up.set_read_timeout(60, 0);
      auto r = req.method == "GET"
                   ? up.Get(req.target.c_str(), headers)
                   : up.Post(req.target.c_str(), headers, req.body, req.get_header_value("Content-Type").c_str());
      if (!r && r.error() == httplib::Error::Connection) continue;  // that process is down: the next one
      if (!r) break;
      ++*answered_[i];
      res.status = r->status;
      for (const auto& [k, v] : r->headers)
        if (k.rfind("X-IRT-", 0) == 0) res.set_header(k, v);
      res.set_content(r->body, r->get_header_value("Content-Type").c_str());
      return;
    }
    res.status = 502;
    res.set_content(R"({"error":{"code":"proxy","message":"no hub process answered"}})", "application/json");
  };
  server_->Get(".*", handler);
  server_->Post(".*", handler);
  port_ = server_->bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  wait_for_port(port_);
}

RoundRobinProxy::~RoundRobinProxy() {
  server_->stop();
  thread_.join();
}

std::string RoundRobinProxy::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::vector<std::size_t> RoundRobinProxy::answered() const {
  std::vector<std::size_t> out;
  for (const auto& n : answered_) out.push_back(n->load());
  return out;
}

}  // namespace irt::test
