#include "hub/kit_history.h"

#include <cctype>

namespace irt::hub {

namespace {

constexpr const char* kLotWithheld = "(withheld: names the kit's lot)";

// True when `text` holds `word` whole (not inside a longer id: "L01" is not in "V2-L01").
bool names_word(const std::string& text, const std::string& word) {
  auto id_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; };
  for (auto at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    const auto end = at + word.size();
    if ((at == 0 || !id_char(text[at - 1])) && (end == text.size() || !id_char(text[end]) ||
                                                (text[end] == '.' && (end + 1 == text.size() || text[end + 1] == ' '))))
      return true;
  }
  return false;
}

// True when `e` is about the kit: it names the kit, its shipment or its lot,
// or a node event's payload lists the kit's number.
bool about(const TrailEntry& e, const HubKit& k) {
  if (e.object == k.number) return true;
  if (!k.shipment_id.empty() && (e.object == k.shipment_id || names_word(e.new_value, k.shipment_id))) return true;
  if (e.source == "hub" && e.object == k.lot && e.action.rfind("lot.", 0) == 0) return true;
  // The kit list it came from (generated or imported) names its lots.
  if (e.source == "hub" && e.action.rfind("kits.", 0) == 0 && names_word(e.new_value, k.lot)) return true;
  if (e.source == "node" && e.details.dump().find("\"" + k.number + "\"") != std::string::npos) return true;
  return false;
}

}  // namespace

shared::Result<KitHistory> kit_history(HubState& hub, const std::string& kit, bool blinded) {
  auto k = find_kit(hub.db(), kit);
  if (!k) return shared::make_error(shared::Errc::not_found, "no kit " + kit + " at this hub; check the number");
  KitHistory h;
  h.kit = *k;
  for (auto& e : audit_trail(hub, {}, blinded))
    if (about(e, *k)) {
      // A blinded reader learns what happened, not which lot: an imported lot
      // may hold one kit type. Text naming the lot is withheld whole (listing
      // the other lots would name it by elimination).
      if (blinded && e.object == k->lot) e.object = kLotWithheld;
      if (blinded && (names_word(e.reason, k->lot) || names_word(e.old_value, k->lot) ||
                      names_word(e.new_value, k->lot))) {
        e.reason = e.old_value = e.new_value = kLotWithheld;
        e.withheld = true;
      }
      h.entries.push_back(std::move(e));
    }
  if (blinded) h.kit.kit_type.clear(), h.kit.lot.clear();
  return h;
}

nlohmann::json to_json(const KitHistory& h, bool blinded) {
  nlohmann::json kit = {{"kit", h.kit.number},
                        {"status", shared::to_string(h.kit.status)},
                        {"custody_kind", h.kit.custody_kind},
                        {"custody_id", h.kit.custody_id},
                        {"expiry", h.kit.expiry},
                        {"shipment", h.kit.shipment_id}};
  if (!blinded) {
    kit["kit_type"] = h.kit.kit_type;
    kit["lot"] = h.kit.lot;
  }
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& e : h.entries) entries.push_back(to_json(e));
  return {{"kit", kit}, {"history", entries}};
}

}  // namespace irt::hub
