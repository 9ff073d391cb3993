// Live resupply (docs/supply.md, "Live resupply"): the hub reviews a site,
// counts what it holds, asks shared::decide_resupply what to ship, and ships
// it by the one picking rule (hub/kit_inventory.h ship_kits) as a shipment
// directive to the site's node.
//
// A review of site S, on day D (UTC):
//   - stock, per kit type of the study (with its blinded label): usable = kits
//     in the custody of S's active nodes, received or available, whose expiry
//     is after D + the kit type's do-not-count days in S's country
//     (quarantined, damaged, missing, dispensed ... are not usable); in
//     transit = kits shipped to those nodes not yet reported received, with
//     the same expiry rule;
//   - scheduled: for each participant allocated at S, each later visit that
//     dispenses kits to the participant's arm and whose target day (from the
//     day of randomization) is D or later, its kits at the day its window
//     opens, counted from D;
//   - slots left: the randomizations S's nodes may still make from their
//     grants (list slots held unused, or the minimization allowance left);
//   - rate: participants allocated at S per day since S was activated;
//   - the study's supply.resupply parameters.
// The shipment goes to S's receiving node: its earliest-enrolled active node
// of kind "site". When the depot lacks shippable stock, nothing moves and the
// node gets one open alert "supply.resupply_failed" (`irt-hub alerts`).
//
// Who runs it: ingest before answering each node's pull (hub/ingest.h, in the
// pull's transaction, so the shipment reaches the node in that pull), `irt-hub
// serve` on a schedule (--resupply-every), and on demand `irt-hub supply run`
// and POST /api/v1/supply/run (manage_supply).
// Thread-safety: as HubState.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include "hub/hub_state.h"
#include "shared/directive_payloads.h"
#include "shared/resupply.h"
#include "shared/result.h"

namespace irt::hub {

struct SiteReview {
  std::string site_id;
  std::string node_id;                       // the receiving node; empty when the site has none
  shared::ResupplyInput input;               // what the decision saw (kit types: unblinded readers only)
  std::vector<shared::ShipmentLine> order;   // what it ordered; empty: nothing due
  std::optional<shared::Shipment> shipment;  // shipped
  std::string problem;                       // why an order was not shipped
};

// The decision's inputs for a site, as above.
shared::ResupplyInput resupply_input(HubState& hub, const std::string& site_id, std::int64_t now_ms);

// Reviews one site inside the caller's transaction: ships what is due, with
// its directive, audited. Never throws for a shortage: see SiteReview::problem.
SiteReview review_site(HubState& hub, const std::string& site_id, const std::string& actor, std::int64_t now_ms);

// The site of an active node, reviewed after its sync (inside the pull's
// transaction). Nothing for a site not yet activated.
void review_after_sync(HubState& hub, const std::string& node_id, std::int64_t now_ms);

// Reviews every active site (or only `site`), each in a transaction of its
// own. not_found for a site the study does not have; conflict for a site not
// yet activated.
shared::Result<std::vector<SiteReview>> run_resupply(HubState& hub, const std::optional<std::string>& site,
                                                      const std::string& actor, std::int64_t now_ms);

// One line per site for a reader: what was shipped or why not, counts only
// (never a kit type, which can name an arm).
std::string describe(const SiteReview& r);

// `irt-hub serve`'s schedule: every `interval`, from a thread of its own
// with its own HubState (the study refreshed first), run_resupply over every
// active site as "hub". A failure is logged to standard error and retried at
// the next interval. The destructor stops and joins the thread.
class ResupplySchedule {
 public:
  ResupplySchedule(std::unique_ptr<HubState> hub, std::chrono::milliseconds interval);
  ~ResupplySchedule();
  ResupplySchedule(const ResupplySchedule&) = delete;
  ResupplySchedule& operator=(const ResupplySchedule&) = delete;

 private:
  void run();
  std::unique_ptr<HubState> hub_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace irt::hub
