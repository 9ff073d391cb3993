#include "hub/design_change_simulation.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <memory>
#include <optional>

#include "hub/design_changes.h"
#include "hub/list_segments.h"
#include "hub/randomization_store.h"
#include "hub/slice_store.h"
#include "shared/allocation.h"
#include "shared/block_list.h"
#include "shared/slot_slice.h"
#include "shared/text.h"
#include "storage/database.h"
#include "sync/seeded_source.h"

namespace irt::hub {

namespace {

using shared::Errc;
using shared::make_error;
using shared::Study;

constexpr const char* kChangeSyntax =
    "; write 'close B at 120', 'ratio A:B 2:1 at 200', 'add C at 150' or 'add C:2 at 150' (ratio and add may take "
    "'blocks 6[,9]' before 'at')";

std::vector<std::string> split_change_words(std::string_view text, char by) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    auto end = text.find(by, at);
    if (end == std::string_view::npos) end = text.size();
    if (end > at) out.emplace_back(text.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

std::optional<long long> change_number(std::string_view s) {
  long long v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// The study version a change makes from the version before it.
shared::Result<Study> version_after_change(const Study& before, const SimulatedChange& c) {
  auto bad = [&](const std::string& why) { return make_error(Errc::invalid_input, "--change '" + c.spec + "': " + why); };
  Study s = before;
  s.version = before.version + 1;
  auto arm_named = [&](const std::string& id) -> shared::Arm* {
    for (auto& a : s.arms)
      if (a.id == id) return &a;
    return nullptr;
  };
  std::vector<std::string> ids;
  for (const auto& a : s.arms) ids.push_back(a.id);
  const std::string known = "; the study's arms are " + shared::join(ids, ", ", "(none)");
  switch (c.kind) {
    case SimulatedChange::Kind::close: {
      auto* a = arm_named(c.arms.front());
      if (!a) return bad("no arm " + c.arms.front() + known);
      if (a->closed) return bad("arm " + a->id + " is already closed by an earlier change");
      a->closed = true;
      if (std::all_of(s.arms.begin(), s.arms.end(), [](const shared::Arm& x) { return x.closed; }))
        return bad("it closes the last open arm; keep at least one arm open");
      break;
    }
    case SimulatedChange::Kind::ratio:
      for (std::size_t i = 0; i < c.arms.size(); ++i) {
        auto* a = arm_named(c.arms[i]);
        if (!a) return bad("no arm " + c.arms[i] + known);
        if (a->closed) return bad("arm " + a->id + " is closed; a closed arm has no ratio to change");
        a->ratio = c.ratio[i];
      }
      break;
    case SimulatedChange::Kind::add:
      if (arm_named(c.arms.front())) return bad("arm " + c.arms.front() + " exists; name a new arm");
      s.arms.push_back({c.arms.front(), c.arms.front(), "Treatment", c.ratio.front(), false});
      break;
  }
  if (!c.block_sizes.empty()) s.randomization.block_sizes = c.block_sizes;
  return s;
}

struct SimulatedNode {
  std::string id;
  shared::NodeSlots slots;
  std::size_t version = 0;                          // index into the versions
  std::vector<shared::SlotVoid> voids;              // issued, not yet pulled
  std::vector<std::pair<std::uint32_t, std::uint32_t>> uses;  // made, not yet pushed
};

}  // namespace

shared::Result<SimulatedChange> parse_simulated_change(std::string_view spec) {
  SimulatedChange c;
  c.spec = std::string(spec);
  auto bad = [&](const std::string& why) {
    return make_error(Errc::invalid_input, "--change '" + c.spec + "': " + why + kChangeSyntax);
  };
  auto words = split_change_words(spec, ' ');
  if (words.size() < 4 || words[words.size() - 2] != "at") return bad("it does not end with 'at N'");
  auto at = change_number(words.back());
  if (!at || *at < 1) return bad("'at' takes the number of participants allocated before the change, at least 1");
  c.at = static_cast<std::size_t>(*at);
  words.resize(words.size() - 2);
  if (words.size() >= 4 && words[words.size() - 2] == "blocks") {
    for (const auto& b : split_change_words(words.back(), ',')) {
      auto n = change_number(b);
      if (!n || *n < 1) return bad("block sizes are positive integers");
      c.block_sizes.push_back(static_cast<int>(*n));
    }
    words.resize(words.size() - 2);
  }
  const std::string& verb = words.front();
  if (verb == "close" && words.size() == 2 && c.block_sizes.empty()) {
    c.kind = SimulatedChange::Kind::close;
    c.arms = {words[1]};
  } else if (verb == "ratio" && words.size() == 3) {
    c.kind = SimulatedChange::Kind::ratio;
    c.arms = split_change_words(words[1], ':');
    for (const auto& r : split_change_words(words[2], ':')) {
      auto n = change_number(r);
      if (!n || *n < 1) return bad("ratios are positive integers");
      c.ratio.push_back(static_cast<int>(*n));
    }
    if (c.arms.empty() || c.arms.size() != c.ratio.size()) return bad("name as many arms as ratios (A:B 2:1)");
  } else if (verb == "add" && words.size() == 2) {
    c.kind = SimulatedChange::Kind::add;
    auto parts = split_change_words(words[1], ':');
    if (parts.empty() || parts.size() > 2) return bad("add takes one arm, with its ratio after a colon (C:2)");
    c.arms = {parts[0]};
    auto n = parts.size() == 2 ? change_number(parts[1]) : std::optional<long long>(1);
    if (!n || *n < 1) return bad("ratios are positive integers");
    c.ratio = {static_cast<int>(*n)};
  } else {
    return bad("not a change");
  }
  return c;
}

shared::Result<DesignChangeSimulation> simulate_design_changes(const Study& study, std::vector<SimulatedChange> changes,
                                                               const DesignChangeSettings& settings,
                                                               shared::RandomSource& source) {
  if (settings.participants == 0 || settings.runs == 0 || settings.nodes == 0 || settings.sync_every == 0)
    return make_error(Errc::invalid_input, "participants, runs, nodes and sync-every must all be at least 1");
  if (!has_randomization_list(study))
    return make_error(Errc::invalid_input, "--change simulates list designs; the study minimizes (choose --method "
                                           "blocks:N to simulate a list design instead)");
  if (auto st = shared::check_allocation(shared::allocation_of(study)); !st) return st.error();
  std::stable_sort(changes.begin(), changes.end(),
                   [](const SimulatedChange& a, const SimulatedChange& b) { return a.at < b.at; });
  // The versions, each change's rule, and the hub's judgement of it.
  std::vector<Study> versions{study};
  std::vector<std::vector<DesignChange>> judged;
  DesignChangeSimulation out;
  out.settings = settings;
  for (const auto& c : changes) {
    if (c.at >= settings.participants)
      return make_error(Errc::invalid_input, "--change '" + c.spec + "': it is made after " + std::to_string(c.at) +
                                                 " participants, but the run has " +
                                                 std::to_string(settings.participants) + "; raise --participants");
    auto neu = version_after_change(versions.back(), c);
    if (!neu) return neu.error();
    auto dc = design_change_between(versions.back(), *neu, static_cast<std::int64_t>(c.at), "simulation", c.spec);
    if (!dc)
      return make_error(Errc::invalid_input, "--change '" + c.spec + "': it changes nothing of the allocation");
    out.changes.push_back({c, neu->version, dc->allocation_changed, {}});
    judged.push_back({std::move(*dc)});
    versions.push_back(std::move(*neu));
  }

  auto strata = shared::strata_of(study);
  if (!strata) return strata.error();
  const std::size_t n = settings.participants, k = settings.nodes, strata_count = strata->count();
  const std::size_t grant_slots =
      std::max<std::size_t>(1, (settings.sync_every + k * strata_count - 1) / (k * strata_count));
  int max_block = 1, max_ratio_sum = 1;
  for (const auto& v : versions) {
    for (int b : v.randomization.block_sizes) max_block = std::max(max_block, b);
    max_ratio_sum = std::max(max_ratio_sum, static_cast<int>(shared::allocation_of(v).ratio_sum()));
  }
  // Enough slots per stratum that no list runs out, though nodes skip the
  // slots of closed arms and leave unstarted blocks behind at every change.
  const std::size_t per_stratum = (n + k * (grant_slots + static_cast<std::size_t>(max_block))) *
                                  static_cast<std::size_t>(max_ratio_sum) * (changes.size() + 1);

  for (std::size_t run = 0; run < settings.runs; ++run) {
    crypto::Bytes seed(32);
    source.fill(seed);
    auto first = [&] {
      sync::SeededSource list_source(seed);
      return shared::generate_list(study, list_source, per_stratum);
    }();
    if (!first) return first.error();
    auto whole = std::make_unique<shared::RandomizationList>(std::move(*first));
    auto db = storage::Database::open(":memory:", {.busy_timeout_ms = 0, .create = false});
    if (!db) return db.error();
    // The slice tables as a hub has them (hub.slices migrates from hub.randomization's first table).
    if (auto st = migrate_randomization(*db); !st) return st.error();
    if (auto st = migrate_slices(*db); !st) return st.error();
    auto store = std::make_unique<SliceStore>(*db, *whole);

    std::vector<SimulatedNode> nodes(k);
    for (std::size_t i = 0; i < k; ++i) nodes[i].id = "node-" + std::to_string(i + 1);
    std::size_t hub_version = 0;  // index into versions
    auto sync_node = [&](SimulatedNode& node) {
      for (const auto& [s, slot] : node.uses) (void)store->record_use(node.id, s, slot);  // a voided slot's use stays a fact
      node.uses.clear();
      for (const auto& v : node.voids) node.slots.apply(v);
      node.voids.clear();
      node.version = hub_version;
    };
    std::vector<ChangeInRun> in_run(changes.size());
    std::vector<std::map<std::string, long>> window_counts(changes.size());

    for (std::size_t j = 0; j < n; ++j) {
      while (hub_version < changes.size() && changes[hub_version].at == j) {
        const Study& neu = versions[hub_version + 1];
        if (out.changes[hub_version].segment) {
          auto segment = generate_list_segment(neu, seed, *whole, per_stratum);
          if (!segment)
            return make_error(Errc::invalid_input, "--change '" + changes[hub_version].spec + "': " + segment.error().message);
          for (auto& v : start_list_segment(*db, *whole, neu.version))
            for (auto& node : nodes)
              if (node.id == v.node) node.voids.push_back(std::move(v));
          append_list_segment(*whole, *segment);
          store = std::make_unique<SliceStore>(*db, *whole);
        }
        ++hub_version;
      }
      if (j > 0 && j % settings.sync_every == 0)
        for (auto& node : nodes) sync_node(node);

      auto& node = nodes[static_cast<std::size_t>(shared::uniform(source, k))];
      const auto stratum = static_cast<std::uint32_t>(shared::uniform(source, strata_count));
      auto open_at_node = [&](const std::string& arm) { return !versions[node.version].arm_closed(arm); };
      auto taken = node.slots.take_next(stratum, open_at_node);
      // Out of open slots: the node contacts the hub (a sync) for a top-up,
      // until a block holds an open arm's slot.
      for (int tries = 0; !taken && tries < 64; ++tries) {
        sync_node(node);
        auto g = store->grant(node.id, stratum, grant_slots);
        if (!g) return g.error();
        if (auto st = node.slots.apply(*g); !st) return st.error();
        taken = node.slots.take_next(stratum, open_at_node);
      }
      if (!taken) return taken.error();
      node.uses.push_back({stratum, taken->slot});

      const std::string participant = "P" + std::to_string(j + 1);
      const int under = versions[node.version].version;
      for (std::size_t c = 0; c < hub_version; ++c) {
        const auto& change = judged[c].front();
        const bool in_window = c + 1 == hub_version;
        if (in_window) {
          ++in_run[c].allocations;
          ++window_counts[c][taken->arm];
        }
        if (old_design_deviations(judged[c], participant, node.id, under, static_cast<std::int64_t>(j), taken->arm).empty())
          continue;
        ++in_run[c].old_design;
        if (std::find(change.closed_arms.begin(), change.closed_arms.end(), taken->arm) != change.closed_arms.end())
          ++in_run[c].to_closed;
      }
    }
    for (std::size_t c = 0; c < changes.size(); ++c) {
      std::vector<long> counts;
      std::vector<int> ratio;
      for (const auto& a : versions[c + 1].arms)
        if (!a.closed) {
          counts.push_back(window_counts[c][a.id]);
          ratio.push_back(a.ratio);
        }
      in_run[c].open_imbalance = shared::ratio_imbalance(counts, ratio);
      out.changes[c].runs.push_back(in_run[c]);
    }
  }
  return out;
}

nlohmann::json to_json(const DesignChangeSimulation& s) {
  nlohmann::json changes = nlohmann::json::array();
  for (const auto& c : s.changes) {
    nlohmann::json runs = nlohmann::json::array();
    std::size_t old_total = 0, old_max = 0, closed_total = 0, closed_max = 0;
    double imbalance = 0;
    for (const auto& r : c.runs) {
      runs.push_back({{"allocations", r.allocations},
                      {"old_design", r.old_design},
                      {"to_closed_arm", r.to_closed},
                      {"open_imbalance", r.open_imbalance}});
      old_total += r.old_design;
      old_max = std::max(old_max, r.old_design);
      closed_total += r.to_closed;
      closed_max = std::max(closed_max, r.to_closed);
      imbalance += r.open_imbalance;
    }
    const double runs_n = static_cast<double>(std::max<std::size_t>(1, c.runs.size()));
    changes.push_back({{"change", c.change.spec},
                       {"at", c.change.at},
                       {"version", c.version},
                       {"segment", c.segment},
                       {"old_design", {{"total", old_total}, {"max", old_max}, {"mean", static_cast<double>(old_total) / runs_n}}},
                       {"to_closed_arm",
                        {{"total", closed_total}, {"max", closed_max}, {"mean", static_cast<double>(closed_total) / runs_n}}},
                       {"mean_open_imbalance", imbalance / runs_n},
                       {"runs", runs}});
  }
  return {{"participants", s.settings.participants},
          {"runs", s.settings.runs},
          {"nodes", s.settings.nodes},
          {"sync_every", s.settings.sync_every},
          {"changes", changes}};
}

}  // namespace irt::hub
