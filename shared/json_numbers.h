// Whole numbers read from JSON without nlohmann's silent conversions:
// get<std::uint32_t>() of -1 or 4294967297 wraps to another number, and of
// 1e300 is undefined behaviour. whole_number<Int>(v) is v when it is a JSON
// integer within Int's range, and throws nlohmann::json::type_error (302)
// otherwise, so a parser that refuses a mistyped field (it catches
// json::exception) refuses it the same way.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace irt::shared {

template <class Int>
Int whole_number(const nlohmann::json& v) {
  static_assert(std::is_integral_v<Int> && !std::is_same_v<Int, bool>);
  if (v.is_number_unsigned()) {
    auto u = v.get<std::uint64_t>();
    if (u <= static_cast<std::uint64_t>(std::numeric_limits<Int>::max())) return static_cast<Int>(u);
  } else if (v.is_number_integer()) {
    auto i = v.get<std::int64_t>();
    if constexpr (std::is_signed_v<Int>)
      if (i >= std::numeric_limits<Int>::min() && i <= std::numeric_limits<Int>::max()) return static_cast<Int>(i);
  }
  throw nlohmann::json::type_error::create(
      302, "must be a whole number from " + std::to_string(std::numeric_limits<Int>::min()) + " to " +
               std::to_string(std::numeric_limits<Int>::max()) + ", not " + v.dump(),
      &v);
}

}  // namespace irt::shared
