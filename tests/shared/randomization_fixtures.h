// Studies and a seeded random source shared by the randomization tests.
#pragma once

#include <array>
#include <string>

#include "sync/seeded_source.h"
#include "shared/study.h"

namespace irt::test {

inline sync::SeededSource seeded(std::uint8_t fill_byte) {
  std::array<std::uint8_t, 32> seed{};
  for (std::size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<std::uint8_t>(fill_byte + i);
  return sync::SeededSource(seed);
}

inline shared::Study two_arm_study(shared::Method method) {
  shared::Study s;
  s.id = "TEST-2ARM";
  s.version = 1;
  s.arms = {{"A", "Active", "Treatment", 1}, {"B", "Placebo", "Treatment", 1}};
  s.randomization.method = method;
  s.randomization.block_sizes = {4};
  return s;
}

// Sites 101-103 in two countries, factors sex (F/M) and age (young/old/older).
inline shared::Study stratified_study(std::vector<shared::Arm> arms, std::vector<int> block_sizes) {
  shared::Study s;
  s.id = "TEST-STRAT";
  s.version = 3;
  s.arms = std::move(arms);
  s.countries = {{"DE", "Germany"}, {"FR", "France"}};
  s.sites = {{"101", "Berlin", "DE"}, {"102", "Munich", "DE"}, {"103", "Lyon", "FR"}};
  s.factors = {{"sex", "Sex", {"F", "M"}}, {"age", "Age", {"young", "old", "older"}}};
  s.randomization.method = shared::Method::permuted_blocks;
  s.randomization.block_sizes = std::move(block_sizes);
  s.randomization.strata = {"site", "sex"};
  return s;
}

// Minimization over binary factors f1..fN.
inline shared::Study minimization_study(std::vector<shared::Arm> arms, int factors, double p) {
  shared::Study s;
  s.id = "TEST-MIN";
  s.version = 1;
  s.arms = std::move(arms);
  for (int f = 1; f <= factors; ++f) {
    std::string id = "f" + std::to_string(f);
    s.factors.push_back({id, id, {"0", "1"}});
    s.randomization.minimization_factors.push_back({id, 1.0});
  }
  s.randomization.method = shared::Method::minimization;
  s.randomization.preferred_probability = p;
  return s;
}

}  // namespace irt::test
