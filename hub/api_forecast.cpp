// The forecast route of the hub's API (hub/forecast.h): view_inventory, like
// the other reads of kits; kit types only for an unblinded reader.
#include "hub/api_server.h"
#include "hub/forecast.h"
#include "shared/command_line.h"

namespace irt::hub {

namespace {

// GET /api/v1/forecast?weeks=N (default kDefaultWeeks).
constexpr int kDefaultWeeks = 8;

shared::Result<nlohmann::json> forecast_view(ApiCall& c) {
  int weeks = kDefaultWeeks;
  if (c.query.count("weeks")) {
    auto n = shared::parse_u64(c.query_value("weeks"));
    if (!n || *n < 1 || *n > static_cast<std::uint64_t>(kMaxForecastWeeks))
      return shared::make_error(shared::Errc::invalid_input,
                                "weeks must be a whole number from 1 to " + std::to_string(kMaxForecastWeeks) +
                                    " (got \"" + c.query_value("weeks") + "\"); ask for fewer weeks");
    weeks = static_cast<int>(*n);
  }
  auto f = forecast(c.hub, weeks, c.now_ms);
  if (!f) return f.error();
  return to_json(*f, c.blinded());
}

}  // namespace

std::vector<ApiRoute> forecast_routes() {
  return {{"GET", "/api/v1/forecast", shared::Permission::view_inventory, forecast_view}};
}

}  // namespace irt::hub
