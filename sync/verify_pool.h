// A small fixed pool of threads for checking signatures of a batch in
// parallel: ingest is bounded by Ed25519 verification, so the hub spreads one
// batch's verifies over every core and keeps the threads between batches.
//
// run(n, fn) calls fn(i) once for each i in [0, n), on the pool's workers and on
// the calling thread, and returns when all calls are done. fn must not throw
// (a throw ends the process) and must be safe to call concurrently for
// different i. One run at a time: calls to run() are serialised internally.
// Durability: none; it only computes.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace irt::sync {

class VerifyPool {
 public:
  // threads = total threads used by run(), the caller included; 0 means one per core.
  explicit VerifyPool(unsigned threads = 0);
  ~VerifyPool();
  VerifyPool(const VerifyPool&) = delete;
  VerifyPool& operator=(const VerifyPool&) = delete;

  void run(std::size_t n, const std::function<void(std::size_t)>& fn);
  unsigned threads() const { return static_cast<unsigned>(workers_.size()) + 1; }

 private:
  struct Job;
  void work(std::stop_token stop);
  static void drain(Job& job);

  std::mutex run_mutex_;  // one run at a time
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::condition_variable done_;
  Job* job_ = nullptr;
  std::size_t generation_ = 0;
  std::size_t busy_ = 0;  // workers inside the current job
  std::vector<std::jthread> workers_;
};

}  // namespace irt::sync
