// A request body of the node's /api/v1 routes, read field by field
// (node/api_server.cpp): a JSON object (an empty body reads as {}) within the
// bounds of check_request_fields (node/request_limits.h). The first field of
// the wrong type or over its limit is kept as invalid_input naming it
// ("units_returned: must be a whole number from 0 to 2147483647"), and the
// route answers it before it acts.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/result.h"

namespace irt::node {

// The largest whole number a JSON number (a double) holds exactly.
inline constexpr std::int64_t kMaxExactWhole = std::int64_t{1} << 53;

class RequestBody {
 public:
  explicit RequestBody(const std::string& text);
  // A string field; "" when absent or null.
  std::string text(const char* field);
  // A number field; nullopt when absent or null.
  std::optional<double> number(const char* field);
  // A whole number from `min` to `max` (both within +-2^53, where a JSON
  // number is exact); nullopt when absent or null.
  std::optional<std::int64_t> whole_number(const char* field, std::int64_t min, std::int64_t max);
  // A list of kit numbers (strings); empty when absent or null.
  std::vector<std::string> kits(const char* field);
  // Any field as given (null when absent), for a shape the others do not read.
  const nlohmann::json& raw(const char* field) const;
  // Keeps the first problem: "FIELD: must be EXPECTED"; returns "".
  std::string fail(const std::string& field, const std::string& expected);
  bool ok() const { return !error_; }
  const shared::Error& error() const { return *error_; }

 private:
  nlohmann::json j_;
  std::optional<shared::Error> error_;
};

}  // namespace irt::node
