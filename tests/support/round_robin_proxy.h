// A load balancer on loopback for tests of several hub processes: each HTTP
// request goes to the next upstream in turn, so a node's pushes and pulls
// spread over every process. An upstream that refuses the connection (a
// process that is down) is skipped for the next one, as a load balancer's
// health check would; a connection that breaks after the request was sent is
// answered 502, since the request may have reached the hub.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace irt::test {

class RoundRobinProxy {
 public:
  explicit RoundRobinProxy(std::vector<int> upstream_ports);
  ~RoundRobinProxy();
  int port() const { return port_; }
  std::string url() const;
  // Requests answered by each upstream so far, in the order of the ports given.
  std::vector<std::size_t> answered() const;

 private:
  std::vector<int> upstreams_;
  std::vector<std::unique_ptr<std::atomic<std::size_t>>> answered_;
  std::atomic<std::size_t> next_{0};
  int port_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace irt::test
