#include "hub/audit.h"

#include <ctime>

namespace irt::hub {

namespace {
const std::vector<storage::Migration> kAuditMigrations = {
    {1, R"sql(
CREATE TABLE hub_audit (
  id INTEGER PRIMARY KEY,
  at_ms INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  subject TEXT NOT NULL,
  reason TEXT NOT NULL,
  old_value TEXT NOT NULL,
  new_value TEXT NOT NULL
);
)sql"},
    {2, R"sql(
ALTER TABLE hub_audit ADD COLUMN signature TEXT NOT NULL DEFAULT '';
)sql"},
    // Append-only in the database too: no statement changes or deletes a
    // record, whatever program holds the connection.
    {3, R"sql(
CREATE TRIGGER hub_audit_no_update BEFORE UPDATE ON hub_audit
BEGIN SELECT RAISE(ABORT, 'hub_audit is append-only: an audit record is never changed or deleted'); END;
CREATE TRIGGER hub_audit_no_delete BEFORE DELETE ON hub_audit
BEGIN SELECT RAISE(ABORT, 'hub_audit is append-only: an audit record is never changed or deleted'); END;
)sql", {}, R"sql(
CREATE FUNCTION hub_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hub_audit is append-only: an audit record is never changed or deleted'; END $$;
CREATE TRIGGER hub_audit_no_change BEFORE UPDATE OR DELETE ON hub_audit
  FOR EACH ROW EXECUTE FUNCTION hub_audit_append_only();
CREATE TRIGGER hub_audit_no_truncate BEFORE TRUNCATE ON hub_audit
  FOR EACH STATEMENT EXECUTE FUNCTION hub_audit_append_only();
)sql"},
};
}  // namespace

shared::Status migrate_audit(storage::Database& db) { return db.migrate("hub.audit", kAuditMigrations); }

void record_audit(storage::Database& db, const AuditEntry& e) {
  auto st = db.prepare(
      "INSERT INTO hub_audit(at_ms, actor, action, subject, reason, old_value, new_value, signature) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  st.bind_all(e.at_ms, e.actor, e.action, e.subject, e.reason, e.old_value, e.new_value, e.signature).run();
}

std::vector<AuditEntry> audit_entries(storage::Database& db, const AuditFilter& filter) {
  std::string sql =
      "SELECT at_ms, actor, action, subject, reason, old_value, new_value, signature FROM hub_audit WHERE 1 = 1";
  if (filter.since_ms) sql += " AND at_ms >= ?";
  if (!filter.actor.empty()) sql += " AND actor = ?";
  if (!filter.subject.empty()) sql += " AND subject = ?";
  auto st = db.prepare(sql + " ORDER BY id");
  int i = 0;
  if (filter.since_ms) st.bind(++i, *filter.since_ms);
  if (!filter.actor.empty()) st.bind(++i, filter.actor);
  if (!filter.subject.empty()) st.bind(++i, filter.subject);
  std::vector<AuditEntry> out;
  while (st.step())
    out.push_back({st.int64(0), st.text(1), st.text(2), st.text(3), st.text(4), st.text(5), st.text(6), st.text(7)});
  return out;
}

}  // namespace irt::hub
