#include <sodium.h>

#include <iostream>

#include "node/commands.h"

int main(int argc, char** argv) {
  if (sodium_init() < 0) {
    std::cerr << "irt-node: libsodium failed to initialise; the system's random source is unavailable\n";
    return 1;
  }
  irt::shared::Command root;
  root.name = "irt-node";
  root.summary = "A site node of the offline-first IRT: randomize and dispense with or without a network.";
  for (auto& c : irt::node::node_commands()) root.subcommands.push_back(std::move(c));
  return irt::shared::run_commands(root, argc, argv);
}
