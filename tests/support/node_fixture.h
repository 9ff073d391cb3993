// A ready node data directory without a hub: an enrollment certified by a
// throwaway hub key held in memory, then the directives the hub would send
// (study configuration, roster, participant numbers, slots or a minimization
// stream, shipments), signed with that key and applied through
// NodeLog::apply_directive exactly as a sync would. Unit tests open the node
// in-process; API, browser tests and benchmarks start the real `irt-node
// serve` on it (through the irt-test-node-fixture program), whose sync then
// fails quietly: there is no hub, the node is offline.
//
// Every roster user has the password kFixturePassword; the node's passphrase
// is kFixturePassphrase. Argon2id runs at crypto::kTest cost.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "crypto/seal.h"
#include "crypto/sign.h"
#include "node/node_state.h"
#include "node/site_operations.h"
#include "shared/directive_payloads.h"
#include "sync/directive.h"

namespace irt::test {

inline constexpr const char* kFixturePassphrase = "correct horse battery staple";
inline constexpr const char* kFixturePassword = "Site-pass-2024";
// The fixture's site staff, as the node's operations take them.
inline const node::Actor kCoordinator{"carla", "coordinator"};
inline const node::Actor kInvestigator{"ines", "investigator"};
inline const node::Actor kPharmacist{"paul", "pharmacist"};
inline const node::Actor kNurse{"nadia", "nurse"};

struct NodeFixtureOptions {
  std::string study_file = "packaging/examples/study-blocks.json";
  std::string site = "101";
  std::size_t slots_per_stratum = 8;      // at least; whole blocks
  std::uint32_t numbers = 200;            // participant numbers granted
  int kits_per_type = 6;                  // in the first shipment, besides the two below
  bool expired_and_near_expiry = true;    // one expired kit and one inside the do-not-dispense window per type
  bool receive_first_shipment = true;     // recorded as received by the coordinator
  int pending_kits_per_type = 2;          // a second shipment, announced and not yet received
  std::string pending_kind = "initial";   // its kind: "handover" as the hub sends kits another node of the site handed over
  std::uint64_t cap_allowance = 100;      // granted per capped arm and cohort
  std::string hub_url = "http://127.0.0.1:1";  // nothing listens: the node is offline
  // Participants screened and randomized by the coordinator this many days
  // ago (their visits are then due, overdue or upcoming today).
  std::vector<int> randomized_days_ago;
  // Then a kits.relabel directive for this many kits in stock of one lot
  // (a new expiry 500 days ahead), as the hub sends when a lot is relabelled.
  int relabel_kits = 0;
};

class NodeFixture {
 public:
  NodeFixture(std::filesystem::path dir, NodeFixtureOptions options = {});

  std::unique_ptr<node::NodeState> open() const;
  // Signs a directive with the fixture's hub key as the node's next one and applies it.
  // Its fields to seal are sealed to the node's key, as the hub does.
  shared::Status send(node::NodeState& state, const std::string& type, const nlohmann::json& payload);
  // The same with the payload text as given (already sealed, or tampered with).
  shared::Status send_sealed(node::NodeState& state, const std::string& type, const std::string& payload_text);

  const std::filesystem::path& dir() const { return dir_; }
  const std::string& node_id() const { return node_id_; }
  const crypto::BoxKeyPair& unblinding_key() const { return unblinding_; }
  const crypto::SigningKey& hub_key() const { return hub_; }
  // user name -> role id: coordinator "carla", investigator "ines", pharmacist "paul", nurse "nadia", monitor "mona".
  const std::map<std::string, std::string>& users() const { return users_; }
  const shared::Shipment& first_shipment() const { return first_; }
  const shared::Shipment& pending_shipment() const { return pending_; }
  std::string expired_kit;      // of the first shipment, received
  std::string near_expiry_kit;  // inside the do-not-dispense window, received
  std::vector<std::string> relabel_kits;  // marked for relabelling (NodeFixtureOptions::relabel_kits)
  std::string relabel_expiry;
  // For programs: node id, users, passwords, shipments (kit numbers only, no kit types).
  nlohmann::json summary() const;

 private:
  std::filesystem::path dir_;
  NodeFixtureOptions options_;
  // How far before now the fixture's directives are dated (see the constructor).
  std::int64_t directives_back_ms_ = 0;
  crypto::SigningKey hub_;
  crypto::BoxKeyPair unblinding_;
  std::string node_id_;
  std::map<std::string, std::string> users_;
  shared::Shipment first_;
  shared::Shipment pending_;
};

}  // namespace irt::test
