// The hub's central ledger: every event accepted from every node, each node's
// hash chain, one RFC 6962 Merkle tree over all accepted event records, the
// signed tree heads (C2SP checkpoints) and the evidence and alerts raised when a
// node sends something that must not be accepted.
//
// Who calls it: the hub's sync server (ingest, receipts, checkpoints), its
// enrollment (register_node), and the irt-hub commands (revoke, unfreeze,
// nodes, alerts, verify). This class owns every ledger_* table and all of
// their SQL, so a PostgreSQL backend can later replace this one class.
//
// Ingest (docs/sync-protocol.md, "Push"): the certificate is checked against
// the hub key and the enrolled node; every event must belong to that node, be
// contiguous, verify under the node's enrolled key (in parallel on a
// VerifyPool) and link to the previous event by prev_hash. A whole batch is
// appended in ONE transaction that also advances the Merkle frontier, the
// node's acknowledged seq and a freshly signed checkpoint, so an event is
// acknowledged only after its durable commit and a crash leaves either all of
// the batch or none of it. Re-sending events already recorded with the same
// hash is acknowledged again and appends nothing. A refused push changes
// nothing, except that evidence and an alert are committed (in their own
// transaction) for a bad signature, a broken chain, or an equivocation, which
// also freezes the node.
//
// Merkle leaves: leaf i = SHA-256(0x00 || the exact event record), in the order
// the hub appended them. Proofs are computed from an in-memory copy of the leaf
// hashes with cached perfect-subtree hashes (O(log^2 n) per proof), reloaded
// from the database whenever it falls behind.
//
// Thread-safety: one thread at a time (like the storage::Database it uses);
// the sync server serialises calls. Several processes may share the database
// (the CLI revokes while the server runs; several `irt-hub serve` on one
// PostgreSQL): storage::Transaction admits one writer at a time across them
// (BEGIN IMMEDIATE; an advisory lock on PostgreSQL), and append re-reads the
// node and the Merkle frontier inside its transaction, so appends from two
// processes extend one tree, each signing its tree head before it commits.
// The proof cache is this process's: it reloads whatever another appended.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/sign.h"
#include "shared/result.h"
#include "storage/database.h"
#include "sync/certificate.h"
#include "sync/checkpoint.h"
#include "sync/event.h"
#include "sync/protocol.h"
#include "sync/refusal.h"
#include "sync/tuning.h"  // kPullClockSkewMs, kDefaultPullLimit
#include "sync/verify_pool.h"

namespace irt::sync {

enum class NodeStatus { active, frozen, revoked };
const char* to_string(NodeStatus s);

struct LedgerNode {
  std::string node_id;
  std::string site_id;
  std::string kind;  // "site" or "nurse"
  crypto::PublicKey public_key;
  std::uint64_t certificate_serial = 0;
  crypto::Bytes certificate;  // the exact signed record issued at enrollment
  NodeStatus status = NodeStatus::active;
  std::string status_reason;  // why it was revoked or frozen
  std::int64_t status_changed_ms = 0;
  std::int64_t enrolled_ms = 0;
  std::uint64_t acked_seq = 0;  // the last event durably recorded
  crypto::Hash acked_hash;      // its hash; 32 zero bytes before the first
};

struct PushAck {
  std::uint64_t acked_seq = 0;
  std::uint64_t appended = 0;
  std::uint64_t already_recorded = 0;
  std::optional<Receipt> receipt;  // for the last event of the batch; none for an empty batch
};

// A push's records after check_batch: parsed, in order, with their leaves.
struct CheckedBatch {
  std::vector<SignedEvent> events;
  std::vector<crypto::Hash> leaves;
  std::optional<std::size_t> bad_signature;  // index of the first event whose signature fails
};

struct Alert {
  std::int64_t id = 0;
  std::string kind;  // "equivocation", "bad_signature", "broken_chain"
  std::string node_id;
  std::optional<std::uint64_t> seq;
  std::string message;
  std::int64_t created_ms = 0;
  std::optional<std::string> resolved_by;
  std::optional<std::int64_t> resolved_ms;
  std::optional<std::string> resolution;
};

struct Evidence {
  std::int64_t id = 0;
  std::string node_id;
  std::uint64_t seq = 0;
  std::string reason;  // "equivocation.recorded", "equivocation.received", "bad_signature", "broken_chain"
  crypto::Bytes record;
  std::int64_t received_ms = 0;
  std::optional<std::int64_t> alert_id;
};

// A change of state the hub must put in its audit trail. The ledger calls the
// observer inside its own transaction, with the same database connection, so
// the audit row commits or rolls back with the change it describes.
struct LedgerChange {
  std::int64_t at_ms = 0;
  std::string actor;   // "hub" for what ingest decided, else the admin's name
  std::string action;  // "alert.raised", "node.frozen", "node.revoked", "node.unfrozen"
  std::string subject; // the node id
  std::string reason;
  std::string old_value;
  std::string new_value;
  std::string signature;  // the meaning of the actor's e-signature ("approved"); empty when unsigned
};
using ChangeObserver = std::function<void(const LedgerChange&)>;

// What the hub does with a node's events once they are appended (it records
// what they consumed: hub/ingest.h). Ledger::append calls it inside the
// append's transaction, before the commit, with the events just appended, in
// seq order. It must contain its own failures (a savepoint of its own, say):
// an exception escaping it rolls the whole batch back and fails the push.
class AppendObserver {
 public:
  virtual ~AppendObserver() = default;
  virtual void appended(const LedgerNode& node, const std::vector<SignedEvent>& events, std::int64_t now_ms) = 0;
  // An equivocation was caught in the push: called inside the transaction
  // that keeps its evidence and freezes the node, before the commit, with the
  // seq both events claim. The same containment rule applies.
  virtual void equivocation(const LedgerNode& node, std::uint64_t seq, const std::string& message,
                            std::int64_t now_ms) {
    (void)node, (void)seq, (void)message, (void)now_ms;
  }
};

// A pull that passed authenticate_pull: who asks, and for what.
struct PullRequest {
  LedgerNode node;
  std::uint64_t after = 0;  // directives with seq > after
  std::size_t limit = 0;    // at most this many, within [1, kMaxBatchRecords]
  // When the node signed the request, by the hub's clock as the node last
  // learned it (its own clock plus that offset), if it sent one.
  std::optional<std::int64_t> time_ms;
  std::optional<std::int64_t> clock_ms;  // the node's own clock then, if it sent it: the skew the hub shows
};

struct VerifyReport {
  std::uint64_t nodes = 0;
  std::uint64_t events = 0;
  std::uint64_t tree_size = 0;
  crypto::Hash root;
  std::uint64_t checkpoints = 0;
};

class Ledger {
 public:
  struct Options {
    unsigned verify_threads = 0;  // 0: one per core
  };

  // Brings the ledger schema up to date and signs the first (empty) checkpoint
  // when there is none. `origin` is "irt.hub/<study id>".
  static shared::Result<std::unique_ptr<Ledger>> open(storage::Database& db, const crypto::SigningKey& hub_key,
                                                      std::string origin, Options options);
  static shared::Result<std::unique_ptr<Ledger>> open(storage::Database& db, const crypto::SigningKey& hub_key,
                                                      std::string origin) {
    return open(db, hub_key, std::move(origin), Options{});
  }
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  void set_observer(ChangeObserver observer) { observer_ = std::move(observer); }
  const std::string& origin() const { return origin_; }

  // --- Enrollment. Both run inside a transaction the caller holds, so the
  // node, its token and its first directives commit together.
  std::string next_node_id(const std::string& site_id);  // "101-N1", "101-N2", ...
  std::uint64_t next_certificate_serial();
  void register_node(const NodeCertificate& cert, std::int64_t now_ms);

  std::optional<LedgerNode> find_node(const std::string& node_id);
  bool key_enrolled(const crypto::PublicKey& key);
  std::vector<LedgerNode> nodes();

  // Checks a presented certificate: signed by this hub, within its validity,
  // of an enrolled node, with the enrolled key. Revoked and frozen nodes pass
  // here; callers decide (push refuses both, pull refuses revoked only).
  Refusable<LedgerNode> authenticate(crypto::ByteView certificate_record, std::int64_t now_ms);

  // --- Pull (docs/sync-protocol.md, "Pull"): authenticate, then refuses a
  // revoked node (a frozen one still receives directives), a request whose
  // signature (X-IRT-Signature, over kPullDomain followed by the exact body)
  // is missing or does not verify under the node's enrolled key, a body that
  // is not {"node_id","after","time_ms"?,"clock_ms"?,"limit"?}, a body naming
  // another node, and a time_ms further than kPullClockSkewMs from `now_ms`
  // (wire_error::kClockSkew).
  // `signature` is the decoded header, nullopt when absent or not base64.
  Refusable<PullRequest> authenticate_pull(crypto::ByteView certificate_record,
                                           const std::optional<crypto::Bytes>& signature, std::string_view body,
                                           std::int64_t now_ms);

  // --- A push or a proof request (docs/sync-protocol.md): authenticate, then
  // refuses a request whose X-IRT-Signature does not verify under the node's
  // enrolled key over request_signing_text(domain, time_ms, content), or whose
  // time is missing or further than kPullClockSkewMs from `now_ms`
  // (wire_error::kClockSkew, after the signature is checked). A refusal
  // here blames no node: whoever asked did not prove they hold its key.
  // `signature` is the decoded header, nullopt when absent or not base64;
  // `time_ms` the X-IRT-Time header's text.
  Refusable<LedgerNode> authenticate_request(crypto::ByteView certificate_record, std::string_view domain,
                                             const std::optional<crypto::Bytes>& signature, std::string_view time_ms,
                                             std::string_view content, std::int64_t now_ms);

  // --- Push: authenticate, check_batch, append.
  Refusable<PushAck> ingest(crypto::ByteView certificate_record, const std::vector<crypto::Bytes>& records,
                            std::int64_t now_ms);
  // authenticate, then refuses a revoked or frozen node.
  Refusable<LedgerNode> authenticate_pusher(crypto::ByteView certificate_record, std::int64_t now_ms);
  // The refusal of a push by a revoked or frozen node, if it is one.
  static std::optional<Refusal> refuse_pusher(const LedgerNode& node);
  // The expensive half, which touches no database: parses every record,
  // checks it belongs to `node` and its signature under the node's key, and
  // computes its Merkle leaf, on the verify pool. Safe to call from several
  // threads at once, without the lock that serialises the rest.
  Refusable<CheckedBatch> check_batch(const LedgerNode& node, const std::vector<crypto::Bytes>& records);
  // The database half, in one transaction: re-reads the node (status, acked
  // seq), keeps evidence of a bad signature, refuses a gap, acknowledges what
  // is already recorded, catches equivocation and broken chains, appends the
  // rest with the Merkle frontier, the node's cursor and a signed checkpoint.
  // `observer`, when given, is told of the events just appended inside that
  // transaction, before the commit (see AppendObserver).
  Refusable<PushAck> append(const LedgerNode& node, CheckedBatch batch, std::int64_t now_ms,
                            AppendObserver* observer = nullptr);
  // The last event durably recorded for a node (0 before any), or nullopt for an unknown node.
  std::optional<std::uint64_t> acked_seq(const std::string& node_id);

  // --- Receipts and tree heads.
  // Where each checkpoint signed from now on reads the hub's audit head, to
  // commit to it (sync/checkpoint.h AuditHead); none: no audit head line.
  void set_audit_head_source(std::function<AuditHead()> source) { audit_head_ = std::move(source); }
  std::string latest_checkpoint();
  // Every stored checkpoint's signed text, by tree size ascending.
  std::vector<std::string> checkpoint_texts();
  std::uint64_t tree_size();
  // not_found when the hub holds no event (node_id, seq).
  shared::Result<Receipt> receipt(const std::string& node_id, std::uint64_t seq);

  // --- Admin decisions (audited through the observer).
  // `also` runs inside the revocation's transaction, before it commits (the
  // hub voids what the node held); an exception from it rolls everything back.
  // `signature`: the meaning of the actor's e-signature, kept in the audit
  // entry (hub/node_decisions.h checks it before calling).
  shared::Status revoke(const std::string& node_id, const std::string& reason, const std::string& actor,
                        std::int64_t now_ms, const std::function<void()>& also = {},
                        const std::string& signature = "");
  // After an equivocation: the node may push again; its open alerts are resolved with `reason`.
  // `also` runs inside the same transaction, before it commits, as for revoke.
  shared::Status unfreeze(const std::string& node_id, const std::string& reason, const std::string& actor,
                          std::int64_t now_ms, const std::string& signature = "",
                          const std::function<void()>& also = {});

  std::vector<Alert> alerts(bool open_only);
  // Raises an alert about an accepted event (a deviation found after ingest),
  // inside a transaction the caller holds; one open alert per (kind, node,
  // seq). Returns the alert id.
  std::int64_t raise_alert(const std::string& node_id, std::uint64_t seq, const std::string& kind,
                           const std::string& message, std::int64_t now_ms);

  // Raises an alert about a node rather than one event (a push refused for a
  // reason retrying cannot fix), inside a transaction the caller holds: one
  // open alert per (kind, node), whatever `seq` it names, so a node that
  // retries the same refused push every few minutes raises it once. Returns
  // the alert id.
  std::int64_t raise_node_alert(const std::string& node_id, const std::string& kind, std::optional<std::uint64_t> seq,
                                const std::string& message, std::int64_t now_ms);

  // The exact records of a node's accepted events with seq > after_seq, in
  // seq order, at most `limit`.
  std::vector<crypto::Bytes> records_after(const std::string& node_id, std::uint64_t after_seq, std::size_t limit);
  std::vector<Evidence> evidence(const std::string& node_id);
  // Keeps `record`, the node's event `seq`, as evidence for `reason` without
  // appending it (a revoked node's events: docs/operations.md, "The lost
  // tablet"), inside a transaction the caller holds; the same record kept
  // again adds nothing.
  void keep_evidence(const std::string& node_id, std::uint64_t seq, const std::string& reason,
                     const crypto::Bytes& record, std::int64_t now_ms);

  // Re-checks everything from the stored bytes: each node's certificate, each
  // chain (seqs contiguous from 1, prev_hash links, every signature under the
  // enrolled key, stored hashes), the leaves against the events, the root
  // against the frontier, and every stored checkpoint (signature, and root of
  // the leaves at its size). Reports the first problem found, naming the node,
  // seq or leaf and what is wrong.
  shared::Result<VerifyReport> verify_all();

 private:
  class Tree;
  Ledger(storage::Database& db, const crypto::SigningKey& hub_key, std::string origin, Options options);

  void sync_tree();
  void record_problem(const LedgerNode& node, std::uint64_t seq, const std::string& kind, const std::string& message,
                      const std::vector<std::pair<std::string, crypto::Bytes>>& records, bool freeze,
                      std::int64_t now_ms);
  void notify(const LedgerChange& change);

  storage::Database& db_;
  const crypto::SigningKey& hub_key_;
  std::string origin_;
  VerifyPool pool_;
  std::unique_ptr<Tree> tree_;
  ChangeObserver observer_;
  std::function<AuditHead()> audit_head_;
};

}  // namespace irt::sync
