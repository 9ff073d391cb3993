#include "shared/slot_slice.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "shared/json_numbers.h"

namespace irt::shared {

std::size_t grant_target_slots(double forecast_per_day, double offline_days) {
  if (!(forecast_per_day > 0) || !(offline_days > 0)) return 0;
  double need = std::ceil(forecast_per_day * offline_days - 1e-9);
  return std::max<std::size_t>(1, static_cast<std::size_t>(need));
}

namespace {

std::string exhausted_message(const std::string& label) {
  return "the randomization slice for stratum '" + label +
         "' is used up on this node; sync with the hub to receive more slots, then randomize again";
}

}  // namespace

Result<GrantWalk> walk_grant(const RandomizationList& list, std::uint32_t stratum, std::size_t next_ungranted,
                             std::size_t outstanding, std::size_t min_slots, long cap_headroom) {
  if (stratum >= list.strata.count())
    return make_error(Errc::invalid_input, "stratum " + std::to_string(stratum + 1) +
                                               " does not exist in this list (it has " +
                                               std::to_string(list.strata.count()) + "); check the stratum index");
  GrantWalk walk;
  walk.next_ungranted = next_ungranted;
  if (min_slots == 0) return walk;
  const std::string label = list.strata.label(stratum);
  long room = cap_headroom == kUnlimitedHeadroom ? kUnlimitedHeadroom : cap_headroom - static_cast<long>(outstanding);
  if (room <= 0)
    return make_error(Errc::exhausted, "stratum '" + label +
                                           "' has no room left under its enrollment cap (counting slots already "
                                           "granted to nodes); no further slots can be granted unless the cap is amended");
  const std::size_t begin = list.stratum_begin[stratum];
  const std::size_t end = list.stratum_begin[stratum + 1];
  std::size_t at = begin + next_ungranted;
  if (at >= end)
    return make_error(Errc::exhausted, "the randomization list has no ungranted blocks left for stratum '" + label +
                                           "'; generate an extension list with a new seed and load it");
  std::size_t granted = 0;
  while (granted < min_slots && at < end && static_cast<long>(granted) < room) {
    const std::uint32_t block = list.slots[at].block;
    while (at < end && list.slots[at].block == block) {
      if (static_cast<long>(granted) < room) {
        const auto& s = list.slots[at];
        walk.slots.push_back({s.slot, s.block, s.block_size, list.allocation.arms[s.arm]});
        walk.granted.push_back(at);
        ++granted;
      } else {
        walk.voided.push_back(at);  // a cap cut the block: its rest is never used
      }
      ++at;
    }
  }
  walk.next_ungranted = at - begin;
  return walk;
}

Status check_slot_use(const std::string& node, std::uint32_t stratum, std::uint32_t slot, bool owned,
                      std::string_view state) {
  if (!owned)
    return make_error(Errc::forbidden, "node '" + node + "' reported using slot " + std::to_string(slot) +
                                           " of stratum " + std::to_string(stratum + 1) +
                                           ", which it does not own; keep the event and raise a deviation");
  if (state != "granted" && state != "voided")
    return make_error(Errc::conflict, "node '" + node + "' reported using slot " + std::to_string(slot) +
                                          " of stratum " + std::to_string(stratum + 1) +
                                          ", which is already used; keep the event and raise a deviation");
  return {};
}

// ---- NodeSlots ----

Status NodeSlots::apply(const SlotGrant& grant) {
  if (std::find(applied_grants_.begin(), applied_grants_.end(), grant.grant_id) != applied_grants_.end())
    return make_error(Errc::conflict, "slot grant " + std::to_string(grant.grant_id) +
                                          " was already applied; a directive is applied once, skip it");
  auto& st = strata_[grant.stratum];
  for (const auto& s : grant.slots)
    if (st.slots.count(s.slot))
      return make_error(Errc::conflict, "slot grant " + std::to_string(grant.grant_id) + " repeats slot " +
                                            std::to_string(s.slot) + " of stratum '" + grant.stratum_label +
                                            "' that this node already holds; report this to the hub's operators");
  st.label = grant.stratum_label;
  for (const auto& s : grant.slots) st.slots[s.slot] = Held{s, State::free};
  applied_grants_.push_back(grant.grant_id);
  return {};
}

void NodeSlots::apply(const SlotVoid& v) {
  auto it = strata_.find(v.stratum);
  if (it == strata_.end()) return;
  for (auto slot : v.slots) {
    auto h = it->second.slots.find(slot);
    if (h != it->second.slots.end() && h->second.state == State::free) h->second.state = State::voided;
  }
}

Result<GrantedSlot> NodeSlots::take_next(std::uint32_t stratum) {
  return take_next(stratum, [](const std::string&) { return true; });
}

Result<GrantedSlot> NodeSlots::take_next(std::uint32_t stratum, const std::function<bool(const std::string& arm)>& open) {
  auto it = strata_.find(stratum);
  if (it == strata_.end())
    return make_error(Errc::exhausted, "this node holds no randomization slots for stratum " +
                                           std::to_string(stratum + 1) +
                                           "; sync with the hub to receive slots, then randomize again");
  for (auto& [n, h] : it->second.slots)
    if (h.state == State::free && open(h.slot.arm)) {
      h.state = State::used;
      return h.slot;
    }
  return make_error(Errc::exhausted, exhausted_message(it->second.label));
}

Result<GrantedSlot> NodeSlots::take(std::uint32_t stratum, std::uint32_t slot) {
  auto it = strata_.find(stratum);
  auto h = it == strata_.end() ? decltype(it->second.slots.end()){} : it->second.slots.find(slot);
  if (it == strata_.end() || h == it->second.slots.end())
    return make_error(Errc::forbidden, "slot " + std::to_string(slot) + " of stratum " + std::to_string(stratum + 1) +
                                           " is not owned by this node; only slots granted by the hub can be used");
  if (h->second.state != State::free)
    return make_error(Errc::conflict, "slot " + std::to_string(slot) + " of stratum '" + it->second.label + "' is " +
                                          (h->second.state == State::used ? "already used" : "voided") +
                                          "; take the next free slot instead");
  h->second.state = State::used;
  return h->second.slot;
}

std::size_t NodeSlots::free_count(std::uint32_t stratum) const {
  auto it = strata_.find(stratum);
  if (it == strata_.end()) return 0;
  return static_cast<std::size_t>(std::count_if(it->second.slots.begin(), it->second.slots.end(),
                                                [](const auto& p) { return p.second.state == State::free; }));
}

void to_json(nlohmann::json& j, const NodeSlots& s) {
  j = nlohmann::json{{"applied_grants", s.applied_grants_}, {"strata", nlohmann::json::array()}};
  for (const auto& [index, st] : s.strata_) {
    nlohmann::json slots = nlohmann::json::array();
    for (const auto& [n, h] : st.slots) {
      nlohmann::json e = h.slot;
      e["state"] = h.state == NodeSlots::State::free ? "free" : h.state == NodeSlots::State::used ? "used" : "voided";
      slots.push_back(std::move(e));
    }
    j["strata"].push_back({{"stratum", index}, {"label", st.label}, {"slots", std::move(slots)}});
  }
}

void from_json(const nlohmann::json& j, NodeSlots& s) {
  s = NodeSlots{};
  j.at("applied_grants").get_to(s.applied_grants_);
  for (const auto& st : j.at("strata")) {
    auto& target = s.strata_[st.at("stratum").get<std::uint32_t>()];
    target.label = st.at("label").get<std::string>();
    for (const auto& e : st.at("slots")) {
      NodeSlots::Held h{e.get<GrantedSlot>(), NodeSlots::State::free};
      auto state = e.at("state").get<std::string>();
      if (state == "used") h.state = NodeSlots::State::used;
      else if (state == "voided") h.state = NodeSlots::State::voided;
      else if (state != "free") throw nlohmann::json::other_error::create(501, "unknown slot state " + state, &e);
      target.slots[h.slot.slot] = std::move(h);
    }
  }
}

// ---- SliceLedger ----

SliceLedger::SliceLedger(const RandomizationList& list)
    : list_(list),
      state_(list.slots.size(), State::ungranted),
      owner_(list.slots.size(), 0),
      next_ungranted_(list.strata.count(), 0) {}

std::size_t SliceLedger::index(std::uint32_t stratum, std::uint32_t slot) const {
  if (stratum >= next_ungranted_.size() || slot == 0) return list_.slots.size();
  std::size_t i = list_.stratum_begin[stratum] + slot - 1;
  return i < list_.stratum_begin[stratum + 1] ? i : list_.slots.size();
}

std::uint32_t SliceLedger::node_index(const std::string& node) {
  auto it = std::find(nodes_.begin(), nodes_.end(), node);
  if (it != nodes_.end()) return static_cast<std::uint32_t>(it - nodes_.begin()) + 1;
  nodes_.push_back(node);
  return static_cast<std::uint32_t>(nodes_.size());
}

std::size_t SliceLedger::outstanding(std::uint32_t stratum) const {
  if (stratum >= next_ungranted_.size()) return 0;
  std::size_t n = 0;
  for (std::size_t i = list_.stratum_begin[stratum]; i < list_.stratum_begin[stratum + 1]; ++i)
    n += state_[i] == State::granted;
  return n;
}

std::size_t SliceLedger::free_slots(const std::string& node, std::uint32_t stratum) const {
  auto it = std::find(nodes_.begin(), nodes_.end(), node);
  if (it == nodes_.end() || stratum >= next_ungranted_.size()) return 0;
  auto who = static_cast<std::uint32_t>(it - nodes_.begin()) + 1;
  std::size_t n = 0;
  for (std::size_t i = list_.stratum_begin[stratum]; i < list_.stratum_begin[stratum + 1]; ++i)
    n += state_[i] == State::granted && owner_[i] == who;
  return n;
}

Result<SlotGrant> SliceLedger::grant(const std::string& node, std::uint32_t stratum, std::size_t min_slots,
                                     long cap_headroom) {
  if (stratum >= next_ungranted_.size())
    return walk_grant(list_, stratum, 0, 0, min_slots, cap_headroom).error();
  auto walk = walk_grant(list_, stratum, next_ungranted_[stratum], outstanding(stratum), min_slots, cap_headroom);
  if (!walk) return walk.error();
  SlotGrant g;
  g.node = node;
  g.stratum = stratum;
  g.stratum_label = list_.strata.label(stratum);
  if (walk->granted.empty() && walk->voided.empty()) return g;
  const std::uint32_t who = node_index(node);
  for (auto i : walk->granted) {
    state_[i] = State::granted;
    owner_[i] = who;
  }
  for (auto i : walk->voided) state_[i] = State::voided;
  g.slots = std::move(walk->slots);
  next_ungranted_[stratum] = walk->next_ungranted;
  g.grant_id = next_grant_id_++;
  return g;
}

Result<SlotGrant> SliceLedger::top_up(const std::string& node, std::uint32_t stratum, double forecast_per_day,
                                      double offline_days, long cap_headroom) {
  const std::size_t target = grant_target_slots(forecast_per_day, offline_days);
  const std::size_t have = free_slots(node, stratum);
  return grant(node, stratum, target > have ? target - have : 0, cap_headroom);
}

Status SliceLedger::record_use(const std::string& node, std::uint32_t stratum, std::uint32_t slot) {
  std::size_t i = index(stratum, slot);
  auto it = std::find(nodes_.begin(), nodes_.end(), node);
  auto who = it == nodes_.end() ? 0u : static_cast<std::uint32_t>(it - nodes_.begin()) + 1;
  bool owned = i < list_.slots.size() && who != 0 && owner_[i] == who;
  static constexpr const char* kNames[] = {"ungranted", "granted", "used", "voided"};
  if (auto st = check_slot_use(node, stratum, slot, owned, owned ? kNames[static_cast<int>(state_[i])] : ""); !st)
    return st;
  state_[i] = State::used;
  return {};
}

std::vector<SlotVoid> SliceLedger::revoke(const std::string& node) {
  std::vector<SlotVoid> out;
  auto it = std::find(nodes_.begin(), nodes_.end(), node);
  if (it == nodes_.end()) return out;
  auto who = static_cast<std::uint32_t>(it - nodes_.begin()) + 1;
  for (std::uint32_t s = 0; s < next_ungranted_.size(); ++s) {
    SlotVoid v{node, s, {}};
    for (std::size_t i = list_.stratum_begin[s]; i < list_.stratum_begin[s + 1]; ++i)
      if (owner_[i] == who && state_[i] == State::granted) {
        state_[i] = State::voided;
        v.slots.push_back(list_.slots[i].slot);
      }
    if (!v.slots.empty()) out.push_back(std::move(v));
  }
  return out;
}

SliceLedger::State SliceLedger::state(std::uint32_t stratum, std::uint32_t slot) const {
  std::size_t i = index(stratum, slot);
  if (i >= list_.slots.size()) throw std::out_of_range("SliceLedger::state: no such slot");
  return state_[i];
}

const std::string* SliceLedger::owner(std::uint32_t stratum, std::uint32_t slot) const {
  std::size_t i = index(stratum, slot);
  if (i >= list_.slots.size() || owner_[i] == 0) return nullptr;
  return &nodes_[owner_[i] - 1];
}

nlohmann::json SliceLedger::state_json() const {
  std::string states(state_.size(), 'u');
  for (std::size_t i = 0; i < state_.size(); ++i) states[i] = "ugUv"[static_cast<int>(state_[i])];
  return {{"slots", state_.size()}, {"states", states}, {"owners", owner_}, {"nodes", nodes_},
          {"next_ungranted", next_ungranted_}, {"next_grant_id", next_grant_id_}};
}

Status SliceLedger::restore(const nlohmann::json& j) {
  auto bad = [] {
    return make_error(Errc::invalid_input,
                      "the saved slice ledger does not belong to this list; restore it over the list it was saved with");
  };
  try {
    auto states = j.at("states").get<std::string>();
    auto owners = j.at("owners").get<std::vector<std::uint32_t>>();
    auto nodes = j.at("nodes").get<std::vector<std::string>>();
    auto next = j.at("next_ungranted").get<std::vector<std::size_t>>();
    if (states.size() != list_.slots.size() || owners.size() != list_.slots.size() || next.size() != next_ungranted_.size())
      return bad();
    std::vector<State> st(states.size());
    for (std::size_t i = 0; i < states.size(); ++i) {
      auto p = std::string_view("ugUv").find(states[i]);
      if (p == std::string_view::npos || owners[i] > nodes.size()) return bad();
      st[i] = static_cast<State>(p);
    }
    state_ = std::move(st);
    owner_ = std::move(owners);
    nodes_ = std::move(nodes);
    next_ungranted_ = std::move(next);
    next_grant_id_ = j.at("next_grant_id").get<std::uint64_t>();
  } catch (const nlohmann::json::exception&) {
    return bad();
  }
  return {};
}

void to_json(nlohmann::json& j, const GrantedSlot& s) {
  j = nlohmann::json{{"slot", s.slot}, {"block", s.block}, {"block_size", s.block_size}, {"arm", s.arm}};
}
void from_json(const nlohmann::json& j, GrantedSlot& s) {
  s.slot = whole_number<decltype(s.slot)>(j.at("slot"));
  s.block = whole_number<decltype(s.block)>(j.at("block"));
  s.block_size = whole_number<decltype(s.block_size)>(j.at("block_size"));
  j.at("arm").get_to(s.arm);
}
void to_json(nlohmann::json& j, const SlotGrant& g) {
  j = nlohmann::json{{"node", g.node}, {"grant_id", g.grant_id}, {"stratum", g.stratum},
                     {"stratum_label", g.stratum_label}, {"slots", g.slots}};
}
void from_json(const nlohmann::json& j, SlotGrant& g) {
  j.at("node").get_to(g.node);
  g.grant_id = whole_number<decltype(g.grant_id)>(j.at("grant_id"));
  g.stratum = whole_number<decltype(g.stratum)>(j.at("stratum"));
  j.at("stratum_label").get_to(g.stratum_label);
  j.at("slots").get_to(g.slots);
}
void to_json(nlohmann::json& j, const SlotVoid& v) {
  j = nlohmann::json{{"node", v.node}, {"stratum", v.stratum}, {"slots", v.slots}};
}
void from_json(const nlohmann::json& j, SlotVoid& v) {
  j.at("node").get_to(v.node);
  v.stratum = whole_number<decltype(v.stratum)>(j.at("stratum"));
  v.slots.clear();
  for (const auto& slot : j.at("slots").get<std::vector<nlohmann::json>>())
    v.slots.push_back(whole_number<std::uint32_t>(slot));
}

}  // namespace irt::shared
