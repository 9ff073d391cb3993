// The hub's tuning constants in one place: grant sizes, how long tokens,
// certificates and a waiting push last, what init generates, and the sync
// server's limits. What one sync request carries, and the pull's clock skew
// and default limit, are in sync/tuning.h; field sizes in sync/field_limits.h.
// Thread-safety: constants.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "sync/tuning.h"

namespace irt::hub {

// ---- Grants (hub/grants.h). A node gets participant numbers kNumbersPerRange
// at a time; its slot and allowance targets follow from its site's estimated
// rate (hub/forecast.h), whose prior is kNodeForecastPerDay participants per day
// when the study states no expected rate; a top-up is due when what is left
// falls below target / kTopUpDivisor.
inline constexpr std::uint32_t kNumbersPerRange = 100;
inline constexpr double kNodeForecastPerDay = 0.5;
inline constexpr std::size_t kTopUpDivisor = 2;

// ---- Leases (hub/leases.h): a pull renews a node's lease when the renewal
// moves its end by at least this much, so a node syncing every few minutes
// gets one lease directive an hour; the lease may thus end up to this much
// before offline_days after the node's last sync, never after.
inline constexpr std::int64_t kLeaseRenewStepMs = 3600LL * 1000;

// ---- What `irt-hub init` generates (hub/randomization_store.h,
// hub/kit_inventory.h). Slots per stratum: generous for a site-stratified study
// (a site rarely randomizes 500 participants in one stratum); when a stratum's
// list runs out, grants stop with a clear message instead of improvising.
inline constexpr std::size_t kSlotsPerStratum = 500;
inline constexpr int kLots = 3;
inline constexpr int kShelfLifeDays = 730;      // two years from init for the first lot
inline constexpr int kLotExpiryStepDays = 91;   // each later lot keeps about three months longer
inline constexpr int kKitsPerSiteMultiple = 5;  // kits made per served site, in initial shipments' worth

// ---- Live resupply (hub/resupply_runner.h): `irt-hub serve` reviews every
// active site this often unless --resupply-every says otherwise.
inline constexpr long kResupplyEverySeconds = 3600;

// ---- Enrollment (hub/enrollment.h): a token is valid 72 hours unless
// `irt-hub invite --expires-hours` says otherwise (at most 30 days); a node's
// certificate two years. A device description is at most 200 bytes.
inline constexpr std::int64_t kTokenValidityMs = 72LL * 3600 * 1000;
inline constexpr std::int64_t kMaxTokenValidityHours = 24 * 30;
inline constexpr std::int64_t kCertificateValidityMs = 2LL * 365 * 24 * 3600 * 1000;
inline constexpr std::size_t kMaxDeviceLength = 200;

// ---- Push ordering (hub/push_order.h): a push that arrived ahead of its
// predecessor waits while an earlier push of the same node is in progress,
// and kPredecessorGrace for one still on the wire; never past kPredecessorLimit.
inline constexpr std::chrono::milliseconds kPredecessorGrace{1000};
inline constexpr std::chrono::milliseconds kPredecessorLimit{30000};

// ---- Consumption (hub/consumption.h): events read from the ledger per step
// when a node's consumption catches up.
inline constexpr std::size_t kConsumptionChunk = 500;

// ---- The sync server (hub/sync_server.h): a connection silent for 30 s
// while reading a request or writing an answer is dropped (the node's own
// timeout is the same, sync/tuning.h); a request body may be a full batch plus
// room for its framing.
inline constexpr int kSyncServerTimeoutSeconds = 30;
inline constexpr std::size_t kMaxSyncRequestBody = sync::kMaxBatchBytes + 64 * 1024;
// A source address whose sync requests failed authentication this many times
// in one minute (a forged push, a stranger's certificate) is answered 429
// rate_limited until the minute ends, before any signature is checked.
inline constexpr int kRefusedSyncRequestsPerMinute = 30;
inline constexpr std::int64_t kRefusedSyncWindowMs = 60 * 1000;

// ---- The API (hub/api_server.h, hub/sessions.h). A session's idle time is
// the study's session_idle_minutes (docs/study-config.md); its last use is
// written at most every kSessionTouchMs, so reads do not all queue for the
// database's writer (a session may thus end up to that much early). A request
// body is at most kMaxApiRequestBody: the largest one (a user's sites) is far smaller.
inline constexpr std::int64_t kSessionTouchMs = 10 * 1000;
// A session's lifetime and its wrong e-signatures: shared/sign_in_guard.h.
inline constexpr std::size_t kMaxApiRequestBody = 64 * 1024;

// ---- EDC webhooks (hub/webhooks.h). A failed delivery is retried after a
// delay drawn uniformly between 0 and kWebhookRetryFirstMs doubled at each
// failure, at most kWebhookRetryCapMs (full jitter: receivers that fail
// together do not all get their retries at the same moment); an attempt
// gives up after kWebhookTimeoutSeconds of silence (connect, each read and
// write), so a stalled receiver cannot hold the worker. The worker looks for
// due deliveries every kWebhookPollMs, and claims one for kWebhookClaimMs past
// its timeout so another serve process on the same database leaves it alone.
inline constexpr std::int64_t kWebhookRetryFirstMs = 1000;
inline constexpr std::int64_t kWebhookRetryCapMs = 10 * 60 * 1000;
inline constexpr int kWebhookTimeoutSeconds = 10;
inline constexpr std::int64_t kWebhookPollMs = 500;
inline constexpr std::int64_t kWebhookClaimMs = 5000;
inline constexpr std::size_t kMaxWebhookSecretBytes = 1024;

}  // namespace irt::hub
