// The node's memory of answered requests, for the API's optional
// Idempotency-Key header: a request retried on a bad link (the answer was
// lost, not the request) is applied once and answered the same way again.
//
// A request is remembered under (user, key) with its route and a hash of its
// body, and the answer the node gave. Only successful answers are remembered:
// a refused request changed nothing, so running it again is safe. Remembered
// requests are kept for kIdempotencyKeepMs (node/tuning.h, 24 hours) and then
// forgotten; a key repeated after that is a new request.
//
// Stored in the node's SQLite file (migrations "node_requests"): the row id is
// a BLAKE2b hash of user and key; route, body hash and answer are sealed under
// the node's data key with the row id as associated data, like every record.
// Durability: remember() writes inside the caller's storage::Transaction, the
// one that records the operation itself (SiteOperations::once), so a crash
// either keeps both or neither.
// Thread-safety: one thread at a time, like the connection it uses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "crypto/aead.h"
#include "crypto/hash.h"
#include "node/tuning.h"
#include "shared/result.h"
#include "storage/database.h"

namespace irt::node {

struct RequestIdentity {
  std::string user;
  std::string key;         // the client's Idempotency-Key
  std::string route;       // "POST /api/v1/participants/101-001/randomize"
  crypto::Hash body_hash;  // of the body's exact bytes
};

class RequestMemory {
 public:
  // Whether `key` is an acceptable Idempotency-Key: 1 to kMaxIdempotencyKeyLength
  // printable ASCII characters, no spaces (a UUID or 32 hex digits fit).
  static bool valid_key(const std::string& key);

  static shared::Result<RequestMemory> open(storage::Database& db, const crypto::AeadKey& data_key,
                                            std::string node_id);

  struct Remembered {
    std::string route;
    crypto::Hash body_hash;
    std::string answer;  // the JSON body answered
  };
  // The request remembered under (user, key) within kIdempotencyKeepMs of now_ms; an
  // integrity error if its row does not authenticate.
  shared::Result<std::optional<Remembered>> find(const std::string& user, const std::string& key,
                                                 std::int64_t now_ms);
  // Remembers an answered request (inside the caller's transaction) and
  // forgets those older than kIdempotencyKeepMs.
  void remember(const RequestIdentity& r, const std::string& answer, std::int64_t now_ms);

 private:
  RequestMemory(storage::Database& db, const crypto::AeadKey& key, std::string node_id)
      : db_(&db), key_(&key), node_id_(std::move(node_id)) {}
  crypto::Hash row_id(const std::string& user, const std::string& key) const;
  std::string ad(const crypto::Hash& id) const;

  storage::Database* db_;
  const crypto::AeadKey* key_;
  std::string node_id_;
};

}  // namespace irt::node
