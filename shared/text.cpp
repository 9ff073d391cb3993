#include "shared/text.h"

namespace irt::shared {

std::string join(const std::vector<std::string>& items, std::string_view sep, std::string_view none) {
  if (items.empty()) return std::string(none);
  std::string out = items.front();
  for (std::size_t i = 1; i < items.size(); ++i) out.append(sep).append(items[i]);
  return out;
}

}  // namespace irt::shared
