// A study document as the hub loads it (shared/study.h load_study): a Study
// or every problem found, never both, never an exception; each problem says
// where and what. A loaded study differs from itself in nothing (study_diff.h).
#include "shared/study.h"
#include "shared/study_diff.h"
#include "tests/fuzz/fuzz.h"

using namespace irt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto load = shared::load_study(fuzz::input_text(data, size));
  FUZZ_CHECK(load.study.has_value() != !load.errors.empty(),
             std::to_string(load.errors.size()) + " errors beside a study: " + (load.errors.empty() ? "" : load.errors[0]));
  for (const auto& e : load.errors) FUZZ_CHECK(e.find(": ") != std::string::npos, "an error without its place: " + e);
  if (load.study) {
    auto changes = shared::diff_studies(*load.study, *load.study);
    FUZZ_CHECK(changes.empty(), "a study differs from itself: " + changes[0]);
  }
  return 0;
}
