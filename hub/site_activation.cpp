#include "hub/site_activation.h"

#include "hub/audit.h"

namespace irt::hub {

namespace {

const std::vector<storage::Migration> kSiteActivationMigrations = {
    {1, R"sql(
CREATE TABLE hub_site_activations (
  site_id TEXT PRIMARY KEY,
  activated_ms INTEGER NOT NULL,
  activated_by TEXT NOT NULL,
  how TEXT NOT NULL CHECK (how IN ('first_enrollment', 'manual'))
);
)sql"},
};

void record(storage::Database& db, const std::string& site_id, const std::string& by, const std::string& how,
            std::int64_t now_ms) {
  db.prepare("INSERT INTO hub_site_activations(site_id, activated_ms, activated_by, how) VALUES (?, ?, ?, ?)")
      .bind_all(site_id, now_ms, by, how)
      .run();
}

}  // namespace

shared::Status migrate_site_activations(storage::Database& db) {
  return db.migrate("hub.site_activations", kSiteActivationMigrations);
}

bool site_active(storage::Database& db, const std::string& site_id) {
  auto st = db.prepare("SELECT 1 FROM hub_site_activations WHERE site_id = ?");
  st.bind(1, site_id);
  return st.step();
}

std::optional<std::int64_t> site_activated_ms(storage::Database& db, const std::string& site_id) {
  auto st = db.prepare("SELECT activated_ms FROM hub_site_activations WHERE site_id = ?");
  st.bind(1, site_id);
  if (!st.step()) return std::nullopt;
  return st.int64(0);
}

std::optional<std::string> site_activation_problem(storage::Database& db, const shared::Study& study,
                                                   const std::string& site_id) {
  if (!study.manual_site_activation || site_active(db, site_id)) return std::nullopt;
  return "site " + site_id + " is not activated yet, and study " + study.id +
         " activates sites by hand; a supply manager activates it with 'irt-hub site activate --site " + site_id +
         "', then enroll the node again with a new token";
}

void activate_site_at_enrollment(storage::Database& db, const std::string& site_id, const std::string& node_id,
                                 std::int64_t now_ms) {
  if (site_active(db, site_id)) return;
  record(db, site_id, "hub", "first_enrollment", now_ms);
  record_audit(db, {now_ms, "hub", "site.activated", site_id, "first node enrolled", "inactive",
                    "active (node " + node_id + ")"});
}

shared::Status activate_site(HubState& hub, const std::string& site_id, const std::string& reason,
                             const Signature& signer, std::int64_t now_ms) {
  if (!hub.study().find_site(site_id))
    return shared::make_error(shared::Errc::not_found, "study " + hub.study().id + " has no site '" + site_id +
                                                           "'; use one of the site ids in the study file");
  auto who = check_signature(hub, signer, shared::Permission::manage_supply);
  if (!who) return who.error();
  auto& db = hub.db();
  storage::Transaction tx(db);
  if (site_active(db, site_id))
    return shared::make_error(shared::Errc::conflict, "site " + site_id + " is already active; nothing was changed");
  record(db, site_id, who->name, "manual", now_ms);
  record_audit(db, {now_ms, who->name, "site.activated", site_id, reason, "inactive", "active", "approved"});
  tx.commit();
  return {};
}

}  // namespace irt::hub
