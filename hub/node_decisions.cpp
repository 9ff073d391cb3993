#include "hub/node_decisions.h"

namespace irt::hub {

namespace {

shared::Result<User> signer_of(HubState& hub, const std::string& reason, const Signature& signer) {
  if (reason.empty())
    return shared::make_error(shared::Errc::invalid_input, "give the reason for the audit trail (--reason TEXT)");
  return check_signature(hub, signer, shared::Permission::manage_nodes);
}

}  // namespace

shared::Result<GrantsVoided> revoke_node(HubState& hub, const std::string& node_id, const std::string& reason,
                                         const Signature& signer, std::int64_t now_ms) {
  auto who = signer_of(hub, reason, signer);
  if (!who) return who.error();
  GrantsVoided voided;
  auto st = hub.ledger().revoke(node_id, reason, who->name, now_ms,
                                [&] {
                                  voided = void_node_grants(hub, node_id, who->name, now_ms);
                                  // The site's other nodes no longer offer it for a handover.
                                  for (const auto& n : hub.ledger().nodes())
                                    if (n.node_id == node_id)
                                      issue_rosters(hub, {n.site_id}, "node " + node_id + " revoked", who->name,
                                                    now_ms);
                                },
                                kNodeDecisionMeaning);
  if (!st) return st.error();
  return voided;
}

shared::Status unfreeze_node(HubState& hub, const std::string& node_id, const std::string& reason,
                             const Signature& signer, std::int64_t now_ms) {
  auto who = signer_of(hub, reason, signer);
  if (!who) return who.error();
  // The site's nodes offer it again for a handover (a frozen node is left out of the roster).
  auto site = hub.ledger().find_node(node_id);
  return hub.ledger().unfreeze(node_id, reason, who->name, now_ms, kNodeDecisionMeaning, [&] {
    if (site) issue_rosters(hub, {site->site_id}, "node " + node_id + " unfrozen", who->name, now_ms);
  });
}

}  // namespace irt::hub
