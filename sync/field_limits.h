// How large anything a node records may be: the one set of limits shared by
// the hub's ingest (parse_event), the node's log append (check_event_limits,
// sync/event.h) and the node's request validation (node/request_limits.h), so
// that no event a node can write is one the hub refuses.
//
// The hub refuses an event record whose node id or type exceeds kMaxIdLength
// bytes, whose actor exceeds kMaxActorLength bytes or whose payload exceeds
// kMaxPayload bytes. The node refuses, with a 400 naming the field, any
// request field over the field limits below; they are chosen so that the
// largest payload the node can build from maximal fields (derived below,
// checked by tests/sync/field_limits_test.cpp) stays well under kMaxPayload.
// Thread-safety: constants.
#pragma once

#include <cstddef>

namespace irt::sync {

// ---- An event record's fields, in bytes (sync/event.h).
inline constexpr std::size_t kMaxIdLength = 64;      // node id, event type
inline constexpr std::size_t kMaxActorLength = 128;  // the user who recorded the event
inline constexpr std::size_t kMaxPayload = 1 << 20;  // the JSON payload

// ---- A request's fields at the node, in characters (UTF-8 code points).
inline constexpr std::size_t kMaxTextChars = 2000;  // free text: reasons, notes, passwords
inline constexpr std::size_t kMaxIdChars = 64;      // ids: participant, kit, shipment, visit, site, factor, level, user
inline constexpr std::size_t kMaxListItems = 500;   // eligibility answers, factors, kits in one receipt

// ---- The derivation. A payload is JSON written by nlohmann::json: one
// character becomes at most 6 bytes (a control character is escaped as
// \u00XX; any other code point is at most 4 bytes of UTF-8). The payloads the
// node builds (node/site_operations.cpp, irt-node note) hold at most 3 free
// texts, 2 lists of at most kMaxListItems items of at most 2 ids each (plus
// 32 bytes of keys and punctuation per item), 32 further ids or id-sized
// values, and 4 KiB of keys, numbers, sealed arms and e-signature text.
inline constexpr std::size_t kMaxJsonBytesPerChar = 6;
inline constexpr std::size_t kWorstTextBytes = kMaxTextChars * kMaxJsonBytesPerChar;
inline constexpr std::size_t kWorstIdBytes = kMaxIdChars * kMaxJsonBytesPerChar;
inline constexpr std::size_t kWorstListItemBytes = 2 * kWorstIdBytes + 32;
inline constexpr std::size_t kWorstPayloadBytes =
    3 * kWorstTextBytes + 2 * kMaxListItems * kWorstListItemBytes + 32 * kWorstIdBytes + 4096;
static_assert(kWorstPayloadBytes < kMaxPayload, "request field limits allow an event the hub would refuse");

}  // namespace irt::sync
