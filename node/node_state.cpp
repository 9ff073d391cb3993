#include "node/node_state.h"

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "crypto/key_wrap.h"
#include "node/tuning.h"
#include "shared/directive_payloads.h"
#include "shared/event_payloads.h"
#include "shared/study.h"

namespace irt::node {

namespace {

const std::vector<storage::Migration> kMetaMigrations = {
    {1, "CREATE TABLE node_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"},
};

constexpr const char* kSeedAd = "irt/node/signing-seed";

void put_meta(storage::Database& db, const std::string& key, const std::string& value) {
  db.prepare("INSERT INTO node_meta(key, value) VALUES(?, ?)").bind_all(key, value).run();
}

std::optional<std::string> get_meta(storage::Database& db, const std::string& key) {
  auto st = db.prepare("SELECT value FROM node_meta WHERE key = ?");
  st.bind(1, key);
  if (!st.step()) return std::nullopt;
  return st.text(0);
}

// The failure counter lives beside the database so that it survives restarts
// and is not part of any signed state.
std::filesystem::path failures_path(const std::filesystem::path& dir) { return dir / "unlock-failures"; }

int read_failures(const std::filesystem::path& dir) {
  std::ifstream in(failures_path(dir));
  int n = 0;
  in >> n;
  return n;
}

void write_failures(const std::filesystem::path& dir, int n) {
  if (n == 0) {
    std::error_code ec;
    std::filesystem::remove(failures_path(dir), ec);
    return;
  }
  std::ofstream(failures_path(dir), std::ios::trunc) << n;
}

// Where sync_once keeps the hub's last refusal that retrying cannot fix.
constexpr const char* kSyncRefusalKey = "sync_refusal";

shared::Error corrupt(const std::string& what) {
  return shared::make_error(shared::Errc::integrity,
                            "node data is damaged (" + what + "); restore the data directory from backup or re-enroll");
}

}  // namespace

sync::NodeIdentity NodeState::identity() const {
  return {enrollment_.node_id, enrollment_.certificate, enrollment_.hub_key};
}

shared::Result<std::unique_ptr<NodeState>> NodeState::create(const std::filesystem::path& dir,
                                                             std::string_view passphrase,
                                                             const crypto::PwhashCost& cost, crypto::SigningKey key,
                                                             const Enrollment& e) {
  if (std::filesystem::exists(database_path(dir)))
    return shared::make_error(shared::Errc::conflict, dir.string() + " already holds an enrolled node; "
                                                                     "choose an empty directory");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return shared::make_error(shared::Errc::invalid_input,
                              "cannot create " + dir.string() + " (" + ec.message() + "); choose a writable directory");
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  auto db = storage::Database::open(database_path(dir));
  if (!db) return db.error();
  if (auto st = db->migrate("node_meta", kMetaMigrations); !st) return st.error();

  auto data_key = crypto::AeadKey::generate();
  auto wrapped = crypto::wrap_key(data_key.bytes(), passphrase, cost);
  auto seed = key.seed();
  auto sealed_seed = crypto::aead_seal(data_key, seed.view(), crypto::as_bytes(kSeedAd));

  std::unique_ptr<NodeState> state(new NodeState(std::move(db).value(), std::move(data_key), std::move(key), e));
  auto log = sync::NodeLog::open(state->db_, state->data_key_, e.node_id);
  if (!log) return log.error();
  state->log_.emplace(std::move(log).value());
  if (auto st = state->open_stores(); !st) return st.error();

  storage::Transaction tx(state->db_);
  auto& d = state->db_;
  put_meta(d, "node_id", e.node_id);
  put_meta(d, "site_id", e.site_id);
  put_meta(d, "kind", e.kind);
  put_meta(d, "study_id", e.study_id);
  put_meta(d, "hub_url", e.hub_url);
  put_meta(d, "hub_fingerprint", e.hub_fingerprint);
  put_meta(d, "hub_public_key", e.hub_key.hex());
  put_meta(d, "hub_unblinding_key", e.hub_unblinding_key.hex());
  put_meta(d, "certificate", crypto::to_base64(e.certificate));
  put_meta(d, "node_public_key", state->key_.public_key().hex());
  put_meta(d, "wrapped_data_key", crypto::to_base64(wrapped));
  put_meta(d, "sealed_signing_seed", crypto::to_base64(sealed_seed));
  const nlohmann::json payload = shared::NodeEnrolled{e.node_id, e.site_id,         e.kind,
                                                      e.study_id, e.hub_url, e.hub_fingerprint,
                                                      state->key_.public_key().hex()};
  std::string p = payload.dump();
  if (auto first = state->log_->append(state->key_, "system", std::string(shared::kNodeEnrolledEvent),
                                       crypto::Bytes(p.begin(), p.end()));
      !first)
    return first.error();
  tx.commit();
  return state;
}

shared::Result<std::unique_ptr<NodeState>> NodeState::open(const std::filesystem::path& dir,
                                                           std::string_view passphrase) {
  if (!std::filesystem::exists(database_path(dir)))
    return shared::make_error(shared::Errc::not_found, "no enrolled node in " + dir.string() +
                                                           "; run 'irt-node enroll' first or check --data");
  auto db = storage::Database::open(database_path(dir), {.create = false});
  if (!db) return db.error();
  if (auto st = db->migrate("node_meta", kMetaMigrations); !st) return st.error();

  auto wrapped = get_meta(*db, "wrapped_data_key");
  auto sealed_seed = get_meta(*db, "sealed_signing_seed");
  if (!wrapped || !sealed_seed) return corrupt("its keys are missing");

  int failures = read_failures(dir);
  if (failures >= kUnlockFreeAttempts) {
    int doublings = std::min(failures - kUnlockFreeAttempts, 5);
    auto wait = std::chrono::seconds(std::min(kUnlockMaxWaitSeconds, 1 << doublings));
    std::this_thread::sleep_for(wait);  // slows down guessing; not a timing device
  }
  auto wrapped_bytes = crypto::from_base64(*wrapped);
  if (!wrapped_bytes) return corrupt("the wrapped data key is not base64");
  auto unwrapped = crypto::unwrap_key(*wrapped_bytes, passphrase);
  if (!unwrapped.secret) {
    if (unwrapped.error == crypto::UnwrapError::wrong_passphrase) {
      write_failures(dir, failures + 1);
      return shared::make_error(shared::Errc::unauthenticated,
                                "wrong passphrase for the node in " + dir.string() +
                                    "; check IRT_PASSPHRASE or --passphrase-file (repeated failures slow down)");
    }
    return corrupt(crypto::unwrap_error_message(unwrapped.error));
  }
  write_failures(dir, 0);
  auto data_key = crypto::AeadKey::from(std::move(*unwrapped.secret));
  auto seed_bytes = crypto::from_base64(*sealed_seed);
  if (!seed_bytes) return corrupt("the sealed signing key is not base64");
  auto seed = crypto::aead_open_secret(data_key, *seed_bytes, crypto::as_bytes(kSeedAd));
  if (!seed) return corrupt("the signing key does not authenticate");
  auto key = crypto::SigningKey::from_seed(seed->view());

  Enrollment e;
  auto need = [&](const char* k) -> std::string { return get_meta(*db, k).value_or(""); };
  e.node_id = need("node_id");
  e.site_id = need("site_id");
  e.kind = need("kind");
  e.study_id = need("study_id");
  e.hub_url = need("hub_url");
  e.hub_fingerprint = need("hub_fingerprint");
  auto cert = crypto::from_base64(need("certificate"));
  auto hub_key = crypto::PublicKey::from_hex(need("hub_public_key"));
  auto unblinding = crypto::BoxPublicKey::from_hex(need("hub_unblinding_key"));
  if (!cert || !hub_key || !unblinding || e.node_id.empty()) return corrupt("its enrollment record is incomplete");
  if (key.public_key().hex() != need("node_public_key")) return corrupt("the signing key does not match the node");
  e.certificate = *cert;
  e.hub_key = *hub_key;
  e.hub_unblinding_key = *unblinding;

  std::unique_ptr<NodeState> state(new NodeState(std::move(db).value(), std::move(data_key), std::move(key), e));
  auto log = sync::NodeLog::open(state->db_, state->data_key_, e.node_id);
  if (!log) return log.error();
  state->log_.emplace(std::move(log).value());
  if (auto st = state->open_stores(); !st) return st.error();
  return state;
}

shared::Status NodeState::open_stores() {
  // SQLite's page cache, bounded below its default (2000 KiB): one operation
  // touches a few dozen pages, and the rest of the file stays in the
  // operating system's cache, so a tablet's memory is not spent twice on it.
  db_.exec("PRAGMA cache_size = -" + std::to_string(kPageCacheKiB));
  auto domain = DomainStore::open(db_, *log_, data_key_, enrollment_.node_id, enrollment_.site_id);
  if (!domain) return domain.error();
  domain_ = std::move(domain).value();
  auto requests = RequestMemory::open(db_, data_key_, enrollment_.node_id);
  if (!requests) return requests.error();
  requests_.emplace(std::move(requests).value());
  return {};
}

shared::Status NodeState::apply(const sync::SignedDirective& d) {
  auto opened = sync::open_sealed_fields(crypto::to_string(d.body.payload), box_key_);
  if (!opened)
    return shared::make_error(opened.error().code, "hub directive " + std::to_string(d.body.seq) + " (" +
                                                       d.body.type + "): " + opened.error().message);
  const std::string& payload = *opened;
  if (d.body.type == "study.config") {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(payload);
    } catch (const std::exception&) {
      return shared::make_error(shared::Errc::integrity, "the study configuration directive is not JSON");
    }
    std::string doc = j.value("document", "");
    auto loaded = shared::load_study(doc);
    if (!loaded.study)
      return shared::make_error(shared::Errc::invalid_input,
                                "the hub sent a study configuration this node cannot load (" +
                                    (loaded.errors.empty() ? std::string("unknown error") : loaded.errors.front()) +
                                    "); upgrade irt-node");
    // Versions only move forward: a node that holds a version keeps it
    // against an older one (a directive delayed or replayed), and the hub
    // never sends one number with two contents.
    if (const auto* held = domain_->study()) {
      if (loaded.study->id != held->id)
        return shared::make_error(shared::Errc::integrity,
                                  "the hub sent a configuration of study " + loaded.study->id + ", but this node runs " +
                                      held->id + "; check the hub URL this node was enrolled with");
      if (loaded.study->version < held->version) return {};
      if (loaded.study->version == held->version) {
        if (doc == domain_->study_document()) return {};
        return shared::make_error(shared::Errc::integrity,
                                  "the hub sent study version " + std::to_string(held->version) +
                                      " with a content other than the one this node holds; report it to the "
                                      "central team (the hub keeps one document per version)");
      }
    }
    log_->put_sealed("study", crypto::Bytes(doc.begin(), doc.end()));
    return domain_->reload();
  }
  if (d.body.type == "roster") {
    log_->put_sealed("roster", crypto::Bytes(payload.begin(), payload.end()));
    return {};
  }
  if (d.body.type == "revoke") {
    log_->put_sealed("revoked", d.body.payload);
    return {};
  }
  if (d.body.type == shared::kGrantSlotsDirective) {
    auto g = shared::parse_grant_slots(payload);
    return g ? domain_->apply_grant_slots(*g) : shared::Status(g.error());
  }
  if (d.body.type == shared::kGrantNumbersDirective) {
    auto g = shared::parse_number_range(payload);
    return g ? domain_->apply_number_range(*g) : shared::Status(g.error());
  }
  if (d.body.type == shared::kGrantMinimizationStreamDirective) {
    auto g = shared::parse_minimization_stream(payload);
    return g ? domain_->apply_minimization_stream(*g) : shared::Status(g.error());
  }
  if (d.body.type == shared::kGrantCapAllowanceDirective) {
    auto g = shared::parse_cap_allowance(payload);
    return g ? domain_->apply_cap_allowance(*g) : shared::Status(g.error());
  }
  if (d.body.type == shared::kShipmentDirective) {
    auto s = shared::parse_shipment(payload);
    return s ? domain_->apply_shipment(*s) : shared::Status(s.error());
  }
  if (d.body.type == shared::kKitsReleaseDirective || d.body.type == shared::kKitsRejectDirective ||
      d.body.type == shared::kKitsQuarantineDirective) {
    auto k = shared::parse_kit_decision(payload);
    return k ? domain_->apply_kit_decision(*k, d.body.type) : shared::Status(k.error());
  }
  if (d.body.type == shared::kKitsRelabelDirective) {
    auto r = shared::parse_kit_relabel(payload);
    return r ? domain_->apply_kit_relabel(*r) : shared::Status(r.error());
  }
  if (d.body.type == shared::kGrantLeaseDirective) {
    auto l = shared::parse_lease(payload);
    return l ? domain_->apply_lease(*l) : shared::Status(l.error());
  }
  if (d.body.type == shared::kKitsHandoverDirective) {
    auto h = shared::parse_kit_handover(payload);
    return h ? domain_->apply_kit_handover(*h) : shared::Status(h.error());
  }
  if (d.body.type == shared::kKitsAtDepotDirective) {
    auto k = shared::parse_kits_at_depot(payload);
    return k ? domain_->apply_kits_at_depot(*k) : shared::Status(k.error());
  }
  if (d.body.type == shared::kParticipantTransferDirective) {
    auto t = shared::parse_participant_transfer(payload);
    return t ? domain_->apply_participant_transfer(*t) : shared::Status(t.error());
  }
  if (d.body.type == shared::kParticipantTransferInDirective) {
    auto t = shared::parse_participant_transfer_in(payload);
    return t ? domain_->apply_participant_transfer_in(*t) : shared::Status(t.error());
  }
  return shared::make_error(shared::Errc::invalid_input, "hub directive " + std::to_string(d.body.seq) +
                                                             " has type '" + d.body.type +
                                                             "', which this version of irt-node does not know; "
                                                             "upgrade irt-node, then sync again");
}

namespace {

// What a sync round may do with the node: hold its lock, apply a directive,
// and read the mirror back from the database when a directive rolled back.
class RoundHost final : public sync::AgentHost {
 public:
  explicit RoundHost(NodeState& state) : state_(state) {}
  std::mutex& state_mutex() override { return state_.mutex(); }
  shared::Status apply(const sync::SignedDirective& d) override { return state_.apply(d); }
  shared::Status rolled_back() override { return state_.domain().reload(); }

 private:
  NodeState& state_;
};

}  // namespace

shared::Result<sync::RoundReport> NodeState::sync_once(sync::AgentLimits limits) {
  // The address was checked at enrollment: one that no longer parses was edited in the file.
  sync::HttpTransportOptions options{.base_url = enrollment_.hub_url, .fingerprint_hex = enrollment_.hub_fingerprint};
  auto transport = sync::make_http_transport(options);
  if (!transport) return corrupt(transport.error().message);
  auto second = sync::make_http_transport(options);
  if (!second) return corrupt(second.error().message);
  RoundHost host(*this);
  sync::SyncAgent agent(*log_, key_, identity(), host, **transport, limits, second->get());
  auto report = agent.run_round();
  std::lock_guard lock(mutex_);
  last_round_refused_ = !report && agent.refusal();
  if (report) {
    // No write on every round; a kept refusal that no longer authenticates goes too.
    if (auto kept = log_->get_sealed(kSyncRefusalKey); !kept || *kept) log_->erase_sealed(kSyncRefusalKey);
  } else if (agent.refusal()) {
    auto kept = sync::sync_refusal_to_json(*agent.refusal());
    log_->put_sealed(kSyncRefusalKey, crypto::Bytes(kept.begin(), kept.end()));
  }
  return report;
}

shared::Result<std::optional<sync::SyncRefusal>> NodeState::sync_refusal() {
  auto kept = log_->get_sealed(kSyncRefusalKey);
  if (!kept) return kept.error();
  if (!*kept) return std::optional<sync::SyncRefusal>();
  auto refusal = sync::sync_refusal_from_json(crypto::to_string(**kept));
  if (!refusal) return corrupt("the kept sync refusal: " + refusal.error().message);
  return std::optional<sync::SyncRefusal>(std::move(refusal).value());
}

}  // namespace irt::node
