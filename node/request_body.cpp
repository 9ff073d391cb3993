#include "node/request_body.h"

#include <cmath>

#include "node/request_limits.h"

namespace irt::node {

using nlohmann::json;
using shared::Errc;
using shared::make_error;

RequestBody::RequestBody(const std::string& text) {
  if (text.empty()) {
    j_ = json::object();
    return;
  }
  j_ = json::parse(text, nullptr, false);
  if (j_.is_discarded() || !j_.is_object()) {
    error_ = make_error(Errc::invalid_input, "the request body must be a JSON object");
    j_ = json::object();
  }
  if (auto st = check_request_fields(j_); !st) error_ = st.error();
}

std::string RequestBody::text(const char* field) {
  const auto& v = raw(field);
  if (v.is_null()) return "";
  if (!v.is_string()) return fail(field, "a string");
  return v.get<std::string>();
}

std::optional<double> RequestBody::number(const char* field) {
  const auto& v = raw(field);
  if (v.is_null()) return std::nullopt;
  if (!v.is_number()) {
    fail(field, "a number");
    return std::nullopt;
  }
  return v.get<double>();
}

std::optional<std::int64_t> RequestBody::whole_number(const char* field, std::int64_t min, std::int64_t max) {
  auto n = number(field);
  if (!n) return std::nullopt;
  // Compared as doubles before the conversion: a double outside the range of
  // the integer type it is converted to is undefined behaviour.
  if (*n != std::floor(*n) || *n < static_cast<double>(min) || *n > static_cast<double>(max)) {
    fail(field, "a whole number from " + std::to_string(min) + " to " + std::to_string(max));
    return std::nullopt;
  }
  return static_cast<std::int64_t>(*n);
}

std::vector<std::string> RequestBody::kits(const char* field) {
  std::vector<std::string> out;
  const auto& v = raw(field);
  if (v.is_null()) return out;
  if (!v.is_array()) return fail(field, "a list of kit numbers"), out;
  for (const auto& k : v) {
    if (!k.is_string()) return fail(field, "a list of kit numbers"), std::vector<std::string>{};
    out.push_back(k.get<std::string>());
  }
  return out;
}

const json& RequestBody::raw(const char* field) const {
  static const json kAbsent;
  auto it = j_.find(field);
  return it == j_.end() ? kAbsent : *it;
}

std::string RequestBody::fail(const std::string& field, const std::string& expected) {
  if (!error_) error_ = make_error(Errc::invalid_input, field + ": must be " + expected);
  return "";
}

}  // namespace irt::node
