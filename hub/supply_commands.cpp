// The irt-hub commands for lots and kits: lot (add, list, release, relabel),
// kits (import, generate), kit history, site activate, supply run. Each opens the data
// directory, does one thing, and reports failures as
// "irt-hub COMMAND: what was wrong; what to do" with the exit code of the
// error's family. Signed commands take --user and the password as the first
// line of standard input.
#include <cstdio>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "crypto/bytes.h"
#include "hub/audit.h"
#include "hub/commands.h"
#include "hub/hub_state.h"
#include "hub/kit_history.h"
#include "hub/kit_lists.h"
#include "hub/lots.h"
#include "hub/resupply_runner.h"
#include "hub/site_activation.h"
#include "hub/users.h"
#include "sync/hlc.h"
#include "shared/text.h"

namespace irt::hub {

namespace {

using shared::Args;
using shared::Command;
using shared::Option;

const Option kReason{"reason", "TEXT", "why, for the audit trail", true};

// Runs a signed change: --user and the password from standard input, wiped after use.
template <class F>
int signed_change(const Args& a, F&& change) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  Signature signer{a.get("user"), read_secret_line("password of hub user " + a.get("user") + " (signature): ")};
  rc = change(*hub, signer);
  crypto::secure_zero(signer.password.data(), signer.password.size());
  return rc;
}

// ---- lot

int lot_add(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto who = command_line_user(a, *hub, "user", shared::Permission::manage_supply, rc);
  if (!who) return rc;
  auto& db = hub->db();
  storage::Transaction tx(db);
  if (auto st = add_lot(db, a.get("lot"), a.get("expiry"), a.get_or("reason", "irt-hub lot add"), who->name,
                        sync::system_millis());
      !st)
    return report(a, st.error());
  tx.commit();
  std::cout << "lot " << a.get("lot") << " added, expiry " << a.get("expiry")
            << " (end of day UTC); release it per country with 'irt-hub lot release'\n";
  return 0;
}

nlohmann::json lot_json(const Lot& l, bool blinded) {
  nlohmann::json j = {{"lot", l.id}, {"expiry", l.expiry}, {"released_in", l.released_in}, {"kits", l.kits}};
  if (!blinded) j["kit_types"] = l.kit_types;
  return j;
}

int lot_list(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto blinded = reader_reads_blinded(a, *hub, shared::Permission::manage_supply, rc);
  if (!blinded) return rc;
  auto lots = list_lots(hub->db());
  if (a.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& l : lots) out.push_back(lot_json(l, *blinded));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (lots.empty()) {
    std::cout << "no lots; add one with 'irt-hub lot add --data DIR --lot ID --expiry YYYY-MM-DD'\n";
    return 0;
  }
  std::printf("%-16s %-10s %6s  %-20s%s\n", "LOT", "EXPIRY", "KITS", "RELEASED IN", *blinded ? "" : "  KIT TYPES");
  for (const auto& l : lots)
    std::printf("%-16s %-10s %6zu  %-20s%s\n", l.id.c_str(), l.expiry.c_str(), l.kits, shared::join(l.released_in, ",", "-").c_str(),
                *blinded ? "" : ("  " + shared::join(l.kit_types, ",", "-")).c_str());
  return 0;
}

int lot_release(const Args& a) {
  return signed_change(a, [&](HubState& hub, const Signature& s) {
    auto countries = split_list(a.get("countries"));
    if (auto st = release_lot(hub, a.get("lot"), countries, a.get("reason"), s, sync::system_millis()); !st)
      return report(a, st.error());
    std::cout << "lot " << a.get("lot") << " released in " << shared::join(countries, ",", "-") << ", signed by " << s.user
              << " (approved)\n";
    return 0;
  });
}

int lot_relabel(const Args& a) {
  return signed_change(a, [&](HubState& hub, const Signature& s) {
    auto done = relabel_lot(hub, a.get("lot"), a.get("expiry"), a.get("reason"), s, sync::system_millis());
    if (!done) return report(a, done.error());
    std::cout << "lot " << a.get("lot") << " relabelled: expiry " << done->old_expiry << " -> " << a.get("expiry")
              << " on " << done->kits << " kits; " << done->nodes.size()
              << " node(s) told to relabel their kits at their next sync; signed by " << s.user << " (approved)\n";
    return 0;
  });
}

// ---- kits

int kits_import(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto who = command_line_user(a, *hub, "user", shared::Permission::manage_supply, rc);
  if (!who) return rc;
  auto done = import_kit_list_file(*hub, a.get("file"), who->name, sync::system_millis());
  if (!done) return report(a, done.error());
  std::cout << done->kits << " kits imported from " << a.get("file") << " (hash " << done->hash_hex
            << "); all or nothing, audited\n";
  return 0;
}

int kits_generate(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto who = command_line_user(a, *hub, "user", shared::Permission::manage_supply, rc);
  if (!who) return rc;
  auto done = generate_kit_list(*hub, who->name, sync::system_millis());
  if (!done) return report(a, done.error());
  std::cout << *done << " blinded kit numbers generated from a recorded seed and placed at the depots\n";
  return 0;
}

// ---- kit history

int kit_history_command(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto blinded = reader_reads_blinded(a, *hub, shared::Permission::view_inventory, rc);
  if (!blinded) return rc;
  auto h = kit_history(*hub, a.positional().at(0), *blinded);
  if (!h) return report(a, h.error());
  if (a.flag("json")) {
    std::cout << to_json(*h, *blinded).dump(2) << "\n";
    return 0;
  }
  const auto& k = h->kit;
  std::cout << "kit " << k.number << ": " << shared::to_string(k.status) << ", held by " << k.custody_kind << " "
            << k.custody_id << ", expiry " << k.expiry;
  if (!*blinded) std::cout << ", kit type " << k.kit_type << ", lot " << k.lot;
  std::cout << "\n";
  for (const auto& e : h->entries) {
    std::cout << utc_text(e.at_ms) << "  " << e.source << "  " << e.user << "  " << e.action << "  " << e.object;
    if (e.source == "node") std::cout << "  node " << e.node_id << " (site " << e.site_id << ")";
    if (!e.reason.empty()) std::cout << "  why: " << e.reason;
    if (!e.new_value.empty()) std::cout << "  [" << (e.old_value.empty() ? "-" : e.old_value) << " -> " << e.new_value << "]";
    if (!e.signature.empty()) std::cout << "  signed: " << e.signature;
    std::cout << "\n";
  }
  return 0;
}

// ---- supply run

int supply_run(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto who = command_line_user(a, *hub, "user", shared::Permission::manage_supply, rc);
  if (!who) return rc;
  auto site = a.find("site");
  auto reviews = run_resupply(*hub, site ? std::optional<std::string>(*site) : std::nullopt, who->name,
                              sync::system_millis());
  if (!reviews) return report(a, reviews.error());
  if (reviews->empty()) std::cout << "no active site to review\n";
  bool short_of_stock = false;
  for (const auto& r : *reviews) {
    std::cout << describe(r) << "\n";
    short_of_stock = short_of_stock || !r.problem.empty();
  }
  return short_of_stock ? shared::exit_code(shared::Errc::exhausted) : 0;
}

// ---- site activate

int site_activate(const Args& a) {
  return signed_change(a, [&](HubState& hub, const Signature& s) {
    if (auto st = activate_site(hub, a.get("site"), a.get_or("reason", "irt-hub site activate"), s,
                                sync::system_millis());
        !st)
      return report(a, st.error());
    std::cout << "site " << a.get("site") << " activated, signed by " << s.user
              << " (approved); its nodes may now be enrolled\n";
    return 0;
  });
}

}  // namespace

std::vector<Command> supply_commands() {
  std::vector<Command> out;
  const Option lot{"lot", "ID", "the lot id", true};
  Command lots{.name = "lot", .summary = "Lots: add, list, release per country (signed), relabel (signed)"};
  lots.subcommands.push_back(
      {.name = "add",
       .summary = "Add a lot with its expiry date (the last day of use, UTC end of day)",
       .options = {kData, kDb, kPassphraseFile, lot, {"expiry", "YYYY-MM-DD", "the lot's expiry date", true}, {"user", "NAME", "the hub user acting (manage_supply); the password is the first line of standard input", true},
                   {"reason", "TEXT", "why, for the audit trail", false}},
       .run = lot_add});
  lots.subcommands.push_back(
      {.name = "list",
       .summary = "List the lots: expiry, kits, countries released in (kit types to unblinded readers only)",
       .options = {kData, kDb, kPassphraseFile, kJson, reader_option(shared::Permission::manage_supply)},
       .run = lot_list});
  lots.subcommands.push_back(
      {.name = "release",
       .summary = "Release a lot for shipment to countries (signed, release_quarantine)",
       .options = {kData, kDb, kPassphraseFile, lot, {"countries", "LIST", "country codes, comma-separated: FR,BE", true},
                   {"user", "NAME", "the hub user signing (release_quarantine); the password is the first line of "
                                    "standard input", true},
                   kReason},
       .run = lot_release});
  lots.subcommands.push_back(
      {.name = "relabel",
       .summary = "Give a lot a new expiry date (signed, manage_supply): its kits' sites are told to relabel them",
       .options = {kData, kDb, kPassphraseFile, lot, {"expiry", "YYYY-MM-DD", "the new expiry date", true},
                   {"user", "NAME", "the hub user signing (manage_supply); the password is the first line of "
                                    "standard input", true},
                   kReason},
       .run = lot_relabel});
  out.push_back(std::move(lots));

  Command kits{.name = "kits", .summary = "Kit lists: import a vendor's list, or generate blinded numbers"};
  kits.subcommands.push_back(
      {.name = "import",
       .summary = "Import a kit list CSV (kit_number,kit_type,lot,depot): all or nothing, audited with its hash",
       .options = {kData, kDb, kPassphraseFile, {"file", "FILE", "the CSV file", true}, {"user", "NAME", "the hub user acting (manage_supply); the password is the first line of standard input", true}},
       .run = kits_import});
  kits.subcommands.push_back(
      {.name = "generate",
       .summary = "Generate blinded kit numbers for the study's depots (studies that let the system number kits)",
       .options = {kData, kDb, kPassphraseFile, {"user", "NAME", "the hub user acting (manage_supply); the password is the first line of standard input", true}},
       .run = kits_generate});
  out.push_back(std::move(kits));

  Command kit{.name = "kit", .summary = "One kit: its chain of custody"};
  kit.subcommands.push_back(
      {.name = "history",
       .summary = "A kit's chain of custody: hub entries and node events naming it, oldest first",
       .options = {kData, kDb, kPassphraseFile, kJson, reader_option(shared::Permission::view_inventory)},
       .positional = "KIT",
       .min_positional = 1,
       .max_positional = 1,
       .run = kit_history_command});
  out.push_back(std::move(kit));

  Command site{.name = "site", .summary = "Sites: activate by hand (studies with \"site_activation\": \"manual\")"};
  site.subcommands.push_back(
      {.name = "activate",
       .summary = "Activate a site (signed, manage_supply): its nodes may then be enrolled",
       .options = {kData, kDb, kPassphraseFile, {"site", "S", "the site id", true},
                   {"user", "NAME", "the hub user signing (manage_supply); the password is the first line of "
                                    "standard input", true},
                   {"reason", "TEXT", "why, for the audit trail", false}},
       .run = site_activate});
  out.push_back(std::move(site));

  Command supply{.name = "supply", .summary = "Live resupply: review sites now and ship what is due"};
  supply.subcommands.push_back(
      {.name = "run",
       .summary = "Review every active site (or one) and ship what the study's resupply rule orders",
       .options = {kData, kDb, kPassphraseFile, {"site", "S", "only this site", false},
                   {"user", "NAME", "the hub user acting (manage_supply); the password is the first line of "
                                    "standard input", true}},
       .run = supply_run});
  out.push_back(std::move(supply));
  return out;
}

}  // namespace irt::hub
