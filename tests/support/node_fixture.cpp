#include "tests/support/node_fixture.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "crypto/password.h"
#include "node/site_operations.h"
#include "shared/block_list.h"
#include "shared/civil_date.h"
#include "shared/kit_numbers.h"
#include "shared/minimization.h"
#include "shared/slot_slice.h"
#include "sync/certificate.h"
#include "sync/hlc.h"
#include "sync/seeded_source.h"

namespace irt::test {

namespace {

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void check(const shared::Status& st, const std::string& what) {
  if (!st) throw std::runtime_error(what + ": " + st.error().message);
}

}  // namespace

NodeFixture::NodeFixture(std::filesystem::path dir, NodeFixtureOptions options)
    : dir_(std::move(dir)),
      options_(std::move(options)),
      hub_(crypto::SigningKey::generate()),
      unblinding_(crypto::BoxKeyPair::generate()),
      node_id_(options_.site + "-N1") {
  std::filesystem::path study_path = options_.study_file;
  if (study_path.is_relative()) study_path = std::filesystem::path(IRT_SOURCE_DIR) / study_path;
  std::string document = read_text(study_path);
  auto loaded = shared::load_study(document);
  if (!loaded.study) throw std::runtime_error("fixture study does not load");
  const auto& study = *loaded.study;

  auto node_key = crypto::SigningKey::generate();
  auto now = sync::system_millis();
  sync::NodeCertificate cert;
  cert.node_id = node_id_;
  cert.site_id = options_.site;
  cert.kind = "site";
  cert.node_key = node_key.public_key();
  cert.serial = 1;
  cert.valid_from_ms = now - 60000;
  cert.valid_until_ms = now + 365LL * 86400000;
  cert = sync::sign_certificate(cert, hub_);
  node::Enrollment e;
  e.node_id = node_id_;
  e.site_id = options_.site;
  e.kind = "site";
  e.study_id = study.id;
  e.hub_url = options_.hub_url;
  e.hub_fingerprint = std::string(64, '0');
  e.certificate = cert.record;
  e.hub_key = hub_.public_key();
  e.hub_unblinding_key = unblinding_.public_key();
  auto created = node::NodeState::create(dir_, kFixturePassphrase, crypto::kTest, std::move(node_key), e);
  if (!created) throw std::runtime_error("fixture node: " + created.error().message);
  auto& state = **created;

  // A node's date never falls before the hub's time it has seen
  // (SiteOperations::today), so the directives are dated before the earliest
  // randomization made "days ago" below: as the hub sent them then.
  if (!options_.randomized_days_ago.empty())
    directives_back_ms_ = (*std::max_element(options_.randomized_days_ago.begin(), options_.randomized_days_ago.end()) + 1) *
                          std::int64_t{86'400'000};
  check(send(state, "study.config", {{"version", study.version}, {"document", document}}), "study");
  users_ = {{"carla", "coordinator"}, {"ines", "investigator"}, {"paul", "pharmacist"},
            {"nadia", "nurse"},       {"mona", "monitor"}};
  nlohmann::json roster = {{"users", nlohmann::json::array()}};
  auto hash = crypto::password_hash(kFixturePassword, crypto::kTest);
  for (const auto& [name, role] : users_)
    roster["users"].push_back({{"name", name}, {"role", role}, {"sites", nlohmann::json::array({options_.site})}, {"password_hash", hash}});
  check(send(state, "roster", roster), "roster");
  check(send(state, std::string(shared::kGrantNumbersDirective),
             shared::NumberRangeGrant{1, options_.site, 1, options_.numbers, options_.numbers > 999 ? 5 : 3}),
        "numbers");

  crypto::Bytes seed(32, 7);
  if (study.randomization.method == shared::Method::minimization) {
    auto config = shared::minimization_config(study);
    if (!config) throw std::runtime_error("fixture minimization config");
    shared::MinimizationStreamGrant g;
    g.stream_id = 1;
    g.seed_hex = crypto::to_hex(seed);
    g.allowance = options_.slots_per_stratum * 4;
    for (const auto& f : config->factors)
      g.baseline.push_back(std::vector<std::vector<double>>(f.levels.size(),
                                                            std::vector<double>(config->allocation.size(), 0.0)));
    check(send(state, std::string(shared::kGrantMinimizationStreamDirective), g), "stream");
  } else {
    sync::SeededSource source(seed);
    auto list = shared::generate_list(study, source, options_.slots_per_stratum);
    if (!list) throw std::runtime_error("fixture list: " + list.error().message);
    shared::SliceLedger ledger(*list);
    shared::GrantSlots grants;
    grants.study_version = study.version;
    std::size_t site_factor = list->strata.factors.size();
    for (std::size_t i = 0; i < list->strata.factors.size(); ++i)
      if (list->strata.factors[i].id == shared::kSiteFactor) site_factor = i;
    for (std::size_t s = 0; s < list->strata.count(); ++s) {
      if (site_factor < list->strata.factors.size()) {
        auto levels = list->strata.levels_of(s);
        if (list->strata.factors[site_factor].levels[levels[site_factor]] != options_.site) continue;
      }
      auto g = ledger.grant(node_id_, static_cast<std::uint32_t>(s), options_.slots_per_stratum);
      if (!g) throw std::runtime_error("fixture grant: " + g.error().message);
      grants.grants.push_back(*g);
    }
    check(send(state, std::string(shared::kGrantSlotsDirective), grants), "slots");
  }
  shared::CapAllowanceGrant allowances;
  for (const auto& c : study.caps) {
    if (c.scope == shared::CapScope::arm) allowances.allowances.push_back({c.scope, c.arm, options_.cap_allowance});
    if (c.scope == shared::CapScope::cohort) allowances.allowances.push_back({c.scope, c.cohort, options_.cap_allowance});
  }
  if (!allowances.allowances.empty())
    check(send(state, std::string(shared::kGrantCapAllowanceDirective), allowances), "cap allowances");

  // Kits: numbers from a kit list, so they look like the real ones.
  std::vector<shared::KitTypeCount> counts;
  int extra = options_.expired_and_near_expiry ? 2 : 0;
  for (const auto& kt : study.kit_types)
    counts.push_back({kt.id, static_cast<std::size_t>(options_.kits_per_type + extra + options_.pending_kits_per_type)});
  sync::SeededSource kit_source(crypto::Bytes(32, 9));
  auto kit_list = shared::generate_kit_list(counts, kit_source);
  if (!kit_list) throw std::runtime_error("fixture kit list");
  auto today = shared::day_of_millis(now);
  std::map<std::string, int> used;
  first_ = {"SHP-0001", "initial", shared::format_date(today - 3), {}};
  pending_ = {"SHP-0002", options_.pending_kind, shared::format_date(today - 1), {}};
  int lot_index = 0;
  std::map<std::string, std::string> lots;
  for (const auto& kt : study.kit_types) lots[kt.id] = "24L" + std::to_string(101 + 17 * lot_index++);
  for (const auto& k : kit_list->kits) {
    int n = used[k.kit_type]++;
    shared::ShipmentKit kit{std::to_string(k.number), k.kit_type, lots[k.kit_type], shared::format_date(today + 400 + n)};
    if (n < options_.kits_per_type) {
      first_.kits.push_back(kit);
    } else if (n < options_.kits_per_type + extra) {
      bool expired = n == options_.kits_per_type;
      kit.expiry = shared::format_date(expired ? today - 5 : today + 30);
      if (expired && expired_kit.empty()) expired_kit = kit.kit_number;
      if (!expired && near_expiry_kit.empty()) near_expiry_kit = kit.kit_number;
      first_.kits.push_back(kit);
    } else {
      pending_.kits.push_back(kit);
    }
  }
  check(send(state, std::string(shared::kShipmentDirective), first_), "shipment 1");
  if (!pending_.kits.empty()) check(send(state, std::string(shared::kShipmentDirective), pending_), "shipment 2");
  if (options_.receive_first_shipment) {
    node::SiteOperations ops(state);
    std::vector<node::KitReceipt> receipts;
    for (const auto& k : first_.kits) receipts.push_back({k.kit_number, "received"});
    auto r = ops.receive_shipment({"carla", "coordinator"}, first_.shipment_id, receipts, {});
    if (!r) throw std::runtime_error("fixture receipt: " + r.error().message);
  }
  for (int days : options_.randomized_days_ago) {
    node::SiteOperations past(state, [days] { return sync::system_millis() - std::int64_t{days} * 86'400'000; });
    const node::Actor carla{"carla", "coordinator"};
    const auto& first_factor = study.factors.front();
    std::map<std::string, std::string> factors;
    if (first_factor.id != "site" && first_factor.id != "country") factors[first_factor.id] = first_factor.levels.back();
    auto screened = past.screen(carla, {factors, std::vector<std::string>(study.eligibility.size(), "yes"), ""});
    if (!screened) throw std::runtime_error("fixture screening: " + screened.error().message);
    auto signature = node::check_password(node::find_user(state.log(), "carla"), "carla", kFixturePassword);
    auto r = past.randomize(carla, screened->participant.number, signature);
    if (!r) throw std::runtime_error("fixture randomization: " + r.error().message);
  }
  if (options_.relabel_kits > 0) {
    shared::KitRelabel relabel{first_.kits.front().lot, shared::format_date(today + 500), {}, "stability data"};
    for (const auto& k : first_.kits) {
      const auto* kit = state.domain().find_kit(k.kit_number);
      if (k.lot == relabel.lot && kit && kit->status == node::KitStatus::available && k.kit_number != expired_kit &&
          k.kit_number != near_expiry_kit && static_cast<int>(relabel.kits.size()) < options_.relabel_kits)
        relabel.kits.push_back(k.kit_number);
    }
    check(send(state, std::string(shared::kKitsRelabelDirective), relabel), "relabel");
    relabel_kits = relabel.kits;
    relabel_expiry = relabel.expiry;
  }
}

std::unique_ptr<node::NodeState> NodeFixture::open() const {
  auto s = node::NodeState::open(dir_, kFixturePassphrase);
  if (!s) throw std::runtime_error("fixture open: " + s.error().message);
  return std::move(s).value();
}

shared::Status NodeFixture::send(node::NodeState& state, const std::string& type, const nlohmann::json& payload) {
  // Sealed to the node's key as the hub seals it (hub/directive_outbox.h).
  auto text = sync::seal_fields(type, payload.dump(), crypto::box_key_of(state.key().public_key()));
  return send_sealed(state, type, text);
}

shared::Status NodeFixture::send_sealed(node::NodeState& state, const std::string& type, const std::string& text) {
  sync::DirectiveBody body;
  body.node_id = node_id_;
  body.seq = state.log().applied_directive_seq() + 1;
  const auto issued = sync::system_millis() - directives_back_ms_;
  body.hlc = sync::HybridClock::pack(issued, 0);
  body.issued_ms = issued;
  body.type = type;
  body.payload = crypto::Bytes(text.begin(), text.end());
  auto d = sync::sign_directive(std::move(body), hub_);
  return state.log().apply_directive(d, state.key(), [&](const sync::SignedDirective& x) { return state.apply(x); });
}

nlohmann::json NodeFixture::summary() const {
  auto numbers = [](const shared::Shipment& s) {
    std::vector<std::string> out;
    for (const auto& k : s.kits) out.push_back(k.kit_number);
    return out;
  };
  return {{"node_id", node_id_},
          {"passphrase", kFixturePassphrase},
          {"password", kFixturePassword},
          {"users", users_},
          {"first_shipment", {{"id", first_.shipment_id}, {"kits", numbers(first_)}}},
          {"pending_shipment", {{"id", pending_.shipment_id}, {"kits", numbers(pending_)}}},
          {"expired_kit", expired_kit},
          {"near_expiry_kit", near_expiry_kit},
          {"relabel_kits", relabel_kits},
          {"relabel_expiry", relabel_expiry}};
}

}  // namespace irt::test
