// The hub's outbox of directives: every decision sent to a node (study
// configuration, user roster, later grants and custody transfers), signed by
// the hub (sync/directive.h) and numbered per node from 1. A node pulls the
// records after the last seq it applied and applies each exactly once.
//
// issue() runs inside a transaction the caller holds, so a directive commits
// together with the change that caused it (an enrollment, a new user). Stored
// records are the exact signed bytes and are never rewritten. The HLC of a new
// directive continues from the largest one stored, so directives order after
// each other even across processes.
//
// The fields of a payload that reveal an allocation or a secret
// (sync::sealed_field_names) are sealed to the node's identity key before
// signing (sync::seal_fields), so the stored record, like the wire, shows
// them to nobody but the node; payloads_of returns payloads as stored.
// Thread-safety: as storage::Database.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crypto/sign.h"
#include "shared/result.h"
#include "storage/database.h"

namespace irt::hub {

// Directive types of the hub itself; the grant and custody types are in
// shared/directive_payloads.h (issued by hub/grants.h).
inline constexpr const char* kStudyConfigDirective = "study.config";
inline constexpr const char* kRosterDirective = "roster";

class DirectiveOutbox {
 public:
  static shared::Status migrate(storage::Database& db);
  // The enrolled node's Ed25519 public key, nullopt for a node unknown.
  using NodeKeyLookup = std::function<std::optional<crypto::PublicKey>(const std::string& node_id)>;
  DirectiveOutbox(storage::Database& db, const crypto::SigningKey& hub_key, NodeKeyLookup node_key)
      : db_(db), hub_key_(hub_key), node_key_(std::move(node_key)) {}

  // Seals the payload's secret fields to the node, signs and stores the
  // node's next directive; returns its seq. Throws std::invalid_argument when
  // the payload has fields to seal and the node is not enrolled (a bug: the
  // hub issues directives to enrolled nodes only).
  std::uint64_t issue(const std::string& node_id, std::string_view type, std::string_view payload_json,
                      std::int64_t now_ms);
  // Records with seq > after, ascending, at most `limit`.
  std::vector<std::vector<std::uint8_t>> after(const std::string& node_id, std::uint64_t after, std::size_t limit);
  // The node's last directive: the highest stored, or the floor set by
  // continue_above when that is higher.
  std::uint64_t last_seq(const std::string& node_id);
  // The node applied directives up to `applied`, beyond the last this outbox
  // holds: the hub was restored from a backup older than them, and they are
  // lost (docs/operations.md). The node's next directive is numbered
  // applied + 1, so no seq it applied ever names another directive. Inside
  // the caller's transaction; returns the last seq held before (for the
  // alert), unchanged when `applied` is not beyond it.
  std::uint64_t continue_above(const std::string& node_id, std::uint64_t applied);
  // The node's directives of `type`, as (seq, payload JSON), ascending.
  std::vector<std::pair<std::uint64_t, std::string>> payloads_of(const std::string& node_id, std::string_view type);
  // irt-hub verify (hub/verify_tables.h): every stored directive parses, is
  // signed by `hub_key` and matches its row (node, seq, type); each node's
  // seqs run from 1 without a gap (but up to a floor continue_above set).
  // One problem per line naming the node and seq.
  std::vector<std::string> verify(const crypto::PublicKey& hub_key);

 private:
  storage::Database& db_;
  const crypto::SigningKey& hub_key_;
  NodeKeyLookup node_key_;
};

}  // namespace irt::hub
