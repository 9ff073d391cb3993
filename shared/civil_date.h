// Calendar dates as whole days since 1970-01-01 (proleptic Gregorian), for kit
// expiry, the do-not-dispense window and visit windows. Dates travel as ISO
// 8601 "YYYY-MM-DD" strings in directives and events; arithmetic is on days.
// Conversion uses Howard Hinnant's civil-from-days algorithm, exact for every
// date from year 1 to 9999. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace irt::shared {

using Days = std::int64_t;  // days since 1970-01-01

// nullopt unless `text` is exactly "YYYY-MM-DD" naming a real date.
std::optional<Days> parse_date(std::string_view text);
std::string format_date(Days days);
// The UTC calendar day of a wall-clock time in milliseconds since the epoch.
Days day_of_millis(std::int64_t ms);
// "2026-01-01T00:00:00Z": how a wall-clock time is shown to people.
std::string utc_text(std::int64_t ms);
// The milliseconds of "YYYY-MM-DD" (its start, UTC) or "YYYY-MM-DDTHH:MM:SSZ";
// nullopt for anything else.
std::optional<std::int64_t> parse_utc(std::string_view text);

}  // namespace irt::shared
