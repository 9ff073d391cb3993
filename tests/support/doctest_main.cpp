#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

#include "tests/support/test_support.h"

int main(int argc, char** argv) {
  // Every irt-hub a test starts unlocks its keys with the test passphrase.
  ::setenv("IRT_HUB_PASSPHRASE", irt::test::kHubPassphrase, 0);
  return doctest::Context(argc, argv).run();
}
