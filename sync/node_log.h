// The node's own copy of its signed, hash-chained log, its applied hub
// directives, its cursors and its receipts, in the node's SQLite file.
//
// At rest every record is AEAD-encrypted (XChaCha20-Poly1305) under the node's
// data key with the row's identity as associated data ("irt/node/event/<seq>",
// ...), so rows cannot be swapped, edited or read without the key. Hashes are
// stored in clear: they reveal nothing and let appends chain without
// decrypting. Secrets and state derived from directives go through put_sealed /
// get_sealed under the same rule.
//
// The chain head (the last event's sequence and hash) is sealed beside the log
// and rewritten in the same transaction as every append, so deleting events
// from the end of the log (which needs no key) is detected: check_end() and
// verify() compare the log's last row with the head. A database written
// before the head existed gets it on first open (migration 2), from its log as
// it is then; and, like any copy of a file, a whole older database put back in
// place is only caught by the hub, which holds every event it acknowledged.
//
// Durability: append() runs inside the caller's Transaction, so an event is
// committed atomically with the state change it records, and that transaction
// is durable (synchronous=FULL) before anything is acknowledged to a user.
// Thread-safety: one NodeLog per connection, used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "crypto/aead.h"
#include "crypto/sign.h"
#include "shared/result.h"
#include "storage/database.h"
#include "sync/directive.h"
#include "sync/event.h"
#include "sync/hlc.h"
#include "sync/protocol.h"

namespace irt::sync {

class NodeLog {
 public:
  // Creates the tables if needed (migrations "node_log").
  static shared::Result<NodeLog> open(storage::Database& db, const crypto::AeadKey& data_key, std::string node_id,
                                      WallClock wall = system_millis);

  const std::string& node_id() const { return node_id_; }
  storage::Database& database() { return *db_; }

  // Appends a signed event as the next in the chain. Call inside a Transaction.
  // Refuses (invalid_input, nothing written) an event larger than the hub
  // accepts (check_event_limits): the hub would refuse every push from then on.
  shared::Result<SignedEvent> append(const crypto::SigningKey& key, const std::string& actor, const std::string& type,
                                     const Bytes& payload);

  std::uint64_t last_seq();
  std::uint64_t acked_seq();
  // Events the hub has not acknowledged yet. Never wraps: when the
  // acknowledged cursor is ahead of the log's end it is 0, and check_end()
  // names that damage.
  std::uint64_t pending_events();
  std::uint64_t applied_directive_seq();
  std::uint64_t last_hlc();

  // Events with seq > after, in order, at most max_count and about max_bytes.
  std::vector<Bytes> records_after(std::uint64_t after, std::size_t max_count, std::size_t max_bytes);
  shared::Result<Bytes> record(std::uint64_t seq);  // fails if the stored row does not authenticate

  // Moves the acknowledged cursor (inside a Transaction) and keeps the receipt.
  void set_acked(std::uint64_t seq, const std::optional<Receipt>& receipt);
  // None when no receipt was kept for seq; integrity when the kept one does not authenticate.
  shared::Result<std::optional<Receipt>> receipt(std::uint64_t seq);

  // Applies one directive exactly once: skips it if already applied; refuses
  // it if out of order; otherwise runs `apply`, stores the directive, records
  // a "directive.applied" event and moves the cursor, all in one transaction.
  using Applier = std::function<shared::Status(const SignedDirective&)>;
  shared::Status apply_directive(const SignedDirective& d, const crypto::SigningKey& key, const Applier& apply);

  // The HLC moves past every hub timestamp seen, and hub_time_seen_ms() to it.
  void observe_hub_time(std::uint64_t hlc);
  // The latest time the hub signed that this node has seen (a directive's HLC),
  // in ms since the epoch; 0 before the first. A floor under the device's
  // clock for expiry and visit windows (docs/sync-protocol.md, "Clocks").
  std::int64_t hub_time_seen_ms();

  // The hub's clock minus this device's, from the hub's last answer
  // (kHubTimeHeader); 0 until the hub has answered. Outside a transaction is fine.
  std::int64_t hub_clock_offset_ms();
  void set_hub_clock_offset_ms(std::int64_t offset_ms);

  // Small encrypted key-value store for state derived from directives.
  // get_sealed: none when the key was never written (or was erased);
  // integrity, naming the key, when the stored value does not authenticate.
  void put_sealed(const std::string& key, const Bytes& value);
  shared::Result<std::optional<Bytes>> get_sealed(const std::string& key);
  void erase_sealed(const std::string& key);

  // Re-checks the whole log: every row authenticates, seqs run 1..n with no
  // gap, each prev_hash is the previous event's hash, each stored hash is the
  // record's hash, every signature verifies under `node_key`. Returns the first
  // problem, naming the event and the likely cause ("event 5: signature does
  // not verify; the record was altered or damaged after it was written: ...").
  // This node only ever stores records it signed within the hub's limits, so
  // a row that fails any check was altered after it was written; the one other
  // finding is an intact record, signed by this node, that is larger than the
  // hub accepts (written by a version without those limits).
  // Finally check_end().
  shared::Status verify(const crypto::PublicKey& node_key);

  // The log's end without decrypting it: the last row is exactly the sealed
  // head (sequence and hash), and the hub has not acknowledged beyond it.
  // ("the log ends at event 7 but its sealed head says 9: events were deleted; ...")
  shared::Status check_end();

 private:
  NodeLog(storage::Database& db, const crypto::AeadKey& key, std::string node_id, WallClock wall)
      : db_(&db), key_(&key), node_id_(std::move(node_id)), wall_(std::move(wall)) {}
  struct Head {
    std::uint64_t seq = 0;  // 0: the log is empty
    crypto::Hash hash;
  };
  Head last_row();
  void seal_head(const Head& head);
  std::uint64_t cursor(const char* name);
  void set_cursor(const char* name, std::uint64_t value);

  storage::Database* db_;
  const crypto::AeadKey* key_;
  std::string node_id_;
  WallClock wall_;
};

}  // namespace irt::sync
