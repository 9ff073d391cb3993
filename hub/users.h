// Hub users: a name, one study role, the sites they work at, and an Argon2id
// password hash (crypto::password_hash, libsodium's "$argon2id$..." string).
//
// Users reach the nodes of their sites in "roster" directives, so they can log
// in on a node that has no network. A roster is the complete list of the
// site's users and replaces the previous one on the node; after any change the
// hub issues a fresh roster to every node of each affected site that is not
// revoked, in the same transaction as the change.
// Thread-safety: as HubState. The plaintext password lives only for the
// duration of add_user and is never logged or audited.
#pragma once

#include <cstdint>
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
  std::vector<std::string> sites;
  std::string password_hash;
  std::int64_t created_ms = 0;
};

struct NewUser {
  std::string name;   // 1-64 characters: letters, digits, '.', '_', '-', '@'
  std::string role;   // a role id of the study
  std::vector<std::string> sites;  // site ids of the study; may be empty for central users
  std::string password;            // at least kMinPasswordLength characters
};

inline constexpr std::size_t kMinPasswordLength = 10;

struct UserAdded {
  std::size_t rosters_issued = 0;  // nodes that got a fresh roster
};

shared::Result<UserAdded> add_user(HubState& hub, const NewUser& user, const crypto::PwhashCost& cost,
                                   const std::string& actor, std::int64_t now_ms);

std::vector<User> users_of_site(storage::Database& db, const std::string& site_id);
std::vector<User> all_users(storage::Database& db);

// {"site_id":..., "users":[{"name","role","sites":[...],"password_hash"}]}: the
// roster directive's payload for a site (users ordered by name).
std::string roster_payload(storage::Database& db, const std::string& site_id);

}  // namespace irt::hub
