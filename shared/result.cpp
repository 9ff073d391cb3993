#include "shared/result.h"

#include <array>

namespace irt::shared {

namespace {

// The one table of error codes, as docs/errors.md lists it ("Codes"); its
// test reads that table and checks every row against this one.
struct ErrcRow {
  Errc code;
  const char* name;
  int http;
  int exit;
};
constexpr std::array<ErrcRow, 10> kErrcTable = {{
    {Errc::invalid_input, "invalid_input", 400, 2},
    {Errc::not_found, "not_found", 404, 1},
    {Errc::unauthenticated, "unauthenticated", 401, 1},
    {Errc::forbidden, "forbidden", 403, 1},
    {Errc::rate_limited, "rate_limited", 429, 1},
    {Errc::conflict, "conflict", 409, 1},
    {Errc::exhausted, "exhausted", 409, 1},
    {Errc::unavailable, "unavailable", 503, 3},
    {Errc::integrity, "integrity", 422, 1},
    {Errc::internal, "internal", 500, 1},
}};

const ErrcRow& row(Errc code) {
  for (const auto& r : kErrcTable)
    if (r.code == code) return r;
  return kErrcTable.back();  // not an Errc: internal
}

}  // namespace

const char* errc_name(Errc code) { return row(code).name; }
int http_status(Errc code) { return row(code).http; }
int exit_code(Errc code) { return row(code).exit; }

std::optional<Errc> errc_from_name(std::string_view name) {
  for (const auto& r : kErrcTable)
    if (name == r.name) return r.code;
  return std::nullopt;
}

Errc errc_for_http_status(int status) {
  for (const auto& r : kErrcTable)
    if (r.http == status) return r.code;
  return status >= 400 && status < 500 ? Errc::invalid_input : Errc::internal;
}

}  // namespace irt::shared
