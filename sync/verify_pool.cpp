#include "sync/verify_pool.h"

#include <atomic>

namespace irt::sync {

struct VerifyPool::Job {
  std::size_t n = 0;
  const std::function<void(std::size_t)>* fn = nullptr;
  std::atomic<std::size_t> next{0};
};

namespace {
// Small enough to balance two cores on a short batch, large enough that the
// shared counter is not contended (one Ed25519 verify is ~50 microseconds).
constexpr std::size_t kChunk = 8;
}  // namespace

VerifyPool::VerifyPool(unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 1; i < threads; ++i) workers_.emplace_back([this](std::stop_token st) { work(st); });
}

VerifyPool::~VerifyPool() {
  for (auto& w : workers_) w.request_stop();
  {
    std::lock_guard lock(mutex_);
  }
  wake_.notify_all();
  workers_.clear();  // joins
}

void VerifyPool::drain(Job& job) {
  for (;;) {
    std::size_t begin = job.next.fetch_add(kChunk, std::memory_order_relaxed);
    if (begin >= job.n) return;
    std::size_t end = std::min(job.n, begin + kChunk);
    for (std::size_t i = begin; i < end; ++i) (*job.fn)(i);
  }
}

void VerifyPool::work(std::stop_token stop) {
  std::size_t seen = 0;
  for (;;) {
    Job* job = nullptr;
    {
      std::unique_lock lock(mutex_);
      if (!wake_.wait(lock, stop, [&] { return generation_ != seen; })) return;
      seen = generation_;
      job = job_;
      if (!job) continue;
      ++busy_;
    }
    drain(*job);
    {
      std::lock_guard lock(mutex_);
      --busy_;
    }
    done_.notify_all();
  }
}

void VerifyPool::run(std::size_t n, const std::function<void(std::size_t)>& fn) {
  if (n == 0) return;
  std::lock_guard run_lock(run_mutex_);
  Job job;
  job.n = n;
  job.fn = &fn;
  if (!workers_.empty() && n > kChunk) {
    {
      std::lock_guard lock(mutex_);
      job_ = &job;
      ++generation_;
    }
    wake_.notify_all();
  }
  drain(job);
  // Workers that picked the job up may still be finishing their last chunk;
  // the job lives on this stack, so wait for them before returning.
  std::unique_lock lock(mutex_);
  job_ = nullptr;
  done_.wait(lock, [&] { return busy_ == 0; });
}

}  // namespace irt::sync
