// What a blinded reader must not find in an export's text (hub exports:
// tests/hub/exports_test.cpp, tests/integration/export_e2e_test.cpp).
#pragma once

#include <cctype>
#include <string>

#include "shared/study.h"

namespace irt::test {

// True when `w` stands in `s` as a whole word (no letter or digit either side).
inline bool word_in(const std::string& s, const std::string& w) {
  for (auto at = s.find(w); at != std::string::npos; at = s.find(w, at + 1)) {
    bool starts = at == 0 || !std::isalnum(static_cast<unsigned char>(s[at - 1]));
    bool ends = at + w.size() == s.size() || !std::isalnum(static_cast<unsigned char>(s[at + w.size()]));
    if (starts && ends) return true;
  }
  return false;
}

// What names the allocation in an export's text: an arm's name, a kit type's
// id or name, a column or element for either, or an arm id as a whole value;
// empty when nothing does.
inline std::string revealing(const shared::Study& study, const std::string& text) {
  for (const auto& a : study.arms) {
    if (word_in(text, a.name)) return a.name;
    for (const auto& whole : {"\"" + a.id + "\"", "," + a.id + ",", "," + a.id + "\r", "Value=\"" + a.id + "\""})
      if (text.find(whole) != std::string::npos) return "arm " + a.id;
  }
  for (const auto& k : study.kit_types)
    if (word_in(text, k.id) || word_in(text, k.name)) return k.id;
  for (const auto* column : {"arm", "arm_name", "kit_type", "kit_types", "IT.ARM", "IT.KITTYPE", "CL.ARM"})
    if (word_in(text, column)) return column;
  // The audit trail's opened sealed part, as a JSON key (also inside a CSV field).
  if (text.find("allocation\"") != std::string::npos) return "allocation";
  return "";
}

}  // namespace irt::test
