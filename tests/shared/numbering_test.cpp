#include "shared/numbering.h"

#include <doctest/doctest.h>

using namespace irt::shared;

TEST_CASE("participant numbers are the site id and the zero-padded number, and parse back") {
  CHECK(format_participant_number("101", 3, 7) == "101-007");
  CHECK(format_participant_number("site-b", 3, 1234) == "site-b-1234");
  auto p = parse_participant_number("site-b-1234");
  REQUIRE(p);
  CHECK(p->prefix == "site-b");
  CHECK(p->n == 1234u);
  CHECK_FALSE(parse_participant_number("101"));
  CHECK_FALSE(parse_participant_number("-007"));
  CHECK_FALSE(parse_participant_number("101-"));
  CHECK_FALSE(parse_participant_number("101-0x7"));
  CHECK_FALSE(parse_participant_number("101-4294967296"));
}

TEST_CASE("randomization numbers name the list slot or the minimization decision") {
  CHECK(list_randomization_number(0, 1) == "R01-0001");
  CHECK(list_randomization_number(11, 250) == "R12-0250");
  CHECK(minimization_randomization_number(3, 42) == "M3-0042");
}
