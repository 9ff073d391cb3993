// The sync protocol between nodes and the hub, under /sync/v1 (HTTP/1.1 over
// TLS, or plain HTTP on loopback for tests and the demo). docs/sync-protocol.md
// documents it byte for byte; this header holds the names both sides share.
//
//   POST /sync/v1/enroll      JSON {"token","node_public_key"(hex),"device"}
//                             -> 200 JSON {"node_id","site_id","kind","certificate"(base64),
//                                          "hub_public_key"(hex),"hub_unblinding_key"(hex),
//                                          "study_id","ledger_origin"}
//   POST /sync/v1/push        header X-IRT-Certificate: base64(certificate record),
//                             header X-IRT-Time: the node's clock in ms since the epoch,
//                             header X-IRT-Signature: base64(Ed25519(node key,
//                               request_signing_text("irt/push/v1\n", time, body)))
//                             body: batch of event records (sync/batch.h), contiguous seqs
//                             -> 200 JSON {"acked_seq","appended","already_recorded","receipt"}
//   POST /sync/v1/pull        header X-IRT-Certificate, header X-IRT-Signature:
//                             base64(Ed25519(node key, "irt/pull/v1\n" || body))
//                             body JSON {"node_id","after","time_ms","clock_ms","limit"}
//                             -> 200 body: batch of directive records (seq > after, ascending)
//   GET  /sync/v1/checkpoint  -> 200 text/plain: the latest signed tree head (sync/checkpoint.h)
//   GET  /sync/v1/proof?node=ID&seq=N -> 200 JSON receipt (below); for the node's own
//                             events only: X-IRT-Certificate, X-IRT-Time and X-IRT-Signature
//                             as a push's, over request_signing_text("irt/proof/v1\n", time,
//                             "node=ID&seq=N")
//
// Every refusal is a 4xx/5xx with JSON {"error":{"code","message",...}}; the
// codes below are stable and tests match on them. A receipt:
//   {"node_id","seq","leaf_index","tree_size","proof":[base64 hash...],"checkpoint": text}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/hash.h"
#include "shared/result.h"

namespace irt::sync {

inline constexpr const char* kEnrollPath = "/sync/v1/enroll";
inline constexpr const char* kPushPath = "/sync/v1/push";
inline constexpr const char* kPullPath = "/sync/v1/pull";
inline constexpr const char* kCheckpointPath = "/sync/v1/checkpoint";
inline constexpr const char* kProofPath = "/sync/v1/proof";

inline constexpr const char* kCertificateHeader = "X-IRT-Certificate";
inline constexpr const char* kSignatureHeader = "X-IRT-Signature";
inline constexpr const char* kPullDomain = "irt/pull/v1\n";
inline constexpr const char* kTimeHeader = "X-IRT-Time";
inline constexpr const char* kPushDomain = "irt/push/v1\n";
inline constexpr const char* kProofDomain = "irt/proof/v1\n";
// On every /sync/v1 answer, refusals included: the hub's clock in ms since the
// epoch. A node times its requests by it (its own clock plus the offset the
// last answer showed), so a tablet whose clock is days off still syncs; the
// hub measures the skew from the device's own clock, which a pull also carries
// (docs/sync-protocol.md, "Clocks").
inline constexpr const char* kHubTimeHeader = "X-IRT-Hub-Time";

// What a push or a proof request signs: domain || decimal time_ms || "\n" ||
// hex(BLAKE2b-256 under domain "irt/request/v1" of the content). The time
// bounds a replay to kPullClockSkewMs; a replayed push re-sends records the
// hub already holds, which it answers as already recorded.
std::string request_signing_text(std::string_view domain, std::int64_t time_ms, std::string_view content);
inline constexpr const char* kCheckpointKeyName = "irt-hub";

// Error codes carried in {"error":{"code":...}} by /sync/v1 refusals.
namespace wire_error {
inline constexpr const char* kBadRequest = "bad_request";            // 400: malformed body or batch
inline constexpr const char* kTokenInvalid = "token_invalid";        // 401: unknown, used or expired token
inline constexpr const char* kCertificate = "certificate_invalid";   // 401: not signed by this hub, expired
inline constexpr const char* kWrongNode = "wrong_node";              // 401: events or request of another node
inline constexpr const char* kRevoked = "node_revoked";              // 403: the node was revoked
inline constexpr const char* kFrozen = "node_frozen";                // 403: grants frozen after equivocation
inline constexpr const char* kGap = "sequence_gap";                  // 409: carries "expected_seq"
inline constexpr const char* kEquivocation = "equivocation";         // 409: same seq, different event
inline constexpr const char* kBadSignature = "bad_signature";        // 422: an event's signature fails
inline constexpr const char* kBrokenChain = "broken_chain";          // 422: prev_hash does not link
inline constexpr const char* kRequestSignature = "request_signature";// 401: request signature fails
inline constexpr const char* kNotFound = "not_found";                // 404
inline constexpr const char* kRateLimited = "rate_limited";          // 429: too many refused requests from this source
inline constexpr const char* kClockSkew = "clock_skew";              // 400: the request's time is a day or more from the hub's
inline constexpr const char* kUnavailable = "unavailable";           // 503: the hub's disk is full or read-only
inline constexpr const char* kInternal = "internal";                 // 500
}  // namespace wire_error

struct Receipt {
  std::string node_id;
  std::uint64_t seq = 0;
  std::uint64_t leaf_index = 0;
  std::uint64_t tree_size = 0;
  std::vector<crypto::Hash> proof;
  std::string checkpoint;
};

std::string receipt_to_json(const Receipt& r);
// invalid_input naming the field when the text is not a receipt ("malformed
// receipt: proof[2]: not 32 bytes of base64"); says nothing of whether it proves anything.
shared::Result<Receipt> receipt_from_json(const std::string& json);

}  // namespace irt::sync
