// The users who may act on this node, from the hub's latest "roster" directive
// (names, roles, sites, Argon2id password hashes), so staff log in with no
// network; and the site's other nodes, to hand kits over to offline. Only users whose sites include this node's site are accepted.
//
// A password is checked in three steps so that no lock is held across
// Argon2id, which is slow on purpose: find_user under the lock that guards the
// log, check_password with no lock held, then confirm under the lock again,
// which reads the entry afresh: a user removed from the roster or given a new
// password in between is refused, one moved off this site is forbidden.
// The parsed roster is remembered by its text (one per process, behind its
// own mutex), so reading it for every password check costs one decryption.
// Thread-safety: the NodeLog functions under the caller's lock.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "shared/result.h"
#include "sync/node_log.h"

namespace irt::node {

struct RosterUser {
  std::string name;
  std::string role;
  std::vector<std::string> sites;
  std::string password_hash;
};

// A node of this node's site, as the hub's roster lists them (docs/sync-protocol.md).
struct SiteNode {
  std::string node_id;
  std::string kind;  // "site" or "nurse"
};

// Empty before the first roster directive; integrity when the stored roster
// does not authenticate (sync/node_log.h, get_sealed).
shared::Result<std::vector<RosterUser>> load_roster(sync::NodeLog& log);
// The site's nodes not revoked (this one among them) from the same roster:
// empty before the first roster, and from a hub whose rosters did not list them.
shared::Result<std::vector<SiteNode>> load_site_nodes(sync::NodeLog& log);
// None for a user the roster does not hold, and when the roster cannot be
// read: confirm() then answers with the damage.
std::optional<RosterUser> find_user(sync::NodeLog& log, const std::string& name);

// A password checked against the roster entry read before; holds no password.
struct PasswordCheck {
  std::string user;
  std::optional<RosterUser> entry;  // as it was when checked; none for an unknown user
  bool given = false;               // a password was given at all
  bool matches = false;
};

// A real entry's hash, of the same Argon2id cost as every other (empty before
// the first roster): an unknown user's password is checked against it, so
// the answer takes as long as for a wrong password and does not tell which
// names exist.
std::string decoy_hash(sync::NodeLog& log);

// Runs Argon2id: call it with no lock held. Without an entry the password is
// checked against `decoy` (decoy_hash) and never matches.
PasswordCheck check_password(std::optional<RosterUser> entry, const std::string& name, const std::string& password,
                             const std::string& decoy = "");

// The user as the roster holds it now, if the password matched and the entry
// still has the hash it was checked against. The same refusal for an unknown user and a wrong
// password, so a message never confirms that a user name exists.
shared::Result<RosterUser> confirm(sync::NodeLog& log, const std::string& site_id, const PasswordCheck& check);

// All three steps at once, for a caller that shares the log with nobody.
shared::Result<RosterUser> authenticate(sync::NodeLog& log, const std::string& site_id, const std::string& name,
                                        const std::string& password);

}  // namespace irt::node
