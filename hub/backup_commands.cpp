// irt-hub backup and restore (docs/operations.md): the hub's tables and its
// key files in one file while the hub serves, and a new data directory made
// from one. The format and its guarantees: HubState::write_backup, restore.
#include <filesystem>
#include <iostream>

#include "crypto/bytes.h"
#include "hub/commands.h"
#include "hub/hub_state.h"

namespace irt::hub {

namespace {

using shared::Args;
using shared::Command;

int backup_cmd(const Args& a) {
  const std::filesystem::path dir = a.get("data"), out = a.get("out");
  auto pass = read_hub_passphrase(a);
  if (!pass) return report(a, pass.error());
  auto st = HubState::write_backup(dir, out, *pass);
  crypto::secure_zero(pass->data(), pass->size());
  if (!st) return report(a, st.error());
  std::error_code ec;
  std::cout << "backup of " << dir.string() << " written to " << out.string() << " ("
            << std::filesystem::file_size(out, ec) / 1024
            << " KiB): the hub's tables and key files, sealed under its passphrase. Keep it apart from the "
               "passphrase; restore it with 'irt-hub restore --from "
            << out.string() << " --data NEWDIR'\n";
  return 0;
}

int restore_cmd(const Args& a) {
  auto pass = read_hub_passphrase(a);
  if (!pass) return report(a, pass.error());
  auto hub = HubState::restore(a.get("from"), a.get("data"), *pass);
  crypto::secure_zero(pass->data(), pass->size());
  if (!hub) return report(a, hub.error());
  auto verified = (*hub)->ledger().verify_all();
  if (!verified) {
    std::cerr << a.command_path() << ": restored into " << a.get("data")
              << ", but its ledger does not verify: " << verified.error().message
              << "\nDo not serve it; restore an older backup into another new directory.\n";
    return 1;
  }
  std::cout << "restored " << a.get("from") << " into " << a.get("data") << "; ledger verified: " << verified->nodes
            << " nodes, " << verified->events << " events, root " << verified->root.hex()
            << ".\nServe it with 'irt-hub serve --data " << a.get("data")
            << "': nodes re-push what they recorded after the backup, and the hub continues their directives above "
               "the ones they applied (docs/operations.md)\n";
  return 0;
}

}  // namespace

std::vector<Command> backup_commands() {
  std::vector<Command> out;
  out.push_back({.name = "backup",
                 .summary = "Write the hub's database and key files into one new file, while the hub serves "
                            "(SQLite's online backup; a PostgreSQL hub: pg_dump, docs/operations.md); needs the "
                            "passphrase (IRT_HUB_PASSPHRASE or --passphrase-file)",
                 .options = {kData, {"out", "FILE", "the backup file to write; never overwritten", true},
                             kPassphraseFile},
                 .run = backup_cmd});
  out.push_back({.name = "restore",
                 .summary = "Make a new data directory from a backup file, open it with the passphrase "
                            "(IRT_HUB_PASSPHRASE or --passphrase-file) and verify its ledger",
                 .options = {{"from", "FILE", "a file written by 'irt-hub backup'", true},
                             {"data", "DIR", "the new data directory: absent or empty", true},
                             kPassphraseFile},
                 .run = restore_cmd});
  return out;
}

}  // namespace irt::hub
