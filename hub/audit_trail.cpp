#include "hub/audit_trail.h"

#include <algorithm>

#include "crypto/seal.h"
#include "hub/tuning.h"
#include "shared/event_payloads.h"
#include "sync/event.h"

namespace irt::hub {

namespace {

using nlohmann::json;

constexpr const char* kWithheld = "(withheld: it reveals the allocation)";

// The words a blinded reader must not see: every arm name and every kit type's
// id and name (each kit type treats one arm). Arm ids are short letters that
// occur in ordinary text, and never travel in clear: they are sealed.
std::vector<std::string> revealing_words(const shared::Study& s) {
  std::vector<std::string> out;
  for (const auto& a : s.arms) out.push_back(a.name);
  for (const auto& k : s.kit_types) {
    out.push_back(k.id);
    out.push_back(k.name);
  }
  return out;
}

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }

bool names_any(const std::string& text, const std::vector<std::string>& words) {
  for (const auto& w : words)
    for (auto at = text.find(w); at != std::string::npos; at = text.find(w, at + 1)) {
      bool starts = at == 0 || !is_word_char(text[at - 1]);
      bool ends = at + w.size() == text.size() || !is_word_char(text[at + w.size()]);
      if (starts && ends) return true;
    }
  return false;
}

std::string text_of(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// A node event as a trail entry; the sealed part opened for an unblinded reader.
TrailEntry node_entry(HubState& hub, const sync::LedgerNode& node, const sync::SignedEvent& e, bool blinded) {
  TrailEntry t;
  t.at_ms = e.body.device_time_ms;
  t.source = "node";
  t.user = e.body.actor;
  t.action = e.body.type;
  t.node_id = node.node_id;
  t.site_id = node.site_id;
  t.seq = e.body.seq;
  auto payload = json::parse(e.body.payload.begin(), e.body.payload.end(), nullptr, false);
  if (!payload.is_object()) {
    t.details = json::object();
    t.reason = "(the event's payload is not a JSON object)";
    return t;
  }
  for (const char* key : {"participant", "kit", "shipment", "old_kit"})
    if (t.object = text_of(payload, key); !t.object.empty()) break;
  for (const char* key : {"reason", "screen_failure_reason", "deviation_reason", "text"})
    if (t.reason = text_of(payload, key); !t.reason.empty()) break;
  // A dispensing's reasons are one level down: outside the window, out of order.
  for (auto [key, label] : {std::pair{"deviation", "outside the visit window: "}, {"out_of_order", "out of order: "}})
    if (auto o = payload.find(key); o != payload.end() && o->is_object())
      t.reason += (t.reason.empty() ? "" : "; ") + std::string(label) + text_of(*o, "reason");
  if (auto s = payload.find("esignature"); s != payload.end() && s->is_object())
    t.signature = text_of(*s, "signer") + " (" + text_of(*s, "role") + "), " + text_of(*s, "meaning") + ", " +
                  (s->contains("signed_ms") && (*s)["signed_ms"].is_number_integer()
                       ? utc_text((*s)["signed_ms"].get<std::int64_t>())
                       : std::string("?"));
  std::string sealed = text_of(payload, "sealed");
  payload.erase("sealed");
  if (!sealed.empty()) {
    if (blinded) {
      t.withheld = true;
    } else {
      auto box = crypto::from_base64(sealed);
      auto plain = box ? crypto::open_sealed(hub.unblinding_key(), *box) : std::nullopt;
      auto opened = plain ? json::parse(plain->begin(), plain->end(), nullptr, false) : json();
      payload["allocation"] = opened.is_discarded() || opened.is_null() ? json("(does not open with the hub's key)")
                                                                        : opened;
    }
  }
  t.details = std::move(payload);
  return t;
}

}  // namespace

std::vector<TrailEntry> audit_trail(HubState& hub, const AuditFilter& filter, bool blinded) {
  std::vector<TrailEntry> out;
  auto words = blinded ? revealing_words(hub.study()) : std::vector<std::string>{};
  // The hub's entries: the object filter is the audit's own.
  for (auto& a : audit_entries(hub.db(), filter)) {
    TrailEntry t{a.at_ms, "hub", a.actor, a.action, a.subject, a.reason, a.old_value, a.new_value, a.signature};
    t.details = json::object();
    out.push_back(std::move(t));
  }
  // The nodes' events: every event of every node, filtered here.
  for (const auto& node : hub.ledger().nodes()) {
    for (std::uint64_t after = 0;;) {
      auto records = hub.ledger().records_after(node.node_id, after, kConsumptionChunk);
      if (records.empty()) break;
      for (const auto& r : records) {
        auto e = sync::parse_event(r, sync::EventLimits::ignored);
        if (!e) break;  // the ledger verified every record it holds; irt-hub verify reports otherwise
        after = e->body.seq;
        if (filter.since_ms && e->body.device_time_ms < *filter.since_ms) continue;
        if (!filter.actor.empty() && e->body.actor != filter.actor) continue;
        auto t = node_entry(hub, node, *e, blinded);
        if (!filter.subject.empty() && t.object != filter.subject && t.node_id != filter.subject) continue;
        out.push_back(std::move(t));
      }
      if (records.size() < kConsumptionChunk) break;
    }
  }
  if (blinded)
    for (auto& t : out) {
      if (names_any(t.reason, words) || names_any(t.old_value, words) || names_any(t.new_value, words)) {
        t.reason = t.old_value = t.new_value = kWithheld;
        t.withheld = true;
      }
      if (names_any(t.details.dump(), words)) {
        t.details = json{{"withheld", kWithheld}};
        t.withheld = true;
      }
    }
  std::stable_sort(out.begin(), out.end(), [](const TrailEntry& a, const TrailEntry& b) { return a.at_ms < b.at_ms; });
  return out;
}

std::string readable_text(const shared::Study& study, const std::string& text, bool blinded) {
  return blinded && names_any(text, revealing_words(study)) ? kWithheld : text;
}

json to_json(const TrailEntry& e) {
  json j{{"at", utc_text(e.at_ms)},
         {"source", e.source},
         {"user", e.user},
         {"action", e.action},
         {"object", e.object},
         {"reason", e.reason},
         {"old_value", e.old_value},
         {"new_value", e.new_value},
         {"signature", e.signature}};
  if (e.source == "node") {
    j["node_id"] = e.node_id;
    j["site_id"] = e.site_id;
    j["seq"] = e.seq;
    j["details"] = e.details;
  }
  if (e.withheld) j["withheld"] = true;
  return j;
}

}  // namespace irt::hub
