// Hub users: a name, one study role, the sites they work at, and an Argon2id
// password hash (crypto::password_hash, libsodium's "$argon2id$..." string).
//
// Users reach the nodes of their sites in "roster" directives, so they can log
// in on a node that has no network. A roster is the complete list of the
// site's users and replaces the previous one on the node; after any change the
// hub issues a fresh roster to every node of each affected site that is not
// revoked, in the same transaction as the change.
// A disabled user stays in the hub's list (and in the audit trail) but leaves
// the rosters: a node refuses the user's login and e-signatures from the
// moment it has applied the roster issued with the change.
//
// Changes to an existing user (disable, enable, password, sites) are critical:
// they take the electronic signature of a hub user holding manage_users, whose
// name and meaning ("approved") the audit entry keeps.
// Thread-safety: as HubState. Plaintext passwords live only for the duration
// of a call and are never logged or audited.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crypto/password.h"
#include "hub/hub_state.h"
#include "shared/result.h"

namespace irt::hub {

shared::Status migrate_users(storage::Database& db);

struct User {
  std::string name;
  std::string role;
  std::vector<std::string> sites;  // for a depot role (manage_depot): the depots it acts for
  std::string password_hash;
  std::int64_t created_ms = 0;
  bool disabled = false;
};

struct NewUser {
  std::string name;   // 1-64 characters: letters, digits, '.', '_', '-', '@'
  std::string role;   // a role id of the study
  std::vector<std::string> sites;  // site ids of the study; may be empty for central users
  std::string password;            // at least kMinPasswordLength characters
};

inline constexpr std::size_t kMinPasswordLength = 10;

struct RosterChange {
  std::size_t rosters_issued = 0;  // nodes that got a fresh roster
};
using UserAdded = RosterChange;

// A role whose permissions are exercised on a site's node (screen, randomize,
// dispense, unblind, receive_shipment, report_excursion, return_kits,
// withdraw): its users need at least one site.
bool is_site_role(const shared::Role& role);

using shared::reads_blinded;  // shared/study.h: the blinding decision, as on the node

// `actor`: the hub user adding (the caller checked manage_users).
shared::Result<UserAdded> add_user(HubState& hub, const NewUser& user, const crypto::PwhashCost& cost,
                                   const std::string& actor, std::int64_t now_ms);
// A hub's first user, added at setup with no hub user to act (`setup` names
// who did, for the audit trail): refused once the hub has a user, and for a
// role without manage_users, since every later user is added by one.
shared::Result<UserAdded> add_first_user(HubState& hub, const NewUser& user, const crypto::PwhashCost& cost,
                                         const std::string& setup, std::int64_t now_ms);

// An electronic signature: the signing hub user re-enters the password.
struct Signature {
  std::string user;
  std::string password;
};

// The signer, when `s` is a signature of an existing, enabled hub user whose
// role holds `needed`. An unknown user and a wrong password are refused alike.
shared::Result<User> check_signature(HubState& hub, const Signature& s, shared::Permission needed);

// Each takes the signature of a user holding manage_users, records one audit
// entry (old and new value, the signer, "approved") and sends a fresh roster
// to the nodes of every site the user had or now has, in one transaction.
shared::Result<RosterChange> set_user_disabled(HubState& hub, const std::string& name, bool disabled,
                                               const std::string& reason, const Signature& signer,
                                               std::int64_t now_ms);
// Disabling a user ends every session of the user at the hub's API; a new
// password ends them all but `keep_session` (hub/sessions.h: the session that
// changed its own user's password stays open).
shared::Result<RosterChange> set_user_password(HubState& hub, const std::string& name, const std::string& password,
                                               const crypto::PwhashCost& cost, const Signature& signer,
                                               std::int64_t now_ms, const std::string& keep_session = "");
shared::Result<RosterChange> set_user_sites(HubState& hub, const std::string& name,
                                            const std::vector<std::string>& sites, const Signature& signer,
                                            std::int64_t now_ms);

std::optional<User> find_user(storage::Database& db, const std::string& name);
// Whether `password` is `user`'s. For an unknown user (none) it is checked
// against another user's hash, of the same Argon2id cost, and never matches:
// the answer takes as long as a wrong password and does not tell which names
// exist. Runs Argon2id: the API calls it without its lock.
bool password_matches(const std::optional<User>& user, const std::string& decoy_hash, const std::string& password);
// A hash to check an unknown user's password against (empty before any user).
std::string decoy_hash(storage::Database& db);
std::vector<User> users_of_site(storage::Database& db, const std::string& site_id);
std::vector<User> all_users(storage::Database& db);

// Rebuilds every user's role, sites and status from the user.* audit entries
// (added, disabled, enabled, sites_set) and compares them with hub_users and
// hub_user_sites: one problem per difference, naming the user, the field, the
// stored and the rebuilt value (irt-hub verify). Password hashes are not in
// the trail (it never holds one), so they are not checked.
std::vector<std::string> verify_users(storage::Database& db);

// {"site_id":..., "users":[{"name","role","sites":[...],"password_hash"}],
// "nodes":[{"node_id","kind"}]}: the roster directive's payload for a site (its
// enabled users, ordered by name; its active nodes, ordered by id, so a node
// offers the others as where kits may be handed over: neither a revoked node
// nor one frozen after an equivocation).
std::string roster_payload(HubState& hub, const std::string& site_id);
// A fresh roster to every node (not revoked) of each of `sites` but
// `except_node`, inside the caller's transaction, each audited; how many.
// Issued when a user of the site changes and when a node of the site is
// enrolled, revoked, frozen (hub/ingest.h) or unfrozen (hub/node_decisions.h).
std::size_t issue_rosters(HubState& hub, const std::set<std::string>& sites, const std::string& why,
                          const std::string& actor, std::int64_t now_ms, const std::string& except_node = "");

}  // namespace irt::hub
