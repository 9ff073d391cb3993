#include "node/node_state.h"

#include <doctest/doctest.h>

#include "tests/support/node_fixture.h"
#include "tests/support/test_support.h"

using namespace irt;

TEST_CASE("an opened node bounds SQLite's page cache of node.db to kPageCacheKiB") {
  test::TempDir tmp;
  test::NodeFixture fixture(tmp / "node");
  auto state = fixture.open();
  auto st = state->db().prepare("PRAGMA cache_size");
  REQUIRE(st.step());
  CHECK(st.int64(0) == -node::NodeState::kPageCacheKiB);  // negative: KiB rather than pages
}
