#include "node/request_limits.h"

#include <array>

#include "sync/field_limits.h"

namespace irt::node {

namespace {

using nlohmann::json;

// Free-text fields, by their name at the top of a request body. Every other
// string is an id or a short value.
constexpr std::array<std::string_view, 8> kFreeText = {
    "screen_failure_reason", "override_reason", "order_reason", "reason", "password", "signature_password",
    "witness_password", "text"};

// kits[].kit is two levels below the body; nothing the routes read is deeper.
constexpr int kMaxDepth = 3;

bool is_free_text(std::string_view top_field) {
  for (auto f : kFreeText)
    if (f == top_field) return true;
  return false;
}

shared::Status check_value(const std::string& path, const json& v, std::size_t max_chars, int depth) {
  if (v.is_string()) return check_text(path, v.get_ref<const std::string&>(), max_chars);
  if (!v.is_array() && !v.is_object()) return {};
  if (depth >= kMaxDepth)
    return shared::make_error(shared::Errc::invalid_input, path + ": nested deeper than any request of this API; "
                                                                  "see docs/openapi.yaml");
  if (v.size() > sync::kMaxListItems)
    return shared::make_error(shared::Errc::invalid_input,
                              path + ": at most " + std::to_string(sync::kMaxListItems) + " items (got " +
                                  std::to_string(v.size()) + "); send the rest in another request");
  if (v.is_array()) {
    std::size_t i = 0;
    for (const auto& item : v)
      if (auto st = check_value(path + "[" + std::to_string(i++) + "]", item, sync::kMaxIdChars, depth + 1); !st)
        return st;
    return {};
  }
  for (const auto& [key, item] : v.items()) {
    if (auto st = check_text(path + " key", key, sync::kMaxIdChars); !st) return st;
    if (auto st = check_value(path + "." + key, item, sync::kMaxIdChars, depth + 1); !st) return st;
  }
  return {};
}

}  // namespace

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++n) {
    auto b = static_cast<unsigned char>(s[i++]);
    std::size_t more = b >= 0xF0 && b < 0xF8 ? 3 : b >= 0xE0 && b < 0xF0 ? 2 : b >= 0xC0 && b < 0xE0 ? 1 : 0;
    for (; more > 0 && i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80; --more) ++i;
  }
  return n;
}

shared::Status check_text(const std::string& name, std::string_view value, std::size_t max_chars) {
  // Cheap first: a string of at most max_chars bytes has at most max_chars characters.
  if (value.size() <= max_chars) return {};
  auto chars = utf8_length(value);
  if (chars <= max_chars) return {};
  return shared::make_error(shared::Errc::invalid_input, name + ": at most " + std::to_string(max_chars) +
                                                             " characters (got " + std::to_string(chars) +
                                                             "); shorten it");
}

shared::Status check_request_fields(const json& body) {
  if (!body.is_object()) return {};
  for (const auto& [field, v] : body.items()) {
    if (auto st = check_value(field, v, is_free_text(field) ? sync::kMaxTextChars : sync::kMaxIdChars, 0); !st)
      return st;
  }
  return {};
}

}  // namespace irt::node
