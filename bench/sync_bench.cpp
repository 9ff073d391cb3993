// Pushes 50,000 signed events from a node to a real hub process on loopback
// and prints the ingest rate next to the raw Ed25519 verification rate of this
// machine on all cores, measured in the same run, and their ratio.
// Target: ingest >= 0.8 x the raw verify bound.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "crypto/sign.h"
#include "node/node_state.h"
#include "tests/support/cluster.h"

using namespace irt;
using Clock = std::chrono::steady_clock;

namespace {

double raw_verify_rate(unsigned threads) {
  auto key = crypto::SigningKey::generate();
  crypto::Bytes message(300, 0x5a);  // about the size of an event body
  auto sig = key.sign(message);
  std::atomic<std::uint64_t> total{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> pool;
  auto start = Clock::now();
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      std::uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!crypto::verify(key.public_key(), message, sig)) std::abort();
        ++n;
      }
      total += n;
    });
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the measuring window
  stop = true;
  for (auto& t : pool) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  return static_cast<double>(total.load()) / secs;
}

// CPU seconds (user + system) used so far by a process.
double cpu_seconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto fields = text.substr(text.rfind(')') + 2);  // after "pid (comm) "
  std::istringstream f(fields);
  std::string skip;
  for (int i = 0; i < 11; ++i) f >> skip;  // state .. cmajflt
  double utime = 0, stime = 0;
  f >> utime >> stime;
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

int main() {
  constexpr int kEvents = 50000;
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());

  test::HubProcess hub;
  test::NodeDir node(hub, "101");
  auto state = node::NodeState::open(node.data(), test::kNodePassphrase);
  if (!state) {
    std::fprintf(stderr, "cannot open node: %s\n", state.error().message.c_str());
    return 1;
  }
  auto& s = **state;
  {
    std::string p = nlohmann::json{{"text", "benchmark event with a payload of ordinary size for a site note"}}.dump();
    storage::Transaction tx(s.db());
    for (int i = 0; i < kEvents; ++i)
      if (!s.log().append(s.key(), "bench", "site.note", crypto::Bytes(p.begin(), p.end()))) return 1;
    tx.commit();
  }
  std::uint64_t pending = s.log().last_seq() - s.log().acked_seq();

  // The bound is measured just before and just after the push, and the higher
  // of the two is used, so a neighbour's load cannot flatter the ratio.
  double raw_before = raw_verify_rate(cores);
  double hub_cpu = cpu_seconds(hub.pid()), node_cpu = cpu_seconds(getpid());
  auto start = Clock::now();
  auto round = s.sync_once();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  hub_cpu = cpu_seconds(hub.pid()) - hub_cpu;
  node_cpu = cpu_seconds(getpid()) - node_cpu;
  if (!round) {
    std::fprintf(stderr, "sync failed: %s\n", round.error().message.c_str());
    return 1;
  }
  double ingest = static_cast<double>(pending) / secs;

  double raw = std::max(raw_before, raw_verify_rate(cores));
  std::printf("sync ingest: %llu events pushed to irt-hub over loopback in %.2f s\n",
              static_cast<unsigned long long>(pending), secs);
  std::printf("  CPU during the push     hub %.2f s, node %.2f s (%u cores x %.2f s = %.2f s available)\n", hub_cpu,
              node_cpu, cores, secs, cores * secs);
  std::printf("  ingest rate            %10.0f events/s\n", ingest);
  std::printf("  raw Ed25519 verify     %10.0f verifications/s on %u cores (same run)\n", raw, cores);
  std::printf("  ratio                  %10.2f (target >= 0.80)\n", ingest / raw);
  return 0;
}
