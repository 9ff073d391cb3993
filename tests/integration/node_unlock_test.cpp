// The node's passphrase: a wrong one is refused with a clear message and
// counted; the right one opens the node and clears the count.
#include <doctest/doctest.h>

#include "tests/support/cluster.h"

using namespace irt;

namespace {
test::CommandResult status_with(test::NodeDir& node, const std::string& passphrase) {
  return test::run({IRT_NODE_BIN, "status", "--data", node.data().string()}, "",
                   {"IRT_PASSPHRASE=" + passphrase});
}
}  // namespace

TEST_CASE("a wrong passphrase is refused and counted, the right one opens the node and clears the count") {
  test::HubProcess hub;
  test::NodeDir node(hub, "101");
  auto failures = node.data() / "unlock-failures";
  for (int i = 1; i <= 3; ++i) {
    auto r = status_with(node, "not the passphrase");
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("wrong passphrase") != std::string::npos);
    CHECK(r.err.find("not the passphrase") == std::string::npos);  // never echoed
    CHECK(test::read_file(failures) == std::to_string(i));
  }
  auto ok = status_with(node, test::kNodePassphrase);
  CHECK(ok.exit_code == 0);
  CHECK_FALSE(std::filesystem::exists(failures));
  CHECK(node.verify().exit_code == 0);  // nothing was changed by the refusals
}

TEST_CASE("no passphrase at all is a usage problem that names both ways to give one") {
  test::HubProcess hub;
  test::NodeDir node(hub, "101");
  auto r = test::run({IRT_NODE_BIN, "status", "--data", node.data().string()}, "", {"IRT_PASSPHRASE="});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("IRT_PASSPHRASE") != std::string::npos);
  CHECK(r.err.find("--passphrase-file") != std::string::npos);
}
