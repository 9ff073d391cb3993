// randlist generate / randlist verify / simulate randomization: the hub's
// commands for randomization lists and for comparing designs by simulation.
#include <sodium.h>

#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "hub/commands.h"
#include "hub/design_change_simulation.h"
#include "hub/list_hash.h"
#include "hub/list_segments.h"
#include "sync/seeded_source.h"
#include "shared/block_list.h"
#include "shared/randomization_simulator.h"
#include "shared/study.h"

namespace irt::hub {

namespace {

constexpr int kInvalid = 2;
constexpr std::size_t kDefaultPerStratum = 100;

std::optional<shared::Study> load_or_report(const std::string& file) {
  auto load = shared::load_study_file(file);
  if (load.study) return std::move(load.study);
  for (const auto& e : load.errors) std::cerr << (e.rfind(file + ":", 0) == 0 ? "" : file + ": ") << e << "\n";
  std::cerr << file << ": the study was not loaded; fix the problems above and run the command again\n";
  return std::nullopt;
}

std::optional<crypto::Bytes> seed_or_report(const std::string& hex) {
  auto seed = sync::parse_seed_hex(hex);
  if (!seed) std::cerr << "--seed must be 64 hex digits (32 bytes); use the seed recorded when the list was generated\n";
  return seed;
}

std::optional<std::size_t> count_or_report(const shared::Args& args, const std::string& name, std::size_t fallback) {
  auto v = args.find(name);
  if (!v) return fallback;
  try {
    std::size_t used = 0;
    long long n = std::stoll(*v, &used);
    if (used == v->size() && n > 0) return static_cast<std::size_t>(n);
  } catch (const std::exception&) {
  }
  std::cerr << "--" << name << " must be a positive integer (got '" << *v << "')\n";
  return std::nullopt;
}

bool read_text(const std::string& file, std::string& out) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

// With --after FILE.csv: the list a design change's segment continues (the
// list in use, or it and the earlier segments one after the other); only
// its strata, blocks and slot numbers matter. nullopt and nothing printed
// without --after; false when the file does not read, the reason printed.
bool after_or_report(const shared::Args& args, std::optional<shared::RandomizationList>& before) {
  auto file = args.find("after");
  if (!file) return true;
  std::string text;
  if (!read_text(*file, text)) {
    std::cerr << "cannot read " << *file << " (--after); check the path\n";
    return false;
  }
  auto rows = shared::parse_list_csv(text);
  if (!rows) {
    std::cerr << *file << ": " << rows.error().message << "\n";
    return false;
  }
  before.emplace();
  for (const auto& r : *rows)
    before->slots.push_back({r.stratum - 1, r.block, r.slot, static_cast<std::uint16_t>(r.block_size), 0});
  return true;
}

// The list a study and seed give (the segment continuing `before`, with a
// seed derived from the recorded one: hub/list_segments.h), or the reason
// printed; generate and verify must produce it the same way, or verification
// would prove nothing.
shared::Result<shared::RandomizationList> generate_or_report(const shared::Study& study, const crypto::Bytes& seed,
                                                             std::size_t per_stratum,
                                                             const std::optional<shared::RandomizationList>& before) {
  shared::Result<shared::RandomizationList> list = shared::RandomizationList{};
  if (before) {
    list = generate_list_segment(study, seed, *before, per_stratum);
  } else {
    sync::SeededSource source(seed);
    list = shared::generate_list(study, source, per_stratum);
  }
  if (!list) std::cerr << list.error().message << "\n";
  return list;
}

int generate(const shared::Args& args) {
  auto study = load_or_report(args.get("study"));
  if (!study) return kInvalid;
  auto seed = seed_or_report(args.get("seed"));
  if (!seed) return kInvalid;
  auto per_stratum = count_or_report(args, "per-stratum", kDefaultPerStratum);
  if (!per_stratum) return kInvalid;
  std::optional<shared::RandomizationList> before;
  if (!after_or_report(args, before)) return kInvalid;
  auto list = generate_or_report(*study, *seed, *per_stratum, before);
  if (!list) return shared::exit_code(list.error().code);
  const std::string csv = shared::encode_list_csv(*list);
  const std::string out_file = args.get("out");
  std::ofstream out(out_file, std::ios::binary | std::ios::trunc);
  out << csv;
  out.close();
  if (!out) {
    std::cerr << "could not write " << out_file << "; check the directory exists and is writable\n";
    return 1;
  }
  std::cout << "study " << list->study_id << " version " << list->study_version << ": " << list->slots.size()
            << " slots in " << list->strata.count() << " strata written to " << out_file << "\n"
            << "list hash (BLAKE2b-256, " << kListHashDomain << "): " << randomization_list_hash(csv).hex() << "\n";
  return 0;
}

int verify_list(const shared::Args& args) {
  auto study = load_or_report(args.get("study"));
  if (!study) return kInvalid;
  auto seed = seed_or_report(args.get("seed"));
  if (!seed) return kInvalid;
  std::optional<shared::RandomizationList> before;
  if (!after_or_report(args, before)) return kInvalid;
  const std::string list_file = args.get("list");
  std::string given;
  if (!read_text(list_file, given)) {
    std::cerr << "cannot read " << list_file << "; check the path\n";
    return kInvalid;
  }
  auto rows = shared::parse_list_csv(given);
  if (!rows) {
    std::cerr << list_file << ": " << rows.error().message << "\n";
    return kInvalid;
  }
  // Without --per-stratum, the smallest stratum of the file is the size asked
  // for: generation stops at the first block boundary at or past it in every
  // stratum, which is where each stratum of an untouched list ends.
  std::map<std::uint32_t, std::size_t> per_stratum_rows;
  for (const auto& r : *rows) ++per_stratum_rows[r.stratum];
  std::size_t inferred = per_stratum_rows.empty() ? 1 : SIZE_MAX;
  for (const auto& [s, n] : per_stratum_rows) inferred = std::min(inferred, n);
  auto per_stratum = count_or_report(args, "per-stratum", inferred);
  if (!per_stratum) return kInvalid;

  auto list = generate_or_report(*study, *seed, *per_stratum, before);
  if (!list) return shared::exit_code(list.error().code);
  const std::string expected = shared::encode_list_csv(*list);

  // Counts of the file as given, per block and per stratum.
  std::cout << "counts in " << list_file << ":\n";
  std::map<std::uint32_t, std::map<std::string, long>> stratum_counts;
  std::map<std::uint32_t, std::string> labels;
  for (std::size_t i = 0; i < rows->size();) {
    const auto& first = (*rows)[i];
    std::map<std::string, long> block;
    std::size_t n = 0;
    for (; i < rows->size() && (*rows)[i].stratum == first.stratum && (*rows)[i].block == first.block; ++i, ++n) {
      ++block[(*rows)[i].arm];
      ++stratum_counts[first.stratum][(*rows)[i].arm];
    }
    labels[first.stratum] = first.stratum_label;
    std::cout << "  stratum " << first.stratum << " (" << first.stratum_label << ") block " << first.block << " size "
              << first.block_size << (n == first.block_size ? "" : " (incomplete)") << ":";
    for (const auto& [arm, c] : block) std::cout << " " << arm << "=" << c;
    std::cout << "\n";
  }
  for (const auto& [s, counts] : stratum_counts) {
    std::cout << "  stratum " << s << " (" << labels[s] << ") total:";
    for (const auto& [arm, c] : counts) std::cout << " " << arm << "=" << c;
    std::cout << "\n";
  }
  std::cout << "list hash of the file:        " << randomization_list_hash(given).hex() << "\n"
            << "list hash regenerated:        " << randomization_list_hash(expected).hex() << "\n";
  if (given == expected) {
    std::cout << (before ? "the segment" : "the list") << " regenerates byte for byte from the seed and study version "
              << study->version << "\n";
    return 0;
  }
  std::size_t line = 1, at = 0;
  while (at < given.size() && at < expected.size() && given[at] == expected[at]) line += given[at++] == '\n';
  std::cerr << list_file << ": differs from the list regenerated from this seed and study version " << study->version
            << ", first at line " << line << " (" << given.size() << " bytes given, " << expected.size()
            << " expected); check the seed, the study version and --per-stratum, then treat the file as altered\n";
  return 1;
}

std::string fixed(double v, int digits = 3) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

void print_result(const shared::SimulationResult& r, std::ostream& out) {
  out << r.design << "\n";
  if (r.two_arm) {
    const auto& m = *r.two_arm;
    out << "  EB " << fixed(m.eb) << "  Dn " << fixed(m.dn) << "  MI " << fixed(m.mi) << "  ET " << fixed(m.et)
        << "  DA " << fixed(m.da) << "  CG " << fixed(m.cg) << "\n";
  }
  out << "  final imbalance: mean " << fixed(r.mean_abs_imbalance) << " (se " << fixed(r.se_abs_imbalance) << ")";
  double worst = 0, sum = 0;
  for (const auto& s : r.per_stratum) {
    worst = std::max(worst, s.mean);
    sum += s.mean;
  }
  if (!r.per_stratum.empty())
    out << ", per stratum mean " << fixed(sum / static_cast<double>(r.per_stratum.size())) << " (worst " << fixed(worst)
        << ", " << r.per_stratum.size() << " strata)";
  out << "\n";
  if (!r.per_factor_level.empty()) {
    out << "  per factor level:";
    for (const auto& l : r.per_factor_level) out << " " << l.label << " " << fixed(l.mean, 2);
    out << "\n";
  }
}

// --change: the design changes made at the hub during node runs, by the
// hub's own code (hub/design_change_simulation.h).
int simulate_design_change_runs(const shared::Study& study, const shared::Args& args, const crypto::Bytes& seed,
                                const DesignChangeSettings& settings) {
  std::vector<SimulatedChange> changes;
  for (const auto& spec : args.all("change")) {
    auto c = parse_simulated_change(spec);
    if (!c) {
      std::cerr << c.error().message << "\n";
      return kInvalid;
    }
    changes.push_back(std::move(*c));
  }
  sync::SeededSource source(seed);
  auto sim = simulate_design_changes(study, std::move(changes), settings, source);
  if (!sim) {
    std::cerr << sim.error().message << "\n";
    return shared::exit_code(sim.error().code);
  }
  auto j = to_json(*sim);
  if (args.flag("json")) {
    j["study"] = study.id;
    j["version"] = study.version;
    j["seed"] = crypto::to_hex(seed);
    j["design"] = shared::describe_design(study.randomization);
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "study " << study.id << " version " << study.version << ", " << shared::describe_design(study.randomization)
            << ": " << settings.participants << " participants, " << settings.runs << " runs, " << settings.nodes
            << " nodes syncing every " << settings.sync_every << " allocations, seed " << crypto::to_hex(seed) << "\n"
            << "(per run: mean / max over runs / total; --json gives every run)\n";
  for (const auto& c : j["changes"]) {
    std::cout << "\n'" << c["change"].get<std::string>() << "' (version " << c["version"].get<int>() << ", "
              << (c["segment"].get<bool>() ? "list continued with a segment" : "arm closed, no segment") << "):\n";
    auto counts = [&](const char* what, const nlohmann::json& v) {
      std::cout << "  " << what << ": " << fixed(v["mean"].get<double>(), 2) << " / " << v["max"].get<std::size_t>()
                << " / " << v["total"].get<std::size_t>() << "\n";
    };
    counts("allocations under the old design after it (old_design deviations)", c["old_design"]);
    counts("allocations to an arm it closed", c["to_closed_arm"]);
    std::cout << "  imbalance within the open arms, allocations after it: mean "
              << fixed(c["mean_open_imbalance"].get<double>()) << "\n";
  }
  return 0;
}

int simulate_randomization(const shared::Args& args) {
  auto study = load_or_report(args.get("study"));
  if (!study) return kInvalid;
  auto participants = count_or_report(args, "participants", 0);
  auto runs = count_or_report(args, "runs", 0);
  auto nodes = count_or_report(args, "nodes", 1);
  auto sync_every = count_or_report(args, "sync-every", 25);
  if (!participants || !runs || !nodes || !sync_every) return kInvalid;
  crypto::Bytes seed(32);
  if (auto hex = args.find("seed")) {
    auto s = seed_or_report(*hex);
    if (!s) return kInvalid;
    seed = *s;
  } else {
    randombytes_buf(seed.data(), seed.size());
  }
  shared::Randomization design = study->randomization;
  if (auto spec = args.find("method")) {
    auto d = shared::parse_method(*spec, study->randomization);
    if (!d) {
      std::cerr << d.error().message << "\n";
      return kInvalid;
    }
    design = *d;
  }
  if (!args.all("change").empty()) {
    shared::Study changed = *study;
    changed.randomization = design;
    return simulate_design_change_runs(changed, args, seed, {*participants, *runs, *nodes, *sync_every});
  }
  std::vector<std::pair<shared::Randomization, shared::SimulationSettings>> plan;
  shared::SimulationSettings central{.participants = *participants, .runs = *runs};
  plan.push_back({design, central});
  if (*nodes > 1) {
    shared::SimulationSettings offline = central;
    offline.nodes = *nodes;
    offline.sync_every = *sync_every;
    plan.push_back({design, offline});
    if (design.method == shared::Method::minimization) {
      offline.offline = shared::OfflineMode::naive;
      plan.push_back({design, offline});
    }
  }
  if (design.method != shared::Method::simple) plan.push_back({*shared::parse_method("simple", design), central});

  sync::SeededSource source(seed);
  nlohmann::json all = nlohmann::json::array();
  std::vector<shared::SimulationResult> results;
  for (const auto& [d, settings] : plan) {
    auto r = shared::simulate(*study, d, settings, source);
    if (!r) {
      std::cerr << r.error().message << "\n";
      return shared::exit_code(r.error().code);
    }
    results.push_back(std::move(*r));
  }
  if (args.flag("json")) {
    nlohmann::json out{{"study", study->id}, {"version", study->version}, {"seed", crypto::to_hex(seed)},
                       {"results", nlohmann::json::array()}};
    for (const auto& r : results) out["results"].push_back(shared::to_json(r));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << "study " << study->id << " version " << study->version << ": " << *participants << " participants, "
            << *runs << " runs, seed " << crypto::to_hex(seed) << "\n"
            << "(EB exact balance, Dn sd of final imbalance, MI expected max |imbalance|, ET entropy in nats,\n"
            << " DA deterministic assignments, CG correct guesses of the convergence strategy; two arms 1:1 only)\n\n";
  for (const auto& r : results) print_result(r, std::cout);
  return 0;
}

}  // namespace

std::vector<shared::Command> randomization_commands() {
  shared::Command gen{
      .name = "generate",
      .summary = "Generate a randomization list from a study and a recorded 32-byte seed",
      .options = {{"study", "FILE", "study configuration (JSON)", true},
                  {"seed", "HEX", "the list's seed, 64 hex digits; record it", true},
                  {"out", "FILE.csv", "where to write the list", true},
                  {"per-stratum", "N", "slots per stratum, rounded up to whole blocks (default 100)", false},
                  {"after", "FILE.csv", "the list a design change's segment continues (the list in use, then any "
                                        "earlier segments); the segment's seed is derived from --seed", false}},
      .run = generate};
  shared::Command ver{
      .name = "verify",
      .summary = "Regenerate a list from its seed and compare it byte for byte; print its counts",
      .options = {{"study", "FILE", "study configuration (JSON) of the list's version", true},
                  {"seed", "HEX", "the seed recorded for the list", true},
                  {"list", "FILE.csv", "the list to check", true},
                  {"per-stratum", "N", "slots per stratum it was generated with (default: from the file)", false},
                  {"after", "FILE.csv", "the list a design change's segment continues (the list in use, then any "
                                        "earlier segments); the segment's seed is derived from --seed", false}},
      .run = verify_list};
  shared::Command randlist{.name = "randlist",
                           .summary = "Randomization lists: generate from a seed, verify by regeneration",
                           .subcommands = {gen, ver}};
  shared::Command sim{
      .name = "randomization",
      .summary = "Compare randomization designs by simulation (balance, randomness, offline cost)",
      .options = {{"study", "FILE", "study configuration (JSON)", true},
                  {"participants", "N", "participants per simulated trial", true},
                  {"runs", "R", "simulated trials per design", true},
                  {"nodes", "K", "also simulate K offline nodes (default 1: central only)", false},
                  {"sync-every", "M", "allocations study-wide between syncs in node runs (default 25)", false},
                  {"seed", "HEX", "64 hex digits, to repeat a run (default: random, printed)", false},
                  {"method", "SPEC", "instead of the study's method: simple, blocks:4[,6], efron:p=0.667, "
                                     "bigstick:mti=3, minimization[:p=0.8]", false},
                  {"change", "SPEC", "a design change made at the hub during node runs, repeatable: 'close B at "
                                     "120', 'ratio A:B 2:1 at 200', 'add C[:R] at 150' ('blocks 6[,9]' before 'at' "
                                     "changes the block sizes); reports allocations under the old design and "
                                     "balance after each (docs/randomization.md)", false},
                  {"json", "", "print JSON", false}},
      .run = simulate_randomization};
  shared::Command simulate{.name = "simulate", .summary = "Simulations", .subcommands = {sim, simulate_supply_command()}};
  return {randlist, simulate};
}

}  // namespace irt::hub
