// An HTTP proxy on loopback that sits between a node and the hub and injects
// faults: it drops requests or responses, duplicates, delays, reorders and
// truncates them, as chosen per request by a seeded plan. With the plan set to
// pass-through it is a plain proxy (the "proxy removed" state in tests).
//
// stall_all() makes it a link that accepts and reads every request and never
// answers (a captive portal, a stalled mobile link) until release(); a test
// waits for a request to be held with wait_stalled() and asks stalled_now()
// whether one still is, so it needs no sleep to know where the node stands.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace httplib {
class Server;
}

namespace irt::test {

enum class Fault {
  none,
  drop_request,       // never reaches the hub; the node sees a gateway error
  drop_response,      // reaches the hub; the node sees a gateway error
  duplicate_request,  // reaches the hub twice; the node sees the second answer
  delay,              // reaches the hub after a pause
  reorder,            // held back and delivered after the next request
  truncate_request,   // half the body reaches the hub
  truncate_response,  // the node receives half the hub's answer
  stall,              // read and held unanswered until release(); then a gateway error
};

class FaultProxy {
 public:
  explicit FaultProxy(int upstream_port);
  ~FaultProxy();
  int port() const { return port_; }
  // Random faults, one per request, with probability `rate`, from a fixed seed.
  void set_random_faults(std::uint64_t seed, double rate);
  void pass_through();
  std::size_t faults_injected() const { return faults_; }

  // Every request from now on is held, unanswered, until release().
  void stall_all();
  // Requests held unanswered right now.
  std::size_t stalled_now();
  // Waits until at least `n` requests are held; false if they were not within `timeout`.
  bool wait_stalled(std::size_t n, std::chrono::milliseconds timeout);
  // Answers every held request with a gateway error, as a link that gives up
  // does, and passes later requests through.
  void release();

 private:
  Fault next_fault();
  int upstream_port_;
  int port_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable stall_changed_;
  bool stalling_ = false;
  std::size_t stalled_ = 0;
  std::uint64_t state_ = 0;
  double rate_ = 0;
  std::atomic<std::size_t> faults_{0};
  std::function<void()> held_;  // a reordered request waiting for the next one
};

}  // namespace irt::test
