// The sync library's tuning constants in one place: how long the node waits
// for the hub, and how much one request may carry. Field sizes are in
// sync/field_limits.h, next to the derivation that ties them to kMaxPayload;
// the hub's and the node's own constants in hub/tuning.h and node/tuning.h.
// Thread-safety: constants.
#pragma once

#include <cstddef>
#include <cstdint>

namespace irt::sync {

// ---- Timeouts of the node's requests to the hub (sync/transport.h).
// For a node on a mobile link (a tablet on 3G, a clinic's guest Wi-Fi, a
// captive portal that accepts connections and never answers). A TCP handshake
// not done in 10 s is not coming (the first SYN retransmissions of a lossy
// link fit in it). Once connected, 30 s with no byte in either direction
// means the link has stalled: the hub answers a full push batch (2000 events)
// in well under a second, and the timeout counts silence, not transfer time,
// so a slow but moving 4 MiB batch is not cut off. A stalled round then fails
// as unavailable and is retried with backoff, resending nothing the hub
// acknowledged; nobody using the node waits on it, since no lock is held
// across network I/O (sync/agent.h).
inline constexpr int kHubConnectTimeoutSeconds = 10;
inline constexpr int kHubReadTimeoutSeconds = 30;

// ---- A batch (sync/batch.h), on both sides: the most records and bytes one
// push request or pull answer carries. The hub refuses a larger push.
inline constexpr std::size_t kMaxBatchRecords = 2000;
inline constexpr std::size_t kMaxBatchBytes = 8 << 20;

// ---- What the node's sync agent asks for (sync/agent.h, AgentLimits): a push
// batch stops at whichever limit comes first (the byte limit well under the
// hub's, so that a batch with one more large record is still accepted), and a
// pull asks for at most kPullLimit directives per request, looping until fewer
// come.
inline constexpr std::size_t kPushBatchEvents = kMaxBatchRecords;
inline constexpr std::size_t kPushBatchBytes = 4 << 20;
inline constexpr std::size_t kPullLimit = 200;
static_assert(kPushBatchBytes <= kMaxBatchBytes && kPullLimit <= kMaxBatchRecords);

// ---- The hub's answer to a pull (sync/ledger.h, authenticate_pull). A pull
// carries the node's clock; a request further off than kPullClockSkewMs is
// refused so a recorded request cannot be replayed indefinitely, while a
// tablet whose clock drifted a few hours still syncs. A pull that names no
// limit gets at most kDefaultPullLimit directives.
inline constexpr std::int64_t kPullClockSkewMs = 24LL * 3600 * 1000;
// The node times its requests by the hub's clock (its own plus the offset the
// hub's last answer showed: a tablet days off still syncs) and keeps that
// offset; it rewrites it only when it moved by more than this, so network
// delay does not cost a write per answer.
inline constexpr std::int64_t kHubClockOffsetSlackMs = 60 * 1000;
inline constexpr std::size_t kDefaultPullLimit = 500;

}  // namespace irt::sync
