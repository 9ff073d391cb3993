#include "node/sync_service.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "crypto/bytes.h"
#include "sync/hlc.h"

namespace irt::node {

namespace {
double jitter() {
  auto b = crypto::random_bytes(4);
  std::uint32_t v = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
  return 0.5 + static_cast<double>(v) / 4294967296.0;
}
}  // namespace

const char* to_string(SyncState s) {
  switch (s) {
    case SyncState::online: return "online";
    case SyncState::offline: return "offline";
    case SyncState::refused: return "refused";
  }
  return "offline";
}

SyncService::SyncService(Round round, SyncServiceOptions options)
    : round_(std::move(round)), options_(options), timer_(io_) {}

SyncService::~SyncService() { stop(); }

std::chrono::milliseconds SyncService::backoff(const SyncServiceOptions& o, int failures) {
  auto d = o.backoff_min;
  for (int i = 1; i < failures && d < o.backoff_max; ++i) d *= 2;
  return std::min(d, o.backoff_max);
}

void SyncService::start() {
  schedule(std::chrono::milliseconds(0));
  thread_ = std::thread([this] {
    auto guard = boost::asio::make_work_guard(io_);
    io_.run();
  });
}

void SyncService::stop() {
  if (stopping_.exchange(true)) return;
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

void SyncService::poke() { round_now(false); }

void SyncService::sync_now() { round_now(true); }

void SyncService::round_now(bool even_offline) {
  boost::asio::post(io_, [this, even_offline] {
    std::lock_guard lock(mutex_);
    if (even_offline || status_.state == SyncState::online || status_.rounds == 0) {
      timer_.cancel();
      timer_.expires_after(std::chrono::milliseconds(0));
      timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) run_round();
      });
    }
  });
}

SyncStatus SyncService::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

void SyncService::schedule(std::chrono::milliseconds delay) {
  timer_.expires_after(delay);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) run_round();
  });
}

void SyncService::run_round() {
  if (stopping_) return;
  auto outcome = round_();
  const auto& st = outcome.status;
  std::chrono::milliseconds next;
  {
    std::lock_guard lock(mutex_);
    ++status_.rounds;
    if (st) {
      status_.state = SyncState::online;
      status_.online = true;
      status_.last_sync_ms = sync::system_millis();
      status_.last_error.clear();
      status_.consecutive_failures = 0;
      next = options_.interval;
    } else {
      status_.state = outcome.refused                                ? SyncState::refused
                      : st.error().code == shared::Errc::unavailable ? SyncState::offline
                                                                     : SyncState::online;
      status_.online = status_.state == SyncState::online;
      status_.last_error = st.error().message;
      ++status_.consecutive_failures;
      next = std::chrono::milliseconds(static_cast<std::int64_t>(
          static_cast<double>(backoff(options_, status_.consecutive_failures).count()) * jitter()));
    }
  }
  schedule(next);
}

}  // namespace irt::node
