// What every libFuzzer harness of tests/fuzz/ shares (tests/fuzz/README.md):
// the input as text, the checks that stop the run with a message, and the
// invariants of a decoder: an error is a clean shared::Error (a known code of
// the bad-input families, a message that names the problem), and what decodes
// encodes to something that decodes to the same value.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "shared/result.h"

namespace irt::fuzz {

// Stops the run (libFuzzer saves the input as a crash) with what failed.
[[noreturn]] inline void fuzz_failed(const char* what, const char* file, int line, const std::string& detail) {
  std::fprintf(stderr, "%s:%d: fuzz check failed: %s %s\n", file, line, what, detail.c_str());
  std::abort();
}
#define FUZZ_CHECK(cond, detail) \
  ((cond) ? (void)0 : ::irt::fuzz::fuzz_failed(#cond, __FILE__, __LINE__, (detail)))

inline std::string_view input_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A refusal of bad input: invalid_input (or integrity for sealed or signed
// bytes that do not open or verify, or what the caller names: unauthenticated
// for a credential), never internal, with a message.
inline void check_clean_error(const shared::Error& e,
                              std::initializer_list<shared::Errc> allowed = {shared::Errc::invalid_input,
                                                                             shared::Errc::integrity}) {
  FUZZ_CHECK(std::find(allowed.begin(), allowed.end(), e.code) != allowed.end(),
             std::string("code ") + shared::errc_name(e.code) + ": " + e.message);
  FUZZ_CHECK(!e.message.empty(), "an error without a message");
  FUZZ_CHECK(shared::errc_from_name(shared::errc_name(e.code)) == e.code, e.message);
}

// parse(text) either refuses cleanly or gives a value whose JSON (to_json,
// what the producer sends) parses again to the same JSON.
template <class T>
void check_json_round_trip(shared::Result<T> (*parse)(std::string_view), std::string_view text) {
  auto first = parse(text);
  if (!first) return check_clean_error(first.error());
  nlohmann::json encoded = *first;
  auto dumped = encoded.dump();
  auto second = parse(dumped);
  FUZZ_CHECK(second.ok(), "its own encoding refused: " + second.error().message + " in " + dumped);
  nlohmann::json again = *second;
  FUZZ_CHECK(again == encoded, dumped + " became " + again.dump());
}

// The source tree, for a harness that loads an example file once (a study).
inline std::string source_path(const std::string& relative) { return std::string(IRT_SOURCE_DIR) + "/" + relative; }

}  // namespace irt::fuzz
