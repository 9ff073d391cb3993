// check-study and diff-study: validate a study configuration document and
// compare two versions of it before an amendment is applied; amend: make a
// new version current (hub/amendments.h); study-versions: every version the
// hub holds; design-changes: which nodes applied each design change.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "crypto/bytes.h"
#include "hub/amendments.h"
#include "hub/audit.h"
#include "hub/design_changes.h"
#include "hub/commands.h"
#include "shared/study.h"
#include "shared/study_diff.h"
#include "sync/hlc.h"
#include "shared/text.h"

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

void print_summary(const shared::Study& s, std::ostream& out) {
  out << "study " << s.id << " version " << s.version << ": " << s.name << "\n";
  out << "blinding: " << blinding_text(s.blinding) << "\n";

  std::vector<std::string> ratio, arms;
  for (const auto& a : s.arms) {
    ratio.push_back(std::to_string(a.ratio));
    arms.push_back(a.id + " " + a.name);
  }
  out << "arms: " << s.arms.size() << ", ratio " << shared::join(ratio, ":", "(none)") << " (" << shared::join(arms, ", ", "(none)") << ")\n";

  const auto& r = s.randomization;
  out << "randomization: " << shared::to_string(r.method);
  switch (r.method) {
    case shared::Method::permuted_blocks: {
      std::vector<std::string> sizes;
      for (int b : r.block_sizes) sizes.push_back(std::to_string(b));
      out << ", block sizes " << shared::join(sizes, ", ", "(none)") << ", strata " << shared::join(r.strata, ", ", "(none)");
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
      out << " over " << shared::join(factors, ", ", "(none)") << ", measure " << shared::to_string(r.measure) << ", p "
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
  out << "kit types: " << shared::join(kits, ", ", "(none)") << "\n";

  std::vector<std::string> visits;
  for (const auto& v : s.visits) {
    std::string text = v.id + " day " + std::to_string(v.day);
    if (v.window_before || v.window_after)
      text += " -" + std::to_string(v.window_before) + "/+" + std::to_string(v.window_after);
    if (v.randomization) text += " randomization";
    if (!v.dispense.empty()) text += " dispensing";
    visits.push_back(text);
  }
  out << "visits: " << shared::join(visits, "; ", "(none)") << "\n";
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

int fail(const shared::Args& args, const shared::Error& e) {
  std::cerr << args.command_path() << ": " << e.message << "\n";
  return shared::exit_code(e.code);
}

std::unique_ptr<HubState> open_or_report(const shared::Args& args, int& rc) { return open_hub(args, rc); }

int amend_study(const shared::Args& args) {
  const std::string file = args.get("study");
  std::string document;
  {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) {
      std::cerr << file << ": cannot be read; check the path\n";
      return kInvalid;
    }
    document = text.str();
  }
  int rc = 0;
  auto hub = open_or_report(args, rc);
  if (!hub) return rc;
  // Who signs is known before anything is printed: the diff of a blinded
  // signer (a study manager may be blinded) leaves out the arm lines.
  Signature signer{args.get("user"),
                   read_secret_line("password of hub user " + args.get("user") + " (signature, approved): ")};
  auto who = check_signature(*hub, signer, shared::Permission::manage_study);
  if (!who) {
    crypto::secure_zero(signer.password.data(), signer.password.size());
    return fail(args, who.error());
  }
  const bool blinded = reads_blinded(hub->study(), hub->study().find_role(who->role));
  auto plan = plan_amendment(*hub, document);
  if (!plan.study) {
    crypto::secure_zero(signer.password.data(), signer.password.size());
    shared::StudyLoad load{std::nullopt, amendment_lines_for(plan.errors, blinded)};
    report_errors(file, load);
    return kInvalid;
  }
  const auto& old = hub->study();
  std::cout << "study " << old.id << ": version " << old.version << " -> " << plan.study->version << " ("
            << plan.changes.size() << (plan.changes.size() == 1 ? " change" : " changes") << ")\n";
  for (const auto& c : amendment_lines_for(plan.changes, blinded)) std::cout << "  " << c << "\n";
  if (!plan.refusals.empty()) {
    crypto::secure_zero(signer.password.data(), signer.password.size());
    for (const auto& r : amendment_lines_for(plan.refusals, blinded)) std::cerr << file << ": " << r << "\n";
    std::cerr << args.command_path() << ": the amendment was refused (" << plan.refusals.size()
              << (plan.refusals.size() == 1 ? " problem" : " problems") << "); nothing was changed\n";
    return shared::exit_code(shared::Errc::conflict);
  }
  std::size_t nodes = 0;
  for (const auto& n : hub->ledger().nodes()) nodes += n.status != sync::NodeStatus::revoked;
  if (args.flag("dry-run")) {
    crypto::secure_zero(signer.password.data(), signer.password.size());
    std::cout << "verdict: acceptable; signed, it would become version " << plan.study->version << " and reach "
              << nodes << (nodes == 1 ? " node" : " nodes") << " at their next sync (dry run: nothing was changed)\n";
    return 0;
  }
  auto done = amend(*hub, document, args.get("reason"), signer, sync::system_millis());
  crypto::secure_zero(signer.password.data(), signer.password.size());
  if (!done) return fail(args, done.error());
  std::cout << "study " << old.id << " is now at version " << done->new_version << " (was " << done->old_version
            << "), approved by " << signer.user << "; study.config issued to " << done->directives
            << (done->directives == 1 ? " node" : " nodes") << ", applied at their next sync\n";
  if (done->list == ListChange::extended)
    std::cout << "randomization list extended from its recorded seed for the strata this version adds\n";
  if (done->list == ListChange::replaced) std::cout << "randomization list generated afresh (nothing was granted yet)\n";
  if (done->list == ListChange::segment)
    std::cout << "randomization list continued with a segment for this version; " << done->slots_voided
              << " free slots in blocks not yet started voided at the nodes, sent with their next sync\n";
  if (done->kits_made) std::cout << done->kits_made << " kits made at the depots for what this version adds\n";
  return 0;
}

int study_versions_command(const shared::Args& args) {
  int rc = 0;
  auto hub = open_or_report(args, rc);
  if (!hub) return rc;
  if (!command_line_user(args, *hub, "reader", shared::Permission::manage_study, rc)) return rc;
  auto versions = study_versions(hub->db(), args.find("version").has_value());
  if (auto v = args.find("version")) {
    for (const auto& sv : versions)
      if (std::to_string(sv.version) == *v) {
        std::cout << sv.document;
        if (!sv.document.empty() && sv.document.back() != '\n') std::cout << "\n";
        return 0;
      }
    std::cerr << args.command_path() << ": the hub holds no version " << *v << " of the study; see "
              << args.command_path() << " --data " << args.get("data") << "\n";
    return 1;
  }
  if (args.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& sv : versions)
      out.push_back({{"version", sv.version}, {"study_id", sv.study_id}, {"loaded", utc_text(sv.loaded_ms)},
                     {"loaded_by", sv.loaded_by}, {"reason", sv.reason}, {"current", &sv == &versions.back()}});
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& sv : versions)
    std::cout << "version " << sv.version << (&sv == &versions.back() ? " (current)" : "") << "  "
              << utc_text(sv.loaded_ms) << "  by " << sv.loaded_by
              << (sv.reason.empty() ? std::string() : "  reason: " + sv.reason) << "\n";
  return 0;
}

// Per design change (an amendment closing an arm): which nodes have applied
// it, and the randomizations made under the older design after it.
int design_changes_command(const shared::Args& args) {
  int rc = 0;
  auto hub = open_or_report(args, rc);
  if (!hub) return rc;
  auto blinded = reader_reads_blinded(args, *hub, shared::Permission::manage_study, rc);
  if (!blinded) return rc;
  const bool unblinded = !*blinded;
  auto report = design_change_report(*hub);
  if (args.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : report) out.push_back(to_json(r, unblinded));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (report.empty()) {
    std::cout << "no design changes: no amendment has closed an arm, changed a ratio or added an arm\n";
    return 0;
  }
  for (const auto& r : report) {
    std::size_t applied = 0;
    for (const auto& n : r.nodes) applied += n.applied;
    std::cout << "version " << r.change.version << "  " << utc_text(r.change.made_ms) << "  by " << r.change.made_by
              << "  closes " << (unblinded ? shared::join(r.change.closed_arms, ", ", "")
                                           : std::to_string(r.change.closed_arms.size()) + " arm(s)")
              << (r.change.allocation_changed
                      ? "  allocation changed" +
                            (unblinded && !r.change.added_arms.empty()
                                 ? " (adds " + shared::join(r.change.added_arms, ", ", "") + ")"
                                 : std::string())
                      : std::string())
              << "  reason: " << r.change.reason << "\n  applied by " << applied << " of " << r.nodes.size()
              << " nodes; " << r.old_design_randomizations
              << " randomizations under an older version after it (deviations old_design)\n";
    for (const auto& n : r.nodes)
      std::cout << "  node " << n.node_id << " (site " << n.site_id << ")  "
                << (n.applied ? "applied" : "not applied yet")
                << (n.directive_seq ? "  study.config directive " + std::to_string(*n.directive_seq) : std::string())
                << "  old-design randomizations " << n.old_design_randomizations << "\n";
  }
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
  const shared::Option data{"data", "DIR", "the hub's data directory", true};
  const shared::Option db{"db", "URL", "the hub's PostgreSQL database, as recorded in DIR/database.url", false};
  shared::Command amend_cmd{
      .name = "amend",
      .summary = "Make a new version of the study current: validate it, refuse what cannot change mid-study, print "
                 "the diff, and on the e-signature (password on the first line of standard input, read for a dry "
                 "run too: a blinded signer's diff leaves out the arm lines) store it and send it to every node",
      .options = {data, db,
                  {"study", "FILE", "the new version of the study configuration (JSON)", true},
                  {"user", "NAME", "the hub user who approves it (holding manage_study); signs with the password", true},
                  {"reason", "TEXT", "why, for the audit trail", true},
                  {"dry-run", "", "print the diff and the verdict; change nothing", false}},
      .run = amend_study,
  };
  shared::Command versions{
      .name = "study-versions",
      .summary = "List every version of the study the hub holds (when, by whom, why), or print one",
      .options = {data, db, reader_option(shared::Permission::manage_study),
                  {"version", "N", "print version N's document", false},
                  {"json", "", "print JSON", false}},
      .run = study_versions_command,
  };
  shared::Command changes{
      .name = "design-changes",
      .summary = "For every amendment that changed the design (an arm closed): which nodes have applied it, and how "
                 "many randomizations were made under the older design after it (each an old_design deviation)",
      .options = {data, db, reader_option(shared::Permission::manage_study), {"json", "", "print JSON", false}},
      .run = design_changes_command,
  };
  return {check, diff, amend_cmd, versions, changes};
}

}  // namespace irt::hub
