#include "hub/enrollment.h"
#include "hub/site_activation.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

#include "crypto/hash.h"
#include "hub/amendments.h"
#include "hub/audit.h"
#include "hub/grants.h"
#include "hub/tuning.h"
#include "hub/users.h"
#include "sync/protocol.h"

namespace irt::hub {

namespace {

const std::vector<storage::Migration> kEnrollmentMigrations = {
    {1, R"sql(
CREATE TABLE hub_enrollment_tokens (
  id INTEGER PRIMARY KEY,
  token_hash BLOB NOT NULL UNIQUE,
  site_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  expires_ms INTEGER NOT NULL,
  used_ms INTEGER,
  used_by_node TEXT
);
)sql"},
};

constexpr std::size_t kTokenBytes = 20;
constexpr const char* kTokenDomain = "irt/enroll-token/v1";
constexpr const char* kBase32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

std::string base32(crypto::ByteView b) {
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (auto byte : b) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kBase32[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kBase32[(buffer << (5 - bits)) & 31]);
  return out;
}

// Accepts the token as typed: any case, with spaces or dashes between groups.
std::optional<crypto::Bytes> decode_token(const std::string& text) {
  crypto::Bytes out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    if (c == ' ' || c == '-') continue;
    char u = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    const char* at = std::strchr(kBase32, u);
    if (!at || u == '\0') return std::nullopt;
    buffer = (buffer << 5) | static_cast<std::uint32_t>(at - kBase32);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<std::uint8_t>((buffer >> (bits - 8)) & 0xff));
      bits -= 8;
    }
  }
  if (out.size() != kTokenBytes) return std::nullopt;
  return out;
}

crypto::Hash token_hash(crypto::ByteView token) { return crypto::hash_domain(kTokenDomain, token); }

std::optional<shared::NodeKind> parse_kind(const std::string& kind) {
  if (kind == "site") return shared::NodeKind::site;
  if (kind == "nurse") return shared::NodeKind::nurse;
  return std::nullopt;
}

// Why a site cannot take a node of this kind, or nullopt when it can.
std::optional<std::string> site_problem(const shared::Study& study, const std::string& site_id,
                                        const std::string& kind) {
  const auto* site = study.find_site(site_id);
  if (!site)
    return "study " + study.id + " has no site '" + site_id + "'; use one of the site ids in the study file";
  if (!site->active) return "site " + site_id + " is inactive in study version " + std::to_string(study.version);
  auto k = parse_kind(kind);
  if (!k) return "node kind '" + kind + "' is unknown; use site or nurse";
  if (std::find(site->node_kinds.begin(), site->node_kinds.end(), *k) == site->node_kinds.end())
    return "site " + site_id + " does not allow " + kind +
           " nodes (its node_kinds in the study); amend the study to allow them";
  return std::nullopt;
}

}  // namespace

shared::Status migrate_enrollment(storage::Database& db) { return db.migrate("hub.enrollment", kEnrollmentMigrations); }

shared::Result<Invitation> invite(HubState& hub, const std::string& site_id, const std::string& kind,
                                  std::int64_t valid_ms, const std::string& actor, std::int64_t now_ms) {
  if (auto problem = site_problem(hub.study(), site_id, kind))
    return shared::make_error(shared::Errc::invalid_input, *problem);
  if (valid_ms < 0)
    return shared::make_error(shared::Errc::invalid_input, "a token's validity cannot be negative");
  auto raw = crypto::random_bytes(kTokenBytes);
  Invitation inv;
  inv.token = base32(raw);
  inv.site_id = site_id;
  inv.kind = kind;
  inv.expires_ms = now_ms + valid_ms;
  auto h = token_hash(raw);
  crypto::secure_zero(raw.data(), raw.size());

  auto& db = hub.db();
  storage::Transaction tx(db);
  auto st = db.prepare(
      "INSERT INTO hub_enrollment_tokens(token_hash, site_id, kind, created_ms, created_by, expires_ms) "
      "VALUES (?, ?, ?, ?, ?, ?)");
  st.bind_all(storage::BlobView(h.view()), site_id, kind, now_ms, actor, inv.expires_ms).run();
  inv.id = db.last_insert_rowid();
  record_audit(db, {now_ms, actor, "enrollment.invited", site_id, "irt-hub invite", "",
                    "token #" + std::to_string(inv.id) + " for a " + kind + " node, expires " +
                        utc_text(inv.expires_ms)});
  tx.commit();
  return inv;
}

sync::Refusable<Enrolled> enroll(HubState& hub, const EnrollRequest& request, std::int64_t now_ms) {
  using sync::refuse;
  namespace we = sync::wire_error;
  auto raw = decode_token(request.token);
  if (!raw)
    return refuse(we::kTokenInvalid, "the enrollment token is not one this hub issued (32 characters A-Z, 2-7); "
                                     "check it or ask for a new one with 'irt-hub invite'");
  if (request.device.size() > kMaxDeviceLength)
    return refuse(we::kBadRequest, "device must be at most " + std::to_string(kMaxDeviceLength) +
                                       " bytes of text describing the device");

  auto& db = hub.db();
  storage::Transaction tx(db);
  auto h = token_hash(*raw);
  auto find = db.prepare(
      "SELECT id, site_id, kind, expires_ms, used_ms, used_by_node FROM hub_enrollment_tokens WHERE token_hash = ?");
  find.bind(1, storage::BlobView(h.view()));
  if (!find.step())
    return refuse(we::kTokenInvalid,
                  "the enrollment token is unknown to this hub; check it, or ask for a new one with 'irt-hub invite'");
  std::int64_t token_id = find.int64(0);
  std::string site_id = find.text(1), kind = find.text(2);
  if (!find.is_null(4))
    return refuse(we::kTokenInvalid, "this enrollment token was already used on " + utc_text(find.int64(4)) +
                                         " (node " + find.text(5) + "); ask for a new one with 'irt-hub invite'");
  if (now_ms >= find.int64(3))
    return refuse(we::kTokenInvalid, "this enrollment token expired on " + utc_text(find.int64(3)) +
                                         "; ask for a new one with 'irt-hub invite'");
  auto key = crypto::PublicKey::from_hex(request.node_public_key_hex);
  if (!key)
    return refuse(we::kBadRequest, "node_public_key must be 64 hex digits (the node's Ed25519 public key)");
  if (hub.ledger().key_enrolled(*key))
    return refuse(we::kBadRequest, "this node key is already enrolled; a device makes a fresh key for each "
                                   "enrollment");
  if (auto problem = site_problem(hub.study(), site_id, kind))
    return refuse(we::kBadRequest, "the token's site can no longer take this node: " + *problem);
  if (auto problem = site_activation_problem(db, hub.study(), site_id)) return refuse(we::kBadRequest, *problem);

  sync::NodeCertificate c;
  c.node_id = hub.ledger().next_node_id(site_id);
  c.site_id = site_id;
  c.kind = kind;
  c.node_key = *key;
  c.serial = hub.ledger().next_certificate_serial();
  c.valid_from_ms = now_ms;
  c.valid_until_ms = now_ms + kCertificateValidityMs;
  auto cert = sync::sign_certificate(c, hub.signing_key());
  hub.ledger().register_node(cert, now_ms);

  auto spend = db.prepare(
      "UPDATE hub_enrollment_tokens SET used_ms = ?, used_by_node = ? WHERE id = ? AND used_ms IS NULL");
  spend.bind_all(now_ms, cert.node_id, token_id).run();
  if (db.changes() != 1)
    return refuse(we::kTokenInvalid, "this enrollment token was used a moment ago; ask for a new one");

  activate_site_at_enrollment(db, site_id, cert.node_id, now_ms);
  Enrolled out;
  hub.outbox().issue(cert.node_id, kStudyConfigDirective, study_config_payload(hub), now_ms);
  hub.outbox().issue(cert.node_id, kRosterDirective, roster_payload(hub, site_id), now_ms);
  out.directives = 2;
  // The site's other nodes learn of the new one (kits may be handed over to it).
  issue_rosters(hub, {site_id}, "node " + cert.node_id + " enrolled",
                "enrollment token #" + std::to_string(token_id), now_ms, cert.node_id);
  auto grants = issue_enrollment_grants(hub, cert.node_id, site_id, now_ms);
  if (!grants)
    return refuse(we::kInternal, "the hub could not prepare the new node's grants (" + grants.error().message +
                                     "); nothing was enrolled. Fix the hub, then enroll again with a new token");
  out.directives += grants->directives;

  std::string created_by;
  {
    auto by = db.prepare("SELECT created_by FROM hub_enrollment_tokens WHERE id = ?");
    by.bind(1, token_id);
    if (by.step()) created_by = by.text(0);
  }
  record_audit(db, {now_ms, "enrollment token #" + std::to_string(token_id) + " (issued by " + created_by + ")",
                    "node.enrolled", cert.node_id, request.device.empty() ? "device enrolled" : request.device, "",
                    kind + " node of site " + site_id + ", key " + key->hex() + ", certificate serial " +
                        std::to_string(cert.serial) + " valid until " + utc_text(cert.valid_until_ms)});
  tx.commit();
  out.certificate = std::move(cert);
  return out;
}

}  // namespace irt::hub
