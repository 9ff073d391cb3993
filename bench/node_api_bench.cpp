// Randomize then dispense through the node's HTTP API on loopback, against a
// real `irt-node serve` holding 10,000 participants. Prints p50/p99 latency,
// the sustained rate of durable operations next to the durable SQLite commit
// rate measured in the same run on the same disk (single-row INSERT
// transactions, WAL, synchronous=FULL), and the node's resident memory.
// Targets: p99 <= 10 ms; sustained >= 0.3 x durable commits; RSS <= 30 MB.
// Figures only: nothing here asserts on time.
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <unistd.h>

#include "bench/bench_report.h"
#include "storage/database.h"
#include "tests/support/node_fixture.h"
#include "tests/support/test_support.h"

using namespace irt;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kParticipants = 10000;
constexpr int kMeasured = 1000;

double durable_commit_rate(const std::filesystem::path& dir) {
  auto db = storage::Database::open(dir / "commit-rate.db").value();
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
  std::vector<std::uint8_t> row(200, 0x5a);
  constexpr int n = 1000;
  auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    storage::Transaction tx(db);
    db.prepare("INSERT INTO t(v) VALUES(?)").bind(1, storage::BlobView(row)).run();
    tx.commit();
  }
  return n / std::chrono::duration<double>(Clock::now() - start).count();
}

long rss_kb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// CPU seconds (user + system) the process has used so far.
double cpu_seconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));  // the name may hold spaces
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i)
    if (i >= 14) ticks += std::stod(f);  // utime, stime
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

json post(httplib::Client& c, const std::string& path, const std::string& token, const json& body) {
  httplib::Headers h{{"Authorization", "Bearer " + token}};
  auto r = c.Post(path.c_str(), h, body.dump(), "application/json");
  if (!r || r->status != 200)
    throw std::runtime_error(path + " failed: " + (r ? std::to_string(r->status) + " " + r->body : "no answer"));
  return json::parse(r->body);
}

// One line of the summary, and its record for bench/results.json (target: a ratio of 1).
void row(const char* what, double figure, const char* unit, const char* limit_name, double limit,
         bool lower_is_better) {
  double ratio = lower_is_better ? limit / figure : figure / limit;
  std::printf("  %-48s %10.2f %-8s limit %10.2f   ratio %5.2f %s\n", what, figure, unit, limit, ratio,
              ratio >= 1.0 ? "(meets target)" : "(below target)");
  bench::record({"node-api", what, figure, unit, limit_name, limit, ratio, 1.0});
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  test::TempDir tmp;
  std::printf("node API benchmark: %d participants, %d randomize + dispense pairs measured\n", kParticipants, kMeasured);
  double commits = durable_commit_rate(tmp.path());
  std::printf("  durable SQLite commit rate (WAL, synchronous=FULL, same disk): %.0f commits/s\n", commits);

  test::NodeFixtureOptions o;
  o.numbers = kParticipants + 100;
  o.slots_per_stratum = kMeasured + 100;
  o.kits_per_type = kMeasured + 100;
  o.receive_first_shipment = false;
  o.pending_kits_per_type = 0;
  test::NodeFixture fixture(tmp / "node", o);
  int port = test::free_port();
  // IRT_BENCH_NODE_BIN runs another build of irt-node (to compare two builds on one machine).
  const char* node_bin = std::getenv("IRT_BENCH_NODE_BIN") ? std::getenv("IRT_BENCH_NODE_BIN") : IRT_NODE_BIN;
  test::Process node({node_bin, "serve", "--data", fixture.dir().string(), "--listen",
                      "127.0.0.1:" + std::to_string(port)},
                     {std::string("IRT_PASSPHRASE=") + test::kFixturePassphrase}, tmp / "node.log");
  if (!test::wait_for_port(port, 15000)) {
    std::cerr << "irt-node did not start: " << test::read_file(tmp / "node.log") << "\n";
    return 1;
  }
  long rss_empty = rss_kb(node.pid());  // serving, before any participant
  httplib::Client c("127.0.0.1", port);
  c.set_keep_alive(true);
  c.set_tcp_nodelay(true);
  auto login = c.Post("/api/v1/login", json{{"user", "carla"}, {"password", test::kFixturePassword}}.dump(),
                      "application/json");
  std::string token = json::parse(login->body)["token"];
  auto pharmacist = json::parse(c.Post("/api/v1/login", json{{"user", "paul"}, {"password", test::kFixturePassword}}.dump(),
                                       "application/json")->body)["token"].get<std::string>();

  // Setup through the API: receive the shipment in chunks, screen everyone.
  const auto& kits = fixture.first_shipment().kits;
  for (std::size_t i = 0; i < kits.size(); i += 500) {
    json list = json::array();
    for (std::size_t j = i; j < std::min(kits.size(), i + 500); ++j) list.push_back({{"kit", kits[j].kit_number}});
    post(c, "/api/v1/shipments/" + fixture.first_shipment().shipment_id + "/receive", token, {{"kits", list}});
  }
  std::vector<std::string> numbers;
  std::vector<std::string> yes(5, "yes");
  auto screen_start = Clock::now();
  for (int i = 0; i < kParticipants; ++i)
    numbers.push_back(post(c, "/api/v1/participants", token,
                           {{"factors", {{"diabetes", i % 2 ? "yes" : "no"}}}, {"eligibility", yes}})["participant"]
                          ["participant"]);
  double screen_rate = kParticipants / std::chrono::duration<double>(Clock::now() - screen_start).count();

  std::vector<double> randomize_ms, dispense_ms, pair_ms;
  std::printf("  measuring %d randomize + dispense pairs (node pid %d)\n", kMeasured, node.pid());
  double node_cpu_before = cpu_seconds(node.pid());
  auto start = Clock::now();
  for (int i = 0; i < kMeasured; ++i) {
    auto t0 = Clock::now();
    post(c, "/api/v1/participants/" + numbers[static_cast<std::size_t>(i)] + "/randomize", token,
         {{"signature_password", test::kFixturePassword}});
    auto t1 = Clock::now();
    post(c, "/api/v1/participants/" + numbers[static_cast<std::size_t>(i)] + "/dispense", pharmacist,
         {{"visit", "V2"}, {"override_reason", "benchmark"}, {"signature_password", test::kFixturePassword}});
    auto t2 = Clock::now();
    randomize_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    dispense_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    pair_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  double ops_rate = 2.0 * kMeasured / seconds;
  double node_cpu_ms = (cpu_seconds(node.pid()) - node_cpu_before) * 1000.0 / (2.0 * kMeasured);
  long rss = rss_kb(node.pid());

  std::printf("  screening (setup) through the API: %.0f participants/s\n", screen_rate);
  std::printf("  randomize  p50 %.2f ms  p99 %.2f ms\n", percentile(randomize_ms, 0.5), percentile(randomize_ms, 0.99));
  std::printf("  dispense   p50 %.2f ms  p99 %.2f ms\n", percentile(dispense_ms, 0.5), percentile(dispense_ms, 0.99));
  // Independent of other load on the machine, unlike the rates.
  std::printf("  node CPU time per operation: %.3f ms (one durable commit takes %.3f ms)\n", node_cpu_ms,
              1000.0 / commits);
  std::printf("  %-48s %10s %-8s %16s %13s\n", "", "figure", "", "", "");
  row("randomize p99 latency", percentile(randomize_ms, 0.99), "ms", "the 10 ms target", 10.0, true);
  row("dispense p99 latency", percentile(dispense_ms, 0.99), "ms", "the 10 ms target", 10.0, true);
  row("sustained durable operations", ops_rate, "ops/s", "0.3 x durable SQLite commits/s (same run, same disk)",
      0.3 * commits, false);
  std::printf("  %-48s %10.2f (sustained / durable commit rate; target >= 0.30)\n", "  as a fraction of durable commits",
              ops_rate / commits);
  row("node RSS holding 10,000 participants", static_cast<double>(rss) / 1024.0, "MB", "the 30 MB target", 30.0,
      true);
  // What the participants cost in memory (the node mirrors its trial data:
  // docs/node-storage.md), against the data itself: node.db and its WAL.
  double data_mb = 0;
  for (const char* f : {"node.db", "node.db-wal"})
    if (std::filesystem::exists(fixture.dir() / f))
      data_mb += static_cast<double>(std::filesystem::file_size(fixture.dir() / f)) / (1024.0 * 1024.0);
  row("node RSS growth from 0 to 10,000 participants", static_cast<double>(rss - rss_empty) / 1024.0, "MB",
      "the size of node.db holding them (same run)", data_mb, true);
  node.terminate();
  return 0;
}
