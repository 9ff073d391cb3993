// The users who may act on this node, from the hub's latest "roster" directive
// (names, roles, sites, Argon2id password hashes), so staff log in with no
// network. Only users whose sites include this node's site are accepted.
// Thread-safety: stateless functions over the caller's NodeLog.
#pragma once

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

std::vector<RosterUser> load_roster(sync::NodeLog& log);

// The same refusal for an unknown user and a wrong password, so a message
// never confirms that a user name exists.
shared::Result<RosterUser> authenticate(sync::NodeLog& log, const std::string& site_id, const std::string& name,
                                        const std::string& password);

}  // namespace irt::node
