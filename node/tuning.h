// The node's tuning constants in one place: its local API's limits and
// session time, how long it remembers an Idempotency-Key, the rhythm of its
// background sync, and how it slows down passphrase guessing. What one sync
// request carries and how long it waits for the hub are in sync/tuning.h;
// the sizes of request fields in sync/field_limits.h.
// Thread-safety: constants.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace irt::node {

// ---- The local API (node/api_server.h, node/sessions.h).
// A session ends after 15 idle minutes (`irt-node serve --session-idle`
// sets another time); every authenticated request but the status poll
// restarts its timer.
inline constexpr std::int64_t kSessionIdleMs = 15 * 60 * 1000;
// A session's lifetime and its wrong e-signatures: shared/sign_in_guard.h.
// The largest request body the API reads (a 413 beyond). Well above what any
// request within the field limits needs, so an over-long field is refused by
// name (check_request_fields) rather than as an oversized body.
inline constexpr std::size_t kMaxRequestBody = 1 << 20;
// Requests served on one kept-alive connection before the server closes it.
inline constexpr std::size_t kKeepAliveRequests = 1000;

// ---- Idempotency-Key (node/request_memory.h): an answered request is
// remembered for a day, long enough for any retry after a lost answer; keys
// are 1 to 128 printable characters (a UUID or 32 hex digits fit).
inline constexpr std::int64_t kIdempotencyKeepMs = 24LL * 60 * 60 * 1000;
inline constexpr std::size_t kMaxIdempotencyKeyLength = 128;

// ---- Background sync (node/sync_service.h): a round every 30 s while online;
// after a failure the delay doubles from 1 s up to 5 minutes (with jitter).
inline constexpr std::chrono::milliseconds kSyncInterval{30'000};
inline constexpr std::chrono::milliseconds kSyncBackoffMin{1'000};
inline constexpr std::chrono::milliseconds kSyncBackoffMax{300'000};
// How often `irt-node serve` looks for a commit by another process (irt-node
// note) to sync it at once.
inline constexpr std::chrono::milliseconds kCommitPollInterval{200};

// ---- Unlocking (node/node_state.h): after kUnlockFreeAttempts consecutive
// wrong passphrases each further attempt waits 1 s, 2 s, 4 s ... up to
// kUnlockMaxWaitSeconds.
inline constexpr int kUnlockFreeAttempts = 3;
inline constexpr int kUnlockMaxWaitSeconds = 30;

}  // namespace irt::node
