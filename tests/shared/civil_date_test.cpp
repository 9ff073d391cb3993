// UTC dates and times as people type them (--since of irt-hub audit).
#include <doctest/doctest.h>

#include "shared/civil_date.h"

using namespace irt;

TEST_CASE("a UTC date or time parses to its milliseconds and back, anything else is refused") {
  CHECK(shared::parse_utc("1970-01-01") == 0);
  CHECK(shared::parse_utc("2026-01-01") == 1767225600000);
  CHECK(shared::parse_utc("2026-01-01T00:00:00Z") == 1767225600000);
  CHECK(shared::parse_utc("2026-12-02T16:49:05Z") == 1796230145000);
  CHECK(shared::utc_text(*shared::parse_utc("2026-12-02T16:49:05Z")) == "2026-12-02T16:49:05Z");
  for (const char* bad : {"", "yesterday", "2026-02-30", "2026-01-01T24:00:00Z", "2026-01-01T10:60:00Z",
                          "2026-01-01T10:00:00", "2026-01-01 10:00:00Z", "2026-01-01T10:00:00+01:00", "2026-1-1"})
    CHECK_MESSAGE(!shared::parse_utc(bad), bad);
}
