// check-study and diff-study: validate a study configuration document and
// compare two versions of it before an amendment is applied.
#include <iostream>
#include <string>

#include "hub/commands.h"
#include "shared/study.h"
#include "shared/study_diff.h"

namespace irt::hub {

namespace {

// Exit status for a document that does not validate, as for any invalid input.
constexpr int kInvalid = 2;

// Prints every problem with the file it came from, so that with two files
// (diff-study) each line says which one to fix.
bool report_errors(const std::string& file, const shared::StudyLoad& load) {
  if (load.study) return false;
  for (const auto& e : load.errors) {
    // A file-level problem (missing, unreadable) already names the path.
    if (e.rfind(file + ":", 0) == 0)
      std::cerr << e << "\n";
    else
      std::cerr << file << ": " << e << "\n";
  }
  std::cerr << file << ": " << load.errors.size() << (load.errors.size() == 1 ? " problem" : " problems")
            << "; the study was not loaded\n";
  return true;
}

std::string blinding_text(shared::Blinding b) {
  switch (b) {
    case shared::Blinding::open: return "open-label";
    case shared::Blinding::single: return "single-blind";
    case shared::Blinding::double_blind: return "double-blind";
  }
  return shared::to_string(b);
}

std::string joined(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out.empty() ? "(none)" : out;
}

void print_summary(const shared::Study& s, std::ostream& out) {
  out << "study " << s.id << " version " << s.version << ": " << s.name << "\n";
  out << "blinding: " << blinding_text(s.blinding) << "\n";

  std::vector<std::string> ratio, arms;
  for (const auto& a : s.arms) {
    ratio.push_back(std::to_string(a.ratio));
    arms.push_back(a.id + " " + a.name);
  }
  out << "arms: " << s.arms.size() << ", ratio " << joined(ratio, ":") << " (" << joined(arms) << ")\n";

  const auto& r = s.randomization;
  out << "randomization: " << shared::to_string(r.method);
  switch (r.method) {
    case shared::Method::permuted_blocks: {
      std::vector<std::string> sizes;
      for (int b : r.block_sizes) sizes.push_back(std::to_string(b));
      out << ", block sizes " << joined(sizes) << ", strata " << joined(r.strata);
      break;
    }
    case shared::Method::minimization: {
      std::vector<std::string> factors;
      for (const auto& f : r.minimization_factors) {
        std::string w = std::to_string(f.weight);
        w.erase(w.find_last_not_of('0') + 1);
        if (!w.empty() && w.back() == '.') w.pop_back();
        factors.push_back(f.factor + " x" + w);
      }
      out << " over " << joined(factors) << ", measure " << shared::to_string(r.measure) << ", p "
          << r.preferred_probability << ", first " << r.initial_random << " at random";
      break;
    }
    case shared::Method::biased_coin: out << ", p " << r.coin_probability; break;
    case shared::Method::max_tolerated_imbalance: out << ", imbalance at most " << r.max_tolerated_imbalance; break;
    case shared::Method::simple: break;
  }
  out << "\n";
  if (!s.caps.empty()) out << "caps: " << s.caps.size() << "\n";

  std::size_t active = 0, tablets = 0;
  for (const auto& site : s.sites) {
    if (site.active) ++active;
    for (auto k : site.node_kinds)
      if (k == shared::NodeKind::nurse) ++tablets;
  }
  out << "sites: " << s.sites.size() << " (" << active << " active";
  if (tablets) out << ", " << tablets << " with nurse tablets";
  out << ") in " << s.countries.size() << (s.countries.size() == 1 ? " country" : " countries") << "; depots: "
      << s.depots.size() << "\n";

  std::vector<std::string> kits;
  for (const auto& k : s.kit_types) kits.push_back(k.id + " (arm " + k.arm + ")");
  out << "kit types: " << joined(kits) << "\n";

  std::vector<std::string> visits;
  for (const auto& v : s.visits) {
    std::string text = v.id + " day " + std::to_string(v.day);
    if (v.window_before || v.window_after)
      text += " -" + std::to_string(v.window_before) + "/+" + std::to_string(v.window_after);
    if (v.randomization) text += " randomization";
    if (!v.dispense.empty()) text += " dispensing";
    visits.push_back(text);
  }
  out << "visits: " << joined(visits, "; ") << "\n";
  out << "roles: " << s.roles.size() << "; eligibility questions: " << s.eligibility.size() << "\n";
  out << "valid\n";
}

int check_study(const shared::Args& args) {
  const std::string& file = args.positional().at(0);
  shared::StudyLoad load = shared::load_study_file(file);
  if (report_errors(file, load)) return kInvalid;
  print_summary(*load.study, std::cout);
  return 0;
}

int diff_study(const shared::Args& args) {
  const std::string& old_file = args.positional().at(0);
  const std::string& new_file = args.positional().at(1);
  shared::StudyLoad old_load = shared::load_study_file(old_file);
  shared::StudyLoad new_load = shared::load_study_file(new_file);
  bool old_bad = report_errors(old_file, old_load);
  bool new_bad = report_errors(new_file, new_load);
  if (old_bad || new_bad) return kInvalid;
  const shared::Study& a = *old_load.study;
  const shared::Study& b = *new_load.study;
  if (a.id != b.id)
    std::cerr << "warning: these are different studies (" << a.id << " and " << b.id
              << "); an amendment keeps the study id\n";
  else if (b.version <= a.version)
    std::cerr << "warning: " << new_file << " has version " << b.version << ", not greater than " << a.version
              << " in " << old_file << "; an amendment must raise the version\n";
  auto changes = shared::diff_studies(a, b);
  if (changes.empty()) std::cout << "no changes\n";
  for (const auto& c : changes) std::cout << c << "\n";
  return 0;
}

}  // namespace

std::vector<shared::Command> study_commands() {
  shared::Command check{
      .name = "check-study",
      .summary = "Validate a study configuration file and print a summary of it; every problem is listed (exit 2).",
      .positional = "FILE",
      .min_positional = 1,
      .max_positional = 1,
      .run = check_study,
  };
  shared::Command diff{
      .name = "diff-study",
      .summary = "List what changed between two versions of a study configuration (an amendment).",
      .positional = "OLD NEW",
      .min_positional = 2,
      .max_positional = 2,
      .run = diff_study,
  };
  return {check, diff};
}

}  // namespace irt::hub
