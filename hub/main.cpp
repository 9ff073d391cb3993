#include <sodium.h>

#include <algorithm>
#include <iostream>

#include "hub/commands.h"
#include "storage/storage_fault.h"

int main(int argc, char** argv) {
  if (sodium_init() < 0) {
    std::cerr << "irt-hub: libsodium failed to initialise; the system's random source is unavailable\n";
    return 1;
  }
  irt::shared::Command root;
  root.name = "irt-hub";
  root.summary = "The central hub of the offline-first IRT: study setup, node enrollment, sync, ledger.";
  for (auto& c : irt::hub::study_commands()) root.subcommands.push_back(std::move(c));
  for (auto& c : irt::hub::randomization_commands()) root.subcommands.push_back(std::move(c));
  for (auto& c : irt::hub::node_commands()) root.subcommands.push_back(std::move(c));
  for (auto& c : irt::hub::lease_commands()) root.subcommands.push_back(std::move(c));
  for (auto& c : irt::hub::cohort_commands()) root.subcommands.push_back(std::move(c));
  // Supply commands come from two files; a group both name (kits) is one command.
  for (auto* group : {&irt::hub::supply_commands, &irt::hub::kit_decision_commands, &irt::hub::shipment_commands})
    for (auto& c : (*group)()) {
      auto same = std::find_if(root.subcommands.begin(), root.subcommands.end(),
                               [&](const irt::shared::Command& o) { return o.name == c.name; });
      if (same == root.subcommands.end()) {
        root.subcommands.push_back(std::move(c));
        continue;
      }
      same->summary += "; " + c.summary;
      for (auto& sub : c.subcommands) same->subcommands.push_back(std::move(sub));
    }
  for (auto& c : irt::hub::transfer_commands()) root.subcommands.push_back(std::move(c));
  root.subcommands.push_back(irt::hub::forecast_command());
  for (auto& c : irt::hub::export_commands()) root.subcommands.push_back(std::move(c));
  for (auto& c : irt::hub::webhook_commands()) root.subcommands.push_back(std::move(c));
  for (auto& c : irt::hub::backup_commands()) root.subcommands.push_back(std::move(c));
  // A full disk or a read-only database is told as the API tells it (exit 3), not as a bug.
  return irt::shared::run_commands(root, argc, argv, [](const std::exception& e) {
    return irt::storage::storage_refusal(e, "irt-hub");
  });
}
