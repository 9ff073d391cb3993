#include "hub/design_changes.h"

#include <algorithm>

#include "hub/audit.h"
#include "hub/deviations.h"
#include "hub/directive_outbox.h"
#include "hub/node_overview.h"
#include "hub/randomization_store.h"
#include "shared/study.h"
#include "sync/event.h"

namespace irt::hub {

namespace {

std::string design_version_subject(int version) { return "version " + std::to_string(version); }

// The cursor carried by the node's last event the hub holds: it had applied
// every directive up to it when it recorded that event.
std::uint64_t last_event_directive_cursor(HubState& hub, const sync::LedgerNode& node) {
  if (node.acked_seq == 0) return 0;
  auto records = hub.ledger().records_after(node.node_id, node.acked_seq - 1, 1);
  if (records.empty()) return 0;
  auto e = sync::parse_event(records.front());
  return e ? e->body.directive_seq : 0;
}

}  // namespace

std::optional<DesignChange> design_change_between(const shared::Study& before, const shared::Study& after,
                                                 std::int64_t made_ms, std::string made_by, std::string reason) {
  DesignChange c{after.version, made_ms, std::move(made_by), std::move(reason), {}, {}, false, std::nullopt};
  std::optional<shared::Days> from;  // the earliest date of the closures made, when every one has a date
  bool from_now = false;
  for (const auto& a : after.arms) {
    const auto* was = before.find_arm(a.id);
    if (a.closed && !(was && was->closed && was->closure == a.closure)) {
      c.closed_arms.push_back(a.id);
      if (a.closure.from) from = std::min(from.value_or(*a.closure.from), *a.closure.from);
      else from_now = true;
    }
    if (!was) c.added_arms.push_back(a.id);
  }
  c.allocation_changed = list_design_changed(before, after);
  if (c.closed_arms.empty() && !c.allocation_changed) return std::nullopt;
  if (from && !from_now && !c.allocation_changed) c.applies_ms = std::max(made_ms, *from * 86'400'000);
  return c;
}

std::int64_t minimization_segment_start_ms(const std::vector<DesignChange>& changes) {
  std::int64_t start = 0;
  for (const auto& c : changes)
    if (!c.added_arms.empty()) start = std::max(start, c.made_ms);
  return start;
}

std::vector<DesignChange> design_changes(HubState& hub) {
  std::vector<DesignChange> out;
  std::optional<shared::Study> before;
  for (const auto& sv : study_versions(hub.db(), true)) {
    auto load = shared::load_study(sv.document);
    if (!load.study) continue;  // every stored version loaded when it was stored
    // Version 1 sets the initial design; a change is what an amendment alters.
    if (before && sv.version > 1)
      if (auto c = design_change_between(*before, *load.study, sv.loaded_ms, sv.loaded_by, sv.reason))
        out.push_back(std::move(*c));
    before = std::move(load.study);
  }
  return out;
}

std::vector<OldDesignDeviation> old_design_deviations(const std::vector<DesignChange>& changes,
                                                      const std::string& participant, const std::string& node_id,
                                                      std::optional<int> study_version, std::int64_t device_ms,
                                                      const std::string& arm) {
  std::vector<OldDesignDeviation> out;
  const int under = study_version.value_or(1);
  for (const auto& c : changes) {
    if (under >= c.version || device_ms < c.applies_ms.value_or(c.made_ms)) continue;
    const bool closed = std::find(c.closed_arms.begin(), c.closed_arms.end(), arm) != c.closed_arms.end();
    out.push_back({design_version_subject(c.version),
                   "participant " + participant + " was randomized by node " + node_id + " at " +
                       utc_text(device_ms) + " (node clock) under study version " + std::to_string(under) +
                       ", after version " + std::to_string(c.version) + " changed the design at " +
                       utc_text(c.made_ms) +
                       "; the node had not applied it yet. The randomization stands; review it with the unblinded "
                       "team",
                   "allocated to arm " + arm + (closed ? ", which version " + std::to_string(c.version) + " closed"
                                                       : ", which version " + std::to_string(c.version) +
                                                             " left open")});
  }
  return out;
}

std::vector<DesignChangeReport> design_change_report(HubState& hub) {
  std::vector<DesignChangeReport> out;
  const auto changes = design_changes(hub);
  if (changes.empty()) return out;
  const auto nodes = hub.ledger().nodes();
  const auto devs = deviations(hub, false, false);
  for (const auto& c : changes) {
    DesignChangeReport r{c, {}, 0};
    for (const auto& n : nodes) {
      if (n.status == sync::NodeStatus::revoked) continue;
      DesignChangeAtNode at{n.node_id, n.site_id, std::nullopt, false, 0};
      for (const auto& [seq, payload] : hub.outbox().payloads_of(n.node_id, kStudyConfigDirective)) {
        auto j = nlohmann::json::parse(payload, nullptr, false);
        if (j.is_object() && j.value("version", 0) >= c.version) {
          at.directive_seq = seq;
          break;
        }
      }
      if (at.directive_seq) {
        const auto applied = std::max(directives_pulled_after(hub.db(), n.node_id).value_or(0),
                                      last_event_directive_cursor(hub, n));
        at.applied = applied >= *at.directive_seq;
      }
      for (const auto& d : devs)
        if (d.kind == deviation_kind::kOldDesign && d.node_id == n.node_id &&
            d.subject == design_version_subject(c.version))
          ++at.old_design_randomizations;
      r.old_design_randomizations += at.old_design_randomizations;
      r.nodes.push_back(std::move(at));
    }
    out.push_back(std::move(r));
  }
  return out;
}

nlohmann::json to_json(const DesignChangeReport& r, bool unblinded) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& n : r.nodes)
    nodes.push_back({{"node_id", n.node_id},
                     {"site_id", n.site_id},
                     {"directive_seq", n.directive_seq ? nlohmann::json(*n.directive_seq) : nlohmann::json()},
                     {"applied", n.applied},
                     {"old_design_randomizations", n.old_design_randomizations}});
  nlohmann::json j{{"version", r.change.version},
                   {"made", utc_text(r.change.made_ms)},
                   {"made_by", r.change.made_by},
                   {"reason", r.change.reason},
                   {"arms_closed", r.change.closed_arms.size()},
                   {"allocation_changed", r.change.allocation_changed},
                   {"old_design_randomizations", r.old_design_randomizations},
                   {"nodes", nodes}};
  if (unblinded) {
    j["closed_arms"] = r.change.closed_arms;
    j["added_arms"] = r.change.added_arms;
  }
  return j;
}

}  // namespace irt::hub
