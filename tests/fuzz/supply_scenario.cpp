// A supply scenario as `irt-hub simulate supply` loads it
// (shared/supply_simulator.h load_supply_scenario), against the reference
// study of packaging/examples: a scenario or every problem found, never both,
// never an exception; each problem says where and what.
#include "shared/supply_simulator.h"
#include "tests/fuzz/fuzz.h"

using namespace irt;

namespace {
const shared::Study& reference_study() {
  static const auto load = shared::load_study_file(fuzz::source_path("packaging/examples/supply-reference.json"));
  FUZZ_CHECK(load.study.has_value(), load.errors.empty() ? "" : load.errors[0]);
  return *load.study;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto load = shared::load_supply_scenario(fuzz::input_text(data, size), reference_study());
  FUZZ_CHECK(load.scenario.has_value() != !load.errors.empty(),
             std::to_string(load.errors.size()) + " errors beside a scenario: " + (load.errors.empty() ? "" : load.errors[0]));
  for (const auto& e : load.errors) FUZZ_CHECK(e.find(": ") != std::string::npos, "an error without its place: " + e);
  return 0;
}
