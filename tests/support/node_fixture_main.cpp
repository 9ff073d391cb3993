// irt-test-node-fixture: creates a ready node data directory (see
// node_fixture.h) for tests and benchmarks that start the real irt-node, and
// prints its summary as JSON. Test use only: its hub key is thrown away.
#include <sodium.h>

#include <iostream>

#include "tests/support/node_fixture.h"

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  std::string dir;
  irt::test::NodeFixtureOptions o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--data") dir = v;
    else if (a == "--study") o.study_file = v;
    else if (a == "--slots") o.slots_per_stratum = std::stoul(v);
    else if (a == "--numbers") o.numbers = static_cast<std::uint32_t>(std::stoul(v));
    else if (a == "--kits-per-type") o.kits_per_type = std::stoi(v);
    else if (a == "--randomized-days-ago") o.randomized_days_ago.push_back(std::stoi(v));
    else if (a == "--relabel-kits") o.relabel_kits = std::stoi(v);
    else if (a == "--pending-kind") o.pending_kind = v;
    else {
      std::cerr << "irt-test-node-fixture: unknown option " << a
                << "; use --data DIR [--study FILE] [--slots N] [--numbers N] [--kits-per-type N] [--randomized-days-ago N]... [--relabel-kits N] [--pending-kind KIND]\n";
      return 2;
    }
  }
  if (dir.empty()) {
    std::cerr << "irt-test-node-fixture: --data DIR is required\n";
    return 2;
  }
  try {
    irt::test::NodeFixture f(dir, o);
    std::cout << f.summary().dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "irt-test-node-fixture: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
