// Lists in words, for messages and command output.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace irt::shared {

// The items with `sep` between them, or `none` when there are none.
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ", std::string_view none = "");

}  // namespace irt::shared
