// A node's data directory, opened with the operator's passphrase.
//
// DIR/node.db holds everything. Its clear-text metadata (node id, site, hub URL
// and keys, certificate) identifies no participant and no allocation. The data
// key is random, stored wrapped under Argon2id(passphrase) (crypto/key_wrap.h);
// the signing seed and every record are AEAD-encrypted under the data key.
// Without the passphrase the file reveals nothing that identifies a
// participant or an allocation (docs/architecture.md, "Trust").
//
// A wrong passphrase is refused; after three consecutive failures each further
// attempt waits longer (1 s, 2 s, 4 s ... up to 30 s: node/tuning.h), counted
// in DIR/unlock-failures.
//
// Thread-safety: a NodeState, its connection and its in-memory mirror are used
// by one thread at a time: whoever shares one between threads holds mutex()
// while using it, and never across network I/O or a password hash. sync_once
// takes mutex() itself, only around its reads and writes of the state, so it
// is called without holding it.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "crypto/aead.h"
#include "crypto/password.h"
#include "crypto/seal.h"
#include "crypto/sign.h"
#include "node/domain_store.h"
#include "node/request_memory.h"
#include "shared/result.h"
#include "storage/database.h"
#include "sync/agent.h"
#include "sync/node_log.h"

namespace irt::node {

// What the hub told the node at enrollment.
struct Enrollment {
  std::string node_id;
  std::string site_id;
  std::string kind;
  std::string study_id;
  std::string hub_url;
  std::string hub_fingerprint;
  crypto::Bytes certificate;
  crypto::PublicKey hub_key;
  crypto::BoxPublicKey hub_unblinding_key;
};

class NodeState {
 public:
  // The most memory SQLite's page cache of node.db may hold, in KiB.
  static constexpr int kPageCacheKiB = 1024;
  static std::filesystem::path database_path(const std::filesystem::path& dir) { return dir / "node.db"; }

  // Creates DIR/node.db (DIR must not hold a node yet) and records event 1, "node.enrolled".
  static shared::Result<std::unique_ptr<NodeState>> create(const std::filesystem::path& dir,
                                                           std::string_view passphrase, const crypto::PwhashCost& cost,
                                                           crypto::SigningKey key, const Enrollment& enrollment);
  static shared::Result<std::unique_ptr<NodeState>> open(const std::filesystem::path& dir,
                                                         std::string_view passphrase);

  NodeState(const NodeState&) = delete;
  NodeState& operator=(const NodeState&) = delete;

  storage::Database& db() { return db_; }
  sync::NodeLog& log() { return *log_; }
  DomainStore& domain() { return *domain_; }
  RequestMemory& requests() { return *requests_; }
  const crypto::SigningKey& key() const { return key_; }
  const Enrollment& enrollment() const { return enrollment_; }
  sync::NodeIdentity identity() const;
  std::mutex& mutex() { return mutex_; }

  // Applies a hub directive's effect on the node's state (inside the log's
  // transaction): study.config, roster, revoke, and the grants, shipments and
  // kit decisions of shared/directive_payloads.h. Its sealed fields are
  // opened first (sync::open_sealed_fields); a directive whose sealed part
  // does not open is refused and changes nothing.
  shared::Status apply(const sync::SignedDirective& d);

  // Runs one sync round with the hub over HTTP(S), holding mutex() only while
  // it touches the state (sync/agent.h), with the timeouts of sync/transport.h.
  // A round that ends on a refusal retrying cannot fix keeps that refusal
  // (durably, for `irt-node status`) and fails with its text; a successful
  // round forgets it.
  shared::Result<sync::RoundReport> sync_once(sync::AgentLimits limits = {});
  // The refusal kept by the last sync round that was refused, until a round
  // succeeds; integrity if the kept one does not authenticate. Reads the log:
  // hold mutex() when others share the node.
  shared::Result<std::optional<sync::SyncRefusal>> sync_refusal();
  // Whether the last sync_once of this process ended on such a refusal.
  bool last_round_refused() const { return last_round_refused_; }

 private:
  NodeState(storage::Database db, crypto::AeadKey data_key, crypto::SigningKey key, Enrollment e)
      : db_(std::move(db)), data_key_(std::move(data_key)), key_(std::move(key)),
        box_key_(crypto::BoxKeyPair::from_signing_key(key_)), enrollment_(std::move(e)) {}

  storage::Database db_;
  crypto::AeadKey data_key_;
  crypto::SigningKey key_;
  crypto::BoxKeyPair box_key_;  // key_ as X25519: opens the directives' sealed fields
  Enrollment enrollment_;
  std::optional<sync::NodeLog> log_;
  std::unique_ptr<DomainStore> domain_;
  std::mutex mutex_;
  bool last_round_refused_ = false;
  std::optional<RequestMemory> requests_;
  shared::Status open_stores();
};

}  // namespace irt::node
