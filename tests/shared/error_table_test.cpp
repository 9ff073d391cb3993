// docs/errors.md is the source of truth for error codes: every row of its
// "Codes" table is checked against shared/result.cpp (the sync refusal codes:
// tests/sync/refusal_test.cpp).
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "shared/result.h"
#include "tests/support/test_support.h"

using namespace irt;

TEST_CASE("every error code maps to the number, HTTP status and exit code docs/errors.md gives it") {
  auto rows = test::markdown_table(test::read_file(test::source_path("docs/errors.md")), "| code | number | HTTP | exit |");
  REQUIRE(rows.size() == 10);
  std::set<int> numbers;
  for (const auto& r : rows) {
    CAPTURE(r[0]);
    REQUIRE(r.size() >= 4);
    auto code = shared::errc_from_name(r[0]);
    REQUIRE(code.has_value());
    CHECK(shared::errc_name(*code) == r[0]);
    CHECK(static_cast<int>(*code) == std::stoi(r[1]));
    CHECK(shared::http_status(*code) == std::stoi(r[2]));
    CHECK(shared::exit_code(*code) == std::stoi(r[3]));
    numbers.insert(std::stoi(r[1]));
  }
  CHECK(numbers.size() == rows.size());  // ten distinct codes: the whole enum
}

TEST_CASE("an HTTP status without a known code falls back to the family the table gives that status") {
  CHECK(shared::errc_for_http_status(404) == shared::Errc::not_found);
  CHECK(shared::errc_for_http_status(409) == shared::Errc::conflict);  // not exhausted: the first with 409
  CHECK(shared::errc_for_http_status(422) == shared::Errc::integrity);
  CHECK(shared::errc_for_http_status(429) == shared::Errc::rate_limited);
  CHECK(shared::errc_for_http_status(413) == shared::Errc::invalid_input);
  CHECK(shared::errc_for_http_status(502) == shared::Errc::internal);
  CHECK_FALSE(shared::errc_from_name("no_such_code").has_value());
}
