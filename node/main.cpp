#include <sodium.h>

#include <iostream>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "node/commands.h"
#include "storage/storage_fault.h"

int main(int argc, char** argv) {
#ifdef __GLIBC__
  // One malloc arena for every thread. By default glibc gives each HTTP worker
  // thread an arena of its own, and each keeps the memory its thread freed, so
  // the node's footprint grew with the number of workers that had served a
  // request (4 MB of 30 with 10,000 participants). The node's work runs under
  // one lock anyway, so the threads do not contend for the arena.
  mallopt(M_ARENA_MAX, 1);
#endif
  if (sodium_init() < 0) {
    std::cerr << "irt-node: libsodium failed to initialise; the system's random source is unavailable\n";
    return 1;
  }
  irt::shared::Command root;
  root.name = "irt-node";
  root.summary = "A site node of the offline-first IRT: randomize and dispense with or without a network.";
  for (auto& c : irt::node::node_commands()) root.subcommands.push_back(std::move(c));
  // A full disk or a read-only database is told as the API tells it (exit 3), not as a bug.
  return irt::shared::run_commands(root, argc, argv, [](const std::exception& e) {
    return irt::storage::storage_refusal(e, "irt-node");
  });
}
