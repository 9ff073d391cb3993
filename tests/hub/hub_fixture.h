// A real hub data directory in a temporary folder, for the hub's unit tests.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "hub/hub_state.h"
#include "tests/support/test_support.h"

namespace irt::test {

inline constexpr std::int64_t kHubNow = 1767225600000;  // 2026-01-01T00:00:00Z
inline constexpr std::int64_t kHour = 3600 * 1000;

struct HubFixture {
  TempDir dir;
  std::unique_ptr<hub::HubState> hub;

  explicit HubFixture(const std::string& study = "packaging/examples/study-blocks.json") {
    auto created = hub::HubState::create(dir / "hub", read_file(source_path(study)), "tester", kHubNow);
    REQUIRE_MESSAGE(created.ok(), created.error().message);
    hub = std::move(created.value());
  }
};

}  // namespace irt::test
