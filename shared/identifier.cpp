#include "shared/identifier.h"

#include <algorithm>

namespace irt::shared {

bool is_id(std::string_view s) {
  if (s.empty() || s.size() > kMaxIdLength) return false;
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  };
  if (!std::all_of(s.begin(), s.end(), ok)) return false;
  return s.front() != '.' && s.front() != '_' && s.front() != '-';
}

}  // namespace irt::shared
