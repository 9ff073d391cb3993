#include "tests/support/fault_proxy.h"

#include <httplib.h>

#include <chrono>
#include <utility>

#include "tests/support/test_support.h"

namespace irt::test {

namespace {
std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

FaultProxy::FaultProxy(int upstream_port) : upstream_port_(upstream_port), server_(std::make_unique<httplib::Server>()) {
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    Fault fault = next_fault();
    auto forward = [this, method = req.method, path = req.target, body = req.body,
                    type = req.get_header_value("Content-Type"), headers = req.headers](std::size_t body_len) {
      httplib::Client up("127.0.0.1", upstream_port_);
      up.set_read_timeout(60, 0);
      httplib::Headers h;
      for (const auto& [k, v] : headers)
        if (k.rfind("X-IRT-", 0) == 0) h.emplace(k, v);
      if (method == "GET") return up.Get(path.c_str(), h);
      return up.Post(path.c_str(), h, body.substr(0, body_len), type.c_str());
    };
    std::function<void()> held;
    {
      std::lock_guard lock(mutex_);
      held = std::exchange(held_, nullptr);
    }
    auto gateway_error = [&res] {
      res.status = 502;
      res.set_content(R"({"error":{"code":"proxy","message":"injected fault"}})", "application/json");
    };
    httplib::Result r{nullptr, httplib::Error::Unknown};
    switch (fault) {
      case Fault::stall: {
        std::unique_lock lock(mutex_);
        ++stalled_;
        stall_changed_.notify_all();
        stall_changed_.wait(lock, [this] { return !stalling_; });
        --stalled_;
        gateway_error();
        break;
      }
      case Fault::drop_request:
        gateway_error();
        break;
      case Fault::drop_response:
        forward(req.body.size());
        gateway_error();
        break;
      case Fault::duplicate_request:
        forward(req.body.size());
        r = forward(req.body.size());
        break;
      case Fault::delay:
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        r = forward(req.body.size());
        break;
      case Fault::reorder: {
        std::lock_guard lock(mutex_);
        held_ = [forward, n = req.body.size()] { forward(n); };
        gateway_error();
        break;
      }
      case Fault::truncate_request:
        r = forward(req.body.size() / 2);
        break;
      case Fault::truncate_response:
      case Fault::none:
        r = forward(req.body.size());
        break;
    }
    if (fault != Fault::drop_request && fault != Fault::drop_response && fault != Fault::reorder &&
        fault != Fault::stall) {
      if (!r) {
        gateway_error();
      } else {
        res.status = r->status;
        std::string body = r->body;
        if (fault == Fault::truncate_response) body.resize(body.size() / 2);
        res.set_content(body, r->get_header_value("Content-Type").c_str());
      }
    }
    if (held) held();  // the held request reaches the hub after this one
  };
  server_->Get(".*", handler);
  server_->Post(".*", handler);
  port_ = server_->bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  wait_for_port(port_);
}

FaultProxy::~FaultProxy() {
  release();  // a held request would keep its server thread, and stop(), waiting
  server_->stop();
  thread_.join();
}

void FaultProxy::set_random_faults(std::uint64_t seed, double rate) {
  std::lock_guard lock(mutex_);
  state_ = seed;
  rate_ = rate;
}

void FaultProxy::pass_through() {
  std::lock_guard lock(mutex_);
  rate_ = 0;
}

void FaultProxy::stall_all() {
  std::lock_guard lock(mutex_);
  stalling_ = true;
}

std::size_t FaultProxy::stalled_now() {
  std::lock_guard lock(mutex_);
  return stalled_;
}

bool FaultProxy::wait_stalled(std::size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return stall_changed_.wait_for(lock, timeout, [&] { return stalled_ >= n; });
}

void FaultProxy::release() {
  {
    std::lock_guard lock(mutex_);
    stalling_ = false;
    rate_ = 0;
  }
  stall_changed_.notify_all();
}

Fault FaultProxy::next_fault() {
  std::lock_guard lock(mutex_);
  if (stalling_) {
    ++faults_;
    return Fault::stall;
  }
  if (rate_ <= 0) return Fault::none;
  double u = static_cast<double>(splitmix(state_) >> 11) / 9007199254740992.0;
  if (u >= rate_) return Fault::none;
  ++faults_;
  return static_cast<Fault>(1 + splitmix(state_) % 7);
}

}  // namespace irt::test
