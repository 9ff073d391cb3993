// One figure of a benchmark, as `packaging/dev.sh bench` gathers them into
// bench/results.json and bench/results.md: the figure, the limit it is judged
// against (measured in the same run wherever the limit is physical), their
// ratio oriented so that higher is better, and the ratio the project targets.
// record() appends one JSON line to the file $IRT_BENCH_RESULTS names, and does
// nothing when it is unset; each benchmark prints its own report as before.
#pragma once
#include <cstdlib>
#include <fstream>
#include <string>
#include <nlohmann/json.hpp>

namespace irt::bench {

struct Figure {
  std::string benchmark;   // the program: "sync", "node-api", ...
  std::string name;        // what is measured: "ingest rate, SQLite"
  double value = 0;
  std::string unit;        // "events/s", "ms", "MB"
  std::string limit_name;  // what the figure is judged against: "raw Ed25519 verifications on 2 cores"
  double limit = 0;
  double ratio = 0;        // figure against limit, higher is better (limit / figure for a time or a size)
  double target = 0;       // the ratio the project asks for
};

inline void record(const Figure& f) {
  const char* file = std::getenv("IRT_BENCH_RESULTS");
  if (file == nullptr || *file == '\0') return;
  nlohmann::json j{{"benchmark", f.benchmark}, {"figure", f.name},     {"value", f.value},
                   {"unit", f.unit},           {"limit", f.limit_name}, {"limit_value", f.limit},
                   {"ratio", f.ratio},         {"target", f.target},    {"meets_target", f.ratio >= f.target}};
  std::ofstream(file, std::ios::app) << j.dump() << "\n";
}

}  // namespace irt::bench
