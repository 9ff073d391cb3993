#include "hub/audit.h"

#include <ctime>
#include <map>
#include <mutex>
#include <optional>

#include "crypto/hash.h"
#include "sync/protocol.h"

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
    // The chain (audit.h): one seal per entry, one signed head. Hashes and
    // signatures in hex. legacy_upto: the last entry written before the
    // trail was chained, sealed as it stands when the hub first opens with
    // its key; no entry after it is ever sealed but by record_audit.
    {4, R"sql(
CREATE TABLE hub_audit_seals (
  seq INTEGER PRIMARY KEY,
  audit_id INTEGER NOT NULL UNIQUE,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  hub_signature TEXT NOT NULL
);
CREATE TABLE hub_audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  entries INTEGER NOT NULL,
  hash TEXT NOT NULL,
  hub_signature TEXT NOT NULL,
  legacy_upto INTEGER NOT NULL
);
INSERT INTO hub_audit_head(id, entries, hash, hub_signature, legacy_upto)
  SELECT 1, 0, '', '', COALESCE(MAX(id), 0) FROM hub_audit;
)sql"},
};

constexpr std::string_view kAuditEntryDomain = "irt/hub-audit-entry/v1";
constexpr std::string_view kAuditHeadDomain = "irt/hub-audit-head/v1";

// The key record_audit signs with, per connection (AuditSigner).
std::mutex audit_signers_mutex;
std::map<const storage::Database*, const crypto::SigningKey*> audit_signers;

const crypto::SigningKey* audit_signer_of(const storage::Database& db) {
  std::lock_guard lock(audit_signers_mutex);
  auto it = audit_signers.find(&db);
  return it == audit_signers.end() ? nullptr : it->second;
}

void hash_audit_u64(crypto::Blake2b& h, std::uint64_t v) {
  std::uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<std::uint8_t>(v >> (56 - 8 * i));
  h.update(crypto::ByteView(b, 8));
}
void hash_audit_text(crypto::Blake2b& h, const std::string& s) {
  hash_audit_u64(h, s.size());
  h.update(crypto::as_bytes(s));
}

// The hash a seal carries: the entry's position, its row id, the hash of the
// entry before it and every field, each length-prefixed.
crypto::Hash audit_entry_hash(std::uint64_t seq, std::int64_t id, const crypto::Hash& prev, const AuditEntry& e) {
  crypto::Blake2b h(kAuditEntryDomain);
  hash_audit_u64(h, seq);
  hash_audit_u64(h, static_cast<std::uint64_t>(id));
  h.update(prev.view());
  hash_audit_u64(h, static_cast<std::uint64_t>(e.at_ms));
  for (const auto* f : {&e.actor, &e.action, &e.subject, &e.reason, &e.old_value, &e.new_value, &e.signature})
    hash_audit_text(h, *f);
  return h.finish();
}

crypto::Hash audit_head_message(std::uint64_t entries, const crypto::Hash& last) {
  crypto::Blake2b h(kAuditHeadDomain);
  hash_audit_u64(h, entries);
  h.update(last.view());
  return h.finish();
}

std::string audit_signature_hex(const crypto::SigningKey* key, const crypto::Hash& message) {
  return key ? key->sign(message.view()).hex() : std::string();
}

bool audit_signature_ok(const crypto::PublicKey& key, const crypto::Hash& message, const std::string& hex) {
  auto sig = crypto::Signature::from_hex(hex);
  return sig && crypto::verify(key, message.view(), *sig);
}

crypto::Hash audit_hash_from_hex(const std::string& hex) {
  auto h = crypto::Hash::from_hex(hex);
  return h ? *h : crypto::Hash{};
}

struct AuditHead {
  std::uint64_t entries = 0;
  crypto::Hash hash;  // zero before the first entry
  std::string hash_hex, signature;
  std::int64_t legacy_upto = 0;
};

std::optional<AuditHead> read_audit_head(storage::Database& db) {
  auto st = db.prepare("SELECT entries, hash, hub_signature, legacy_upto FROM hub_audit_head WHERE id = 1");
  if (!st.step()) return std::nullopt;
  AuditHead h;
  h.entries = static_cast<std::uint64_t>(st.int64(0));
  h.hash_hex = st.text(1);
  h.hash = audit_hash_from_hex(h.hash_hex);
  h.signature = st.text(2);
  h.legacy_upto = st.int64(3);
  return h;
}

AuditEntry read_audit_entry(const storage::Statement& st, int first) {
  return {st.int64(first), st.text(first + 1), st.text(first + 2), st.text(first + 3), st.text(first + 4),
          st.text(first + 5), st.text(first + 6), st.text(first + 7)};
}

// Appends row `id` to the chain and moves the signed head, inside the
// caller's transaction.
void seal_audit_row(storage::Database& db, std::int64_t id, const AuditEntry& e, const crypto::SigningKey* key) {
  auto head = read_audit_head(db);
  if (!head) throw storage::StorageError("hub_audit_head is missing; the database is damaged: run 'irt-hub verify'");
  const std::uint64_t seq = head->entries + 1;
  auto hash = audit_entry_hash(seq, id, head->hash, e);
  db.prepare("INSERT INTO hub_audit_seals(seq, audit_id, prev_hash, hash, hub_signature) VALUES (?, ?, ?, ?, ?)")
      .bind_all(static_cast<std::int64_t>(seq), id, head->hash.hex(), hash.hex(), audit_signature_hex(key, hash))
      .run();
  db.prepare("UPDATE hub_audit_head SET entries = ?, hash = ?, hub_signature = ? WHERE id = 1")
      .bind_all(static_cast<std::int64_t>(seq), hash.hex(), audit_signature_hex(key, audit_head_message(seq, hash)))
      .run();
}

constexpr const char* kAuditColumns = "at_ms, actor, action, subject, reason, old_value, new_value, signature";

}  // namespace

shared::Status migrate_audit(storage::Database& db) { return db.migrate("hub.audit", kAuditMigrations); }

void record_audit(storage::Database& db, const AuditEntry& e) {
  // The chain's head is read and moved under the writer lock.
  std::optional<storage::Transaction> tx;
  if (!db.in_transaction()) tx.emplace(db);
  auto st = db.prepare(
      "INSERT INTO hub_audit(at_ms, actor, action, subject, reason, old_value, new_value, signature) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  st.bind_all(e.at_ms, e.actor, e.action, e.subject, e.reason, e.old_value, e.new_value, e.signature).run();
  seal_audit_row(db, db.last_insert_rowid(), e, audit_signer_of(db));
  if (tx) tx->commit();
}

AuditSigner::AuditSigner(storage::Database& db, const crypto::SigningKey& key) : db_(&db) {
  {
    std::lock_guard lock(audit_signers_mutex);
    audit_signers[db_] = &key;
  }
  // Entries from before the chain, once, as they stand.
  auto head = read_audit_head(db);
  if (!head || head->legacy_upto == 0) return;
  auto any = db.prepare("SELECT 1 FROM hub_audit a WHERE a.id <= ? AND NOT EXISTS "
                        "(SELECT 1 FROM hub_audit_seals s WHERE s.audit_id = a.id) LIMIT 1");
  any.bind(1, head->legacy_upto);
  if (!any.step()) return;
  std::optional<storage::Transaction> tx;
  if (!db.in_transaction()) tx.emplace(db);
  auto rows = db.prepare(std::string("SELECT id, ") + kAuditColumns +
                         " FROM hub_audit a WHERE a.id <= ? AND NOT EXISTS "
                         "(SELECT 1 FROM hub_audit_seals s WHERE s.audit_id = a.id) ORDER BY id");
  rows.bind(1, head->legacy_upto);
  std::vector<std::pair<std::int64_t, AuditEntry>> legacy;
  while (rows.step()) legacy.emplace_back(rows.int64(0), read_audit_entry(rows, 1));
  for (const auto& [id, entry] : legacy) seal_audit_row(db, id, entry, &key);
  if (tx) tx->commit();
}

AuditSigner::~AuditSigner() {
  std::lock_guard lock(audit_signers_mutex);
  audit_signers.erase(db_);
}

std::vector<std::string> verify_audit(storage::Database& db, const crypto::PublicKey& hub_key,
                                      std::uint64_t& entries) {
  std::vector<std::string> problems;
  auto name = [](std::int64_t id, const AuditEntry& e) {
    return "audit entry " + std::to_string(id) + " (" + e.action + " " + e.subject + ", " + utc_text(e.at_ms) + ")";
  };
  auto st = db.prepare(std::string("SELECT a.id, ") + kAuditColumns +
                       ", s.seq, s.prev_hash, s.hash, s.hub_signature FROM hub_audit a "
                       "LEFT JOIN hub_audit_seals s ON s.audit_id = a.id ORDER BY a.id");
  std::uint64_t expected = 1;
  crypto::Hash prev;
  entries = 0;
  while (st.step()) {
    ++entries;
    const std::int64_t id = st.int64(0);
    const AuditEntry e = read_audit_entry(st, 1);
    if (st.is_null(9)) {
      problems.push_back(name(id, e) + " has no seal: it was inserted outside the hub's audit path");
      continue;
    }
    const auto seq = static_cast<std::uint64_t>(st.int64(9));
    const auto stored = audit_hash_from_hex(st.text(11));
    if (seq > expected)
      problems.push_back("audit entries " + std::to_string(expected) + " to " + std::to_string(seq - 1) +
                         " of the chain are missing before " + name(id, e) + ": deleted with their seals");
    else if (seq < expected)
      problems.push_back(name(id, e) + " is out of place: its seal puts it at position " + std::to_string(seq) +
                         ", after position " + std::to_string(expected - 1));
    else if (audit_hash_from_hex(st.text(10)) != prev)
      problems.push_back(name(id, e) + " does not link to the entry before it: an entry was removed or reordered");
    if (audit_entry_hash(seq, id, audit_hash_from_hex(st.text(10)), e) != stored)
      problems.push_back(name(id, e) + " was changed: its fields (or its id) no longer hash to its seal");
    else if (!audit_signature_ok(hub_key, stored, st.text(12)))
      problems.push_back(name(id, e) + ": its seal is not signed by this hub's key");
    prev = stored;
    expected = seq + 1;
  }
  auto orphans = db.prepare(
      "SELECT s.audit_id, s.seq FROM hub_audit_seals s WHERE NOT EXISTS (SELECT 1 FROM hub_audit a WHERE a.id = "
      "s.audit_id) ORDER BY s.seq");
  while (orphans.step())
    problems.push_back("audit entry " + std::to_string(orphans.int64(0)) + " (position " +
                       std::to_string(orphans.int64(1)) + " of the chain) was deleted: its seal remains");
  auto head = read_audit_head(db);
  if (!head) {
    problems.push_back("the audit trail's signed head (hub_audit_head) is missing");
    return problems;
  }
  if (!audit_signature_ok(hub_key, audit_head_message(head->entries, head->hash), head->signature))
    problems.push_back("the audit trail's head (" + std::to_string(head->entries) +
                       " entries) is not signed by this hub's key");
  const std::uint64_t last = expected - 1;
  if (head->entries > last)
    problems.push_back("the audit trail ends at position " + std::to_string(last) + " but the hub's signed head covers " +
                       std::to_string(head->entries) + " entries: the last " + std::to_string(head->entries - last) +
                       " were cut");
  else if (head->entries < last)
    problems.push_back("the audit trail holds sealed entries up to position " + std::to_string(last) +
                       " but the hub's signed head covers " + std::to_string(head->entries));
  else if (head->hash != prev)
    problems.push_back("the last audit entry differs from the one the hub's signed head names");
  return problems;
}

sync::AuditHead audit_head(storage::Database& db) {
  auto head = read_audit_head(db);
  return head ? sync::AuditHead{head->entries, head->hash} : sync::AuditHead{};
}

std::vector<std::string> verify_audit_in_checkpoints(storage::Database& db,
                                                     const std::vector<std::string>& checkpoint_texts,
                                                     const crypto::PublicKey& hub_key) {
  std::vector<std::string> problems;
  const auto head = audit_head(db);
  auto seal = db.prepare("SELECT hash FROM hub_audit_seals WHERE seq = ?");
  // The longest head any checkpoint recorded is the one that matters for a cut; each is checked for a rewrite.
  std::optional<std::pair<std::uint64_t, sync::AuditHead>> longest;
  for (const auto& text : checkpoint_texts) {
    auto cp = sync::open_checkpoint(text, sync::kCheckpointKeyName, hub_key);
    if (!cp || !cp->audit || cp->audit->entries == 0) continue;  // the ledger's own check names a bad checkpoint
    if (!longest || cp->audit->entries > longest->second.entries) longest = {{cp->size, *cp->audit}};
    if (cp->audit->entries > head.entries) continue;
    seal.reset();
    seal.bind(1, static_cast<std::int64_t>(cp->audit->entries));
    if (!seal.step() || audit_hash_from_hex(seal.text(0)) != cp->audit->last)
      problems.push_back("the audit entry at position " + std::to_string(cp->audit->entries) +
                         " is not the one the checkpoint at tree size " + std::to_string(cp->size) +
                         " recorded: the trail was rewritten from there");
  }
  if (longest && longest->second.entries > head.entries)
    problems.push_back("the audit trail holds " + std::to_string(head.entries) + " entries, but the checkpoint at tree "
                       "size " + std::to_string(longest->first) + " recorded " +
                       std::to_string(longest->second.entries) +
                       ": the trail was cut or restored from an earlier copy");
  return problems;
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
