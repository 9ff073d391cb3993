// The directive outbox: per-node sequences, signed records, pulls after a seq.
#include <doctest/doctest.h>

#include "hub/directive_outbox.h"
#include "sync/directive.h"
#include "tests/hub/hub_fixture.h"

using namespace irt;
using test::HubFixture;
using test::kHubNow;

TEST_CASE("directives are numbered per node from 1, signed by the hub, and ordered by their clock") {
  HubFixture f;
  auto& out = f.hub->outbox();
  CHECK(out.issue("101-N1", "roster", R"({"users":[]})", kHubNow) == 1);
  CHECK(out.issue("101-N1", "roster", R"({"users":[]})", kHubNow) == 2);
  CHECK(out.issue("102-N1", "roster", R"({"users":[]})", kHubNow) == 1);
  // A clock that went backwards still yields a later HLC.
  CHECK(out.issue("101-N1", "study.config", "{}", kHubNow - 5000) == 3);
  auto records = out.after("101-N1", 0, 10);
  REQUIRE(records.size() == 3);
  std::uint64_t last_hlc = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    auto d = sync::parse_directive(records[i]);
    REQUIRE(d.ok());
    CHECK(d->body.node_id == "101-N1");
    CHECK(d->body.seq == i + 1);
    CHECK(d->body.hlc > last_hlc);
    last_hlc = d->body.hlc;
    CHECK(sync::verify_directive(*d, f.hub->signing_key().public_key()));
  }
}

TEST_CASE("a pull returns only directives after the given seq, up to the limit") {
  HubFixture f;
  auto& out = f.hub->outbox();
  for (int i = 0; i < 5; ++i) out.issue("101-N1", "roster", "{}", kHubNow);
  CHECK(out.after("101-N1", 3, 10).size() == 2);
  CHECK(out.after("101-N1", 5, 10).empty());
  auto two = out.after("101-N1", 0, 2);
  REQUIRE(two.size() == 2);
  CHECK(sync::parse_directive(two[1])->body.seq == 2);
  CHECK(out.after("999-N1", 0, 10).empty());
  CHECK(out.last_seq("101-N1") == 5);
}
