#include "node/domain_store.h"

#include <algorithm>

#include "crypto/hash.h"
#include "shared/numbering.h"
#include "sync/hlc.h"

namespace irt::node {

namespace {

using nlohmann::json;
using shared::Errc;
using shared::make_error;

const std::vector<storage::Migration> kDomainStoreMigrations = {
    {1, R"(
      CREATE TABLE node_participants (id INTEGER PRIMARY KEY, lookup BLOB NOT NULL UNIQUE,
                                      status TEXT NOT NULL, sealed BLOB NOT NULL);
      CREATE TABLE node_kits (kit_number TEXT PRIMARY KEY, shipment_id TEXT NOT NULL, status TEXT NOT NULL,
                              expiry TEXT NOT NULL, participant INTEGER NOT NULL DEFAULT 0, sealed BLOB NOT NULL);
      CREATE TABLE node_slots (stratum INTEGER NOT NULL, slot INTEGER NOT NULL, state TEXT NOT NULL,
                               participant INTEGER NOT NULL DEFAULT 0, sealed BLOB NOT NULL,
                               PRIMARY KEY (stratum, slot));
      CREATE TABLE node_number_ranges (range_id INTEGER PRIMARY KEY, prefix TEXT NOT NULL, first INTEGER NOT NULL,
                                       last INTEGER NOT NULL, digits INTEGER NOT NULL, next INTEGER NOT NULL);
      CREATE TABLE node_streams (stream_id INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
      CREATE TABLE node_shipments (shipment_id TEXT PRIMARY KEY, kind TEXT NOT NULL, shipped_on TEXT NOT NULL,
                                   announced_ms INTEGER NOT NULL);
    )"},
    // One sealed row: the allowances under arm and cohort caps (arm ids reveal which arm is capped here).
    {2, R"(
      CREATE TABLE node_cap_allowances (id INTEGER PRIMARY KEY CHECK (id = 1), sealed BLOB NOT NULL);
    )"},
    // Return shipments this node sent (kind "return"): where to, by which courier, with which tracking number.
    {3, R"(
      ALTER TABLE node_shipments ADD COLUMN depot TEXT NOT NULL DEFAULT '';
      ALTER TABLE node_shipments ADD COLUMN courier TEXT NOT NULL DEFAULT '';
      ALTER TABLE node_shipments ADD COLUMN tracking TEXT NOT NULL DEFAULT '';
    )"},
    // What the depot reported of a return shipment's kits (kits.at_depot): {"received": n, "missing": m, ...}.
    {4, R"(
      ALTER TABLE node_shipments ADD COLUMN at_depot TEXT NOT NULL DEFAULT '{}';
    )"},
};

// The sealed key (sync/node_log.h put_sealed) of the lease held.
constexpr const char* kLeaseKey = "lease";

shared::Error damaged(const std::string& what) {
  return make_error(Errc::integrity, "node data is damaged (" + what +
                                         " does not authenticate: edited, moved or corrupted); restore the data "
                                         "directory from backup and report it to the central team");
}

}  // namespace

DomainStore::DomainStore(storage::Database& db, sync::NodeLog& log, const crypto::AeadKey& key, std::string node_id,
                         std::string site_id)
    : db_(db), log_(log), key_(key), node_id_(std::move(node_id)), site_id_(std::move(site_id)) {
  auto h = crypto::hash_domain("irt/node/lookup-key/v1", key_.bytes().view());
  lookup_key_.assign(h.bytes.begin(), h.bytes.end());
}

shared::Result<std::unique_ptr<DomainStore>> DomainStore::open(storage::Database& db, sync::NodeLog& log,
                                                               const crypto::AeadKey& data_key, std::string node_id,
                                                               std::string site_id) {
  if (auto st = db.migrate("node_domain", kDomainStoreMigrations); !st) return st.error();
  std::unique_ptr<DomainStore> store(new DomainStore(db, log, data_key, std::move(node_id), std::move(site_id)));
  if (auto st = store->reload(); !st) return st.error();
  return store;
}

crypto::Bytes DomainStore::lookup_tag(const std::string& number) const {
  return crypto::blake2b(crypto::as_bytes(number), 16, lookup_key_);
}

std::string DomainStore::participant_ad(std::int64_t id, const std::string& status) const {
  return "irt/node/" + node_id_ + "/participant/" + std::to_string(id) + "/" + status;
}
std::string DomainStore::kit_ad(const KitRecord& k) const {
  return "irt/node/" + node_id_ + "/kit/" + k.number + "/" + k.shipment + "/" + shared::to_string(k.status) + "/" +
         k.expiry + "/" +
         std::to_string(k.participant);
}
std::string DomainStore::slot_ad(const SlotRecord& s) const {
  return "irt/node/" + node_id_ + "/slot/" + std::to_string(s.stratum) + "/" + std::to_string(s.slot) + "/" + s.state +
         "/" + std::to_string(s.participant);
}
std::string DomainStore::stream_ad(std::uint64_t id) const {
  return "irt/node/" + node_id_ + "/stream/" + std::to_string(id);
}

std::string DomainStore::allowances_ad() const { return "irt/node/" + node_id_ + "/cap_allowances"; }

crypto::Bytes DomainStore::event_payload(nlohmann::json payload) const {
  if (study_) payload["study_version"] = study_->version;
  auto text = payload.dump();
  return crypto::Bytes(text.begin(), text.end());
}

shared::Status DomainStore::load_study() {
  auto doc = log_.get_sealed("study");
  if (!doc) return doc.error();  // damaged is not "no study yet"
  if (!*doc) {
    study_.reset();
    strata_.reset();
    study_doc_.clear();
    return {};
  }
  std::string text = crypto::to_string(**doc);
  if (text == study_doc_ && study_) return {};
  auto loaded = shared::load_study(text);
  if (!loaded.study)
    return make_error(Errc::integrity, "the stored study configuration no longer loads; upgrade irt-node");
  auto strata = shared::strata_of(*loaded.study);
  if (!strata) return strata.error();
  study_ = std::move(*loaded.study);
  strata_ = std::move(strata).value();
  study_doc_ = std::move(text);
  return {};
}

shared::Status DomainStore::reload() {
  if (auto st = load_study(); !st) return st;
  lease_.reset();
  if (auto held = log_.get_sealed(kLeaseKey); !held) {
    return held.error();
  } else if (*held) {
    auto lease = shared::parse_lease(crypto::to_string(**held));
    if (!lease) return damaged("the randomization lease");
    lease_ = *lease;
  }
  participants_.clear();
  by_number_.clear();
  kits_.clear();
  slots_.clear();
  ranges_.clear();
  stream_.reset();
  allowances_.clear();
  shipments_.clear();
  try {
    {
      auto st = db_.prepare("SELECT id, status, sealed FROM node_participants ORDER BY id");
      while (st.step()) {
        auto id = st.int64(0);
        auto status = st.text(1);
        auto opened = crypto::aead_open(key_, st.blob(2), crypto::as_bytes(participant_ad(id, status)));
        if (!opened) return damaged("participant row " + std::to_string(id));
        ParticipantRecord p = json::parse(crypto::to_string(*opened)).get<ParticipantRecord>();
        if (shared::to_string(p.status) != status) return damaged("participant row " + std::to_string(id));
        p.id = id;
        by_number_[p.number] = id;
        participants_.emplace(id, std::move(p));
      }
    }
    {
      auto st = db_.prepare("SELECT kit_number, shipment_id, status, expiry, participant, sealed FROM node_kits");
      while (st.step()) {
        KitRecord k;
        k.number = st.text(0);
        k.shipment = st.text(1);
        auto status = shared::parse_kit_status(st.text(2));
        if (!status) return damaged("kit " + k.number);
        k.status = *status;
        k.expiry = st.text(3);
        k.participant = st.int64(4);
        auto opened = crypto::aead_open(key_, st.blob(5), crypto::as_bytes(kit_ad(k)));
        if (!opened) return damaged("kit " + k.number);
        auto j = json::parse(crypto::to_string(*opened));
        k.kit_type = j.at("kit_type");
        k.lot = j.at("lot");
        k.visit = j.at("visit");
        k.units_returned = j.at("units_returned");
        k.note = j.at("note");
        k.relabel = j.value("relabel", std::string());
        k.location = j.value("location", "");  // absent in rows written before storage locations
        kits_.emplace(k.number, std::move(k));
      }
    }
    {
      auto st = db_.prepare("SELECT stratum, slot, state, participant, sealed FROM node_slots");
      while (st.step()) {
        SlotRecord s;
        s.stratum = static_cast<std::uint32_t>(st.int64(0));
        s.slot = static_cast<std::uint32_t>(st.int64(1));
        s.state = st.text(2);
        s.participant = st.int64(3);
        auto opened = crypto::aead_open(key_, st.blob(4), crypto::as_bytes(slot_ad(s)));
        if (!opened) return damaged("slot " + std::to_string(s.slot) + " of stratum " + std::to_string(s.stratum + 1));
        auto j = json::parse(crypto::to_string(*opened));
        s.arm = j.at("arm");
        s.block = j.at("block");
        s.block_size = j.at("block_size");
        s.grant_id = j.at("grant_id");
        slots_.emplace(std::make_pair(s.stratum, s.slot), std::move(s));
      }
    }
    {
      auto st = db_.prepare("SELECT range_id, prefix, first, last, digits, next FROM node_number_ranges ORDER BY range_id");
      while (st.step()) {
        NumberRange r;
        r.grant.range_id = static_cast<std::uint64_t>(st.int64(0));
        r.grant.prefix = st.text(1);
        r.grant.first = static_cast<std::uint32_t>(st.int64(2));
        r.grant.last = static_cast<std::uint32_t>(st.int64(3));
        r.grant.digits = static_cast<int>(st.int64(4));
        r.next = static_cast<std::uint32_t>(st.int64(5));
        ranges_.push_back(std::move(r));
      }
    }
    {
      auto st = db_.prepare("SELECT stream_id, sealed FROM node_streams ORDER BY stream_id DESC LIMIT 1");
      if (st.step()) {
        auto id = static_cast<std::uint64_t>(st.int64(0));
        auto opened = crypto::aead_open(key_, st.blob(1), crypto::as_bytes(stream_ad(id)));
        if (!opened) return damaged("minimization stream " + std::to_string(id));
        auto j = json::parse(crypto::to_string(*opened));
        auto grant = shared::parse_minimization_stream(j.at("grant").dump());
        if (!grant) return damaged("minimization stream " + std::to_string(id));
        stream_ = StreamState{*grant, j.at("position"), j.at("decisions")};
      }
    }
    {
      auto st = db_.prepare("SELECT sealed FROM node_cap_allowances WHERE id = 1");
      if (st.step()) {
        auto opened = crypto::aead_open(key_, st.blob(0), crypto::as_bytes(allowances_ad()));
        if (!opened) return damaged("the cap allowances");
        auto grant = shared::parse_cap_allowance(crypto::to_string(*opened));
        if (!grant) return damaged("the cap allowances");
        for (const auto& a : grant->allowances) allowances_[{a.scope, a.id}] = a.granted;
      }
    }
    {
      auto st = db_.prepare(
          "SELECT shipment_id, kind, shipped_on, announced_ms, depot, courier, tracking, at_depot FROM node_shipments");
      while (st.step())
        shipments_[st.text(0)] = {st.text(0), st.text(1), st.text(2), st.int64(3), st.text(4), st.text(5), st.text(6),
                                  json::parse(st.text(7)).get<std::map<std::string, int>>()};
    }
  } catch (const json::exception&) {
    return damaged("a stored record");
  }
  return {};
}

const ParticipantRecord* DomainStore::find_participant(const std::string& number) const {
  auto it = by_number_.find(number);
  return it == by_number_.end() ? nullptr : &participants_.at(it->second);
}

const ParticipantRecord* DomainStore::participant_by_id(std::int64_t id) const {
  auto it = participants_.find(id);
  return it == participants_.end() ? nullptr : &it->second;
}

void DomainStore::save_participant(ParticipantRecord& p) {
  std::string plain = json(p).dump();
  if (p.id == 0) {
    db_.prepare("INSERT INTO node_participants(lookup, status, sealed) VALUES(?, '', x'')")
        .bind_all(lookup_tag(p.number))
        .run();
    p.id = db_.last_insert_rowid();
  }
  const std::string status = shared::to_string(p.status);
  auto sealed = crypto::aead_seal(key_, crypto::as_bytes(plain), crypto::as_bytes(participant_ad(p.id, status)));
  db_.prepare("UPDATE node_participants SET status = ?, sealed = ? WHERE id = ?").bind_all(status, sealed, p.id).run();
  by_number_[p.number] = p.id;
  participants_[p.id] = p;
}

const KitRecord* DomainStore::find_kit(const std::string& number) const {
  auto it = kits_.find(number);
  return it == kits_.end() ? nullptr : &it->second;
}

void DomainStore::save_kit(const KitRecord& k) {
  json j = {{"kit_type", k.kit_type}, {"lot", k.lot}, {"visit", k.visit}, {"units_returned", k.units_returned},
            {"note", k.note}, {"location", k.location}};
  if (!k.relabel.empty()) j["relabel"] = k.relabel;
  auto sealed = crypto::aead_seal(key_, crypto::as_bytes(j.dump()), crypto::as_bytes(kit_ad(k)));
  db_.prepare("INSERT INTO node_kits(kit_number, shipment_id, status, expiry, participant, sealed) "
              "VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(kit_number) DO UPDATE SET shipment_id = excluded.shipment_id, "
              "status = excluded.status, expiry = excluded.expiry, participant = excluded.participant, "
              "sealed = excluded.sealed")
      .bind_all(k.number, k.shipment, shared::to_string(k.status), k.expiry, k.participant, sealed)
      .run();
  kits_[k.number] = k;
}

const SlotRecord* DomainStore::next_free_slot(std::uint32_t stratum) const {
  for (auto it = slots_.lower_bound({stratum, 0}); it != slots_.end() && it->first.first == stratum; ++it)
    if (it->second.state == kSlotFree) return &it->second;
  return nullptr;
}

std::size_t DomainStore::free_slots(std::uint32_t stratum) const {
  std::size_t n = 0;
  for (auto it = slots_.lower_bound({stratum, 0}); it != slots_.end() && it->first.first == stratum; ++it)
    n += it->second.state == kSlotFree;
  return n;
}

std::map<std::uint32_t, std::size_t> DomainStore::free_slots_by_stratum() const {
  std::map<std::uint32_t, std::size_t> out;
  for (const auto& [key, s] : slots_) out[key.first] += s.state == kSlotFree;
  return out;
}

void DomainStore::save_slot(const SlotRecord& s) {
  json j = {{"arm", s.arm}, {"block", s.block}, {"block_size", s.block_size}, {"grant_id", s.grant_id}};
  auto sealed = crypto::aead_seal(key_, crypto::as_bytes(j.dump()), crypto::as_bytes(slot_ad(s)));
  db_.prepare("INSERT INTO node_slots(stratum, slot, state, participant, sealed) VALUES(?, ?, ?, ?, ?) "
              "ON CONFLICT(stratum, slot) DO UPDATE SET state = excluded.state, participant = excluded.participant, "
              "sealed = excluded.sealed")
      .bind_all(static_cast<std::int64_t>(s.stratum), static_cast<std::int64_t>(s.slot), s.state, s.participant,
                sealed)
      .run();
  slots_[{s.stratum, s.slot}] = s;
}

std::optional<std::string> DomainStore::next_number() const {
  for (const auto& r : ranges_)
    if (r.next <= r.grant.last) return shared::format_participant_number(r.grant.prefix, r.grant.digits, r.next);
  return std::nullopt;
}

void DomainStore::consume_number() {
  for (auto& r : ranges_) {
    if (r.next > r.grant.last) continue;
    ++r.next;
    db_.prepare("UPDATE node_number_ranges SET next = ? WHERE range_id = ?")
        .bind_all(static_cast<std::int64_t>(r.next), static_cast<std::int64_t>(r.grant.range_id))
        .run();
    return;
  }
}

std::uint64_t DomainStore::numbers_left() const {
  std::uint64_t n = 0;
  for (const auto& r : ranges_)
    if (r.next <= r.grant.last) n += r.grant.last - r.next + 1;
  return n;
}

void DomainStore::save_stream(const StreamState& s) {
  json j = {{"grant", s.grant}, {"position", s.position}, {"decisions", s.decisions}};
  auto sealed = crypto::aead_seal(key_, crypto::as_bytes(j.dump()), crypto::as_bytes(stream_ad(s.grant.stream_id)));
  db_.prepare("INSERT INTO node_streams(stream_id, sealed) VALUES(?, ?) "
              "ON CONFLICT(stream_id) DO UPDATE SET sealed = excluded.sealed")
      .bind_all(static_cast<std::int64_t>(s.grant.stream_id), sealed)
      .run();
  stream_ = s;
}

std::optional<std::uint64_t> DomainStore::allowance_left(shared::CapScope scope, const std::string& id) const {
  if (!study_ || !std::any_of(study_->caps.begin(), study_->caps.end(), [&](const shared::Cap& c) {
        return c.scope == scope && (scope == shared::CapScope::arm ? c.arm : c.cohort) == id;
      }))
    return std::nullopt;
  auto it = allowances_.find({scope, id});
  std::uint64_t granted = it == allowances_.end() ? 0 : it->second, used = 0;
  for (const auto& [row, p] : participants_)
    if (!p.arm.empty() && p.transferred_from.empty() && (scope == shared::CapScope::arm ? p.arm : p.cohort) == id) ++used;
  return granted > used ? granted - used : 0;
}

const SlotRecord* DomainStore::next_open_slot(std::uint32_t stratum, const std::map<std::string, std::string>& factors,
                                              shared::Days day) const {
  for (auto it = slots_.lower_bound({stratum, 0}); it != slots_.end() && it->first.first == stratum; ++it)
    if (it->second.state == kSlotFree && arm_open(it->second.arm, factors, day)) return &it->second;
  return nullptr;
}

void DomainStore::save_allowances() {
  shared::CapAllowanceGrant all;
  for (const auto& [key, granted] : allowances_) all.allowances.push_back({key.first, key.second, granted});
  json j = all;
  auto sealed = crypto::aead_seal(key_, crypto::as_bytes(j.dump()), crypto::as_bytes(allowances_ad()));
  db_.prepare("INSERT INTO node_cap_allowances(id, sealed) VALUES(1, ?) ON CONFLICT(id) DO UPDATE SET sealed = "
              "excluded.sealed")
      .bind_all(sealed)
      .run();
}

// ---- hub directives

shared::Status DomainStore::apply_grant_slots(const shared::GrantSlots& g) {
  if (auto st = load_study(); !st) return st;
  if (!study_ || !strata_)
    return make_error(Errc::conflict, "slots arrived before the study configuration; the next sync brings it first");
  for (const auto& grant : g.grants) {
    if (grant.node != node_id_)
      return make_error(Errc::integrity, "a slot grant names node " + grant.node + ", not this node; report it");
    if (grant.stratum >= strata_->count() || strata_->label(grant.stratum) != grant.stratum_label)
      return make_error(Errc::integrity, "a slot grant names stratum " + grant.stratum_label +
                                             ", which this node's study version does not define; sync again after "
                                             "the study update");
    for (const auto& s : grant.slots) {
      if (!study_->find_arm(s.arm))
        return make_error(Errc::integrity, "a slot grant names an arm the study does not define; report it");
      if (slots_.count({grant.stratum, s.slot}))
        return make_error(Errc::integrity, "slot " + std::to_string(s.slot) + " of stratum " + grant.stratum_label +
                                               " was granted twice; report it to the central team");
    }
  }
  for (const auto& grant : g.grants)
    for (const auto& s : grant.slots)
      save_slot({grant.stratum, s.slot, s.block, s.block_size, s.arm, kSlotFree, 0, grant.grant_id});
  for (const auto& v : g.voids) {
    for (auto slot : v.slots) {
      auto it = slots_.find({v.stratum, slot});
      if (it == slots_.end() || it->second.state != kSlotFree) continue;  // a used slot stays used: it is a fact
      auto s = it->second;
      s.state = kSlotVoided;
      save_slot(s);
    }
  }
  return {};
}

shared::Status DomainStore::apply_number_range(const shared::NumberRangeGrant& g) {
  if (g.prefix != site_id_)
    return make_error(Errc::integrity, "a number range for site " + g.prefix + " was sent to a node of site " +
                                           site_id_ + "; report it to the central team");
  for (const auto& r : ranges_)
    if (r.grant.range_id == g.range_id) return {};
  db_.prepare("INSERT INTO node_number_ranges(range_id, prefix, first, last, digits, next) VALUES(?, ?, ?, ?, ?, ?)")
      .bind_all(static_cast<std::int64_t>(g.range_id), g.prefix, static_cast<std::int64_t>(g.first),
                static_cast<std::int64_t>(g.last), g.digits, static_cast<std::int64_t>(g.first))
      .run();
  ranges_.push_back({g, g.first});
  return {};
}

shared::Status DomainStore::apply_minimization_stream(const shared::MinimizationStreamGrant& g) {
  if (stream_ && g.stream_id <= stream_->grant.stream_id)
    return make_error(Errc::integrity, "minimization stream " + std::to_string(g.stream_id) +
                                           " is not newer than the one held; report it to the central team");
  save_stream({g, 0, 0});
  return {};
}

shared::Status DomainStore::apply_cap_allowance(const shared::CapAllowanceGrant& g) {
  if (auto st = load_study(); !st) return st;
  if (!study_)
    return make_error(Errc::conflict, "cap allowances arrived before the study configuration; the next sync brings "
                                      "it first");
  for (const auto& a : g.allowances) {
    // The message never names an arm.
    if (a.scope == shared::CapScope::arm && !study_->find_arm(a.id))
      return make_error(Errc::integrity, "a cap allowance names an arm the study does not define; report it");
    if (a.scope == shared::CapScope::cohort && !study_->find_cohort(a.id))
      return make_error(Errc::integrity, "a cap allowance names cohort '" + a.id +
                                             "', which the study does not define; sync again after the study update");
  }
  // Each total replaces the one held: the hub's count is the authority.
  for (const auto& a : g.allowances) allowances_[{a.scope, a.id}] = a.granted;
  save_allowances();
  return {};
}

shared::Status DomainStore::apply_lease(const shared::RandomizationLease& l) {
  if (lease_ && l.lease_id <= lease_->lease_id) return {};
  nlohmann::json j = l;
  auto text = j.dump();
  log_.put_sealed(kLeaseKey, crypto::Bytes(text.begin(), text.end()));
  lease_ = l;
  return {};
}

std::string return_shipment_id(const std::string& node_id, std::uint64_t event_seq) {
  return "RET-" + node_id + "-" + std::to_string(event_seq);
}

void DomainStore::save_return_shipment(const ShipmentRecord& s) {
  db_.prepare("INSERT INTO node_shipments(shipment_id, kind, shipped_on, announced_ms, depot, courier, tracking) "
              "VALUES(?, ?, ?, ?, ?, ?, ?)")
      .bind_all(s.id, s.kind, s.shipped_on, s.announced_ms, s.depot, s.courier, s.tracking)
      .run();
  shipments_[s.id] = s;
}

shared::Status DomainStore::apply_shipment(const shared::Shipment& s) {
  if (auto st = load_study(); !st) return st;
  if (shipments_.count(s.shipment_id)) return {};
  for (const auto& k : s.kits) {
    if (kits_.count(k.kit_number))
      return make_error(Errc::integrity, "shipment " + s.shipment_id + " lists kit " + k.kit_number +
                                             ", already in this node's custody; report it to the central team");
    if (study_ && !study_->find_kit_type(k.kit_type))
      return make_error(Errc::integrity, "shipment " + s.shipment_id + " lists kit " + k.kit_number +
                                             " of a kit type the study does not define; report it");
  }
  auto now = sync::system_millis();
  db_.prepare("INSERT INTO node_shipments(shipment_id, kind, shipped_on, announced_ms) VALUES(?, ?, ?, ?)")
      .bind_all(s.shipment_id, s.kind, s.shipped_on, now)
      .run();
  shipments_[s.shipment_id] = {s.shipment_id, s.kind, s.shipped_on, now};
  for (const auto& k : s.kits) {
    KitRecord rec;
    rec.number = k.kit_number;
    rec.shipment = s.shipment_id;
    rec.status = KitStatus::expected;
    rec.expiry = k.expiry;
    rec.kit_type = k.kit_type;
    rec.lot = k.lot;
    save_kit(rec);
  }
  return {};
}

shared::Status DomainStore::apply_kit_decision(const shared::KitDecision& d, std::string_view type) {
  const bool release = type == shared::kKitsReleaseDirective, hold = type == shared::kKitsQuarantineDirective;
  for (const auto& number : d.kits) {
    auto it = kits_.find(number);
    // A kit used while the decision was on its way stays as recorded: the hub
    // sees the fact and raises a deviation. A rejection also takes kits in
    // stock (a recall, an excursion the courier reported): never dispensed
    // again; a hold takes only those.
    if (it == kits_.end()) continue;
    const auto status = it->second.status;
    const bool takes = hold      ? status == KitStatus::available
                       : release ? status == KitStatus::quarantined
                                 : status == KitStatus::quarantined || status == KitStatus::available;
    if (!takes) continue;
    auto k = it->second;
    k.status = hold ? KitStatus::quarantined : release ? KitStatus::available : KitStatus::rejected;
    k.note = (hold ? "on hold by the hub: " : release ? "released by the hub: " : "rejected by the hub: ") + d.reason;
    save_kit(k);
  }
  return {};
}

shared::Status DomainStore::apply_kit_relabel(const shared::KitRelabel& r) {
  for (const auto& number : r.kits) {
    auto it = kits_.find(number);
    // A kit dispensed, destroyed or gone meanwhile keeps the label it had.
    if (it == kits_.end()) continue;
    auto k = it->second;
    if (k.status != KitStatus::expected && k.status != KitStatus::received && k.status != KitStatus::available &&
        k.status != KitStatus::quarantined)
      continue;
    k.expiry = r.expiry;
    k.relabel = r.expiry;
    save_kit(k);
  }
  return {};
}

shared::Status DomainStore::apply_kit_handover(const shared::KitHandover& h) {
  for (const auto& number : h.kits) {
    auto it = kits_.find(number);
    if (it == kits_.end() || it->second.status != KitStatus::shipped) continue;
    if (h.outcome == "moved") {
      db_.prepare("DELETE FROM node_kits WHERE kit_number = ?").bind_all(number).run();
      kits_.erase(it);
      continue;
    }
    auto k = it->second;
    k.status = KitStatus::available;
    k.note = "handover to node " + h.to_node + " refused by the hub: " + h.reason;
    save_kit(k);
  }
  return {};
}

shared::Status DomainStore::apply_kits_at_depot(const shared::KitsAtDepot& d) {
  auto shipment = shipments_.find(d.shipment_id);
  for (const auto& k : d.kits) {
    auto it = kits_.find(k.kit);
    if (it == kits_.end() || it->second.status != KitStatus::shipped) continue;
    db_.prepare("DELETE FROM node_kits WHERE kit_number = ?").bind_all(k.kit).run();
    kits_.erase(it);
    if (shipment != shipments_.end()) ++shipment->second.at_depot[shared::to_string(k.condition)];
  }
  // The return shipment keeps what the depot found, for the site's shipment history.
  if (shipment != shipments_.end())
    db_.prepare("UPDATE node_shipments SET at_depot = ? WHERE shipment_id = ?")
        .bind_all(json(shipment->second.at_depot).dump(), d.shipment_id)
        .run();
  return {};
}

shared::Status DomainStore::apply_participant_transfer(const shared::ParticipantTransferDecision& d) {
  auto it = by_number_.find(d.participant);
  if (it == by_number_.end()) return {};  // nothing here to move or keep
  auto p = participants_.at(it->second);
  if (d.outcome == "rejected") {
    p.transfer_decision = "transfer to site " + d.to_site + " rejected by " + d.decided_by + ": " + d.reason;
    p.transfer_to.clear();
    p.transfer_reason.clear();
    save_participant(p);
    return {};
  }
  // The facts recorded here stay; only who serves the participant changes.
  p.status = ParticipantStatus::transferred;
  p.transfer_to = d.to_site;
  p.transfer_decision = "moved to site " + d.to_site + " (node " + d.to_node + "), approved by " + d.decided_by +
                        ": " + d.reason;
  save_participant(p);
  for (const auto& number : d.kits) {
    auto k = kits_.find(number);
    if (k == kits_.end() || k->second.participant != p.id) continue;
    db_.prepare("DELETE FROM node_kits WHERE kit_number = ?").bind_all(number).run();
    kits_.erase(k);
  }
  return {};
}

shared::Status DomainStore::apply_participant_transfer_in(const shared::ParticipantTransferIn& t) {
  if (auto st = load_study(); !st) return st;
  // A participant that left this node and comes back takes its record anew;
  // one it still serves is already here (a directive applied once more).
  if (by_number_.count(t.participant) &&
      participants_.at(by_number_.at(t.participant)).status != ParticipantStatus::transferred)
    return {};
  ParticipantRecord p;
  if (by_number_.count(t.participant)) p.id = by_number_.at(t.participant);
  p.number = t.participant;
  p.status = t.status;
  p.factors = t.factors;
  p.eligibility = t.eligibility;
  p.cohort = t.cohort;
  p.screened_on = t.screened_on;
  p.screened_by = t.screened_by;
  p.randomization_number = t.randomization_number;
  p.randomized_on = t.randomized_on;
  p.randomized_by = t.randomized_by;
  p.arm = t.arm;
  p.stratum = t.stratum.value_or(0);
  for (const auto& v : t.visits) p.visits.push_back({v.visit, v.date, v.kits, v.deviation, v.by, v.missed_reason, v.order_reason});
  p.unblinded = t.unblinded;
  p.unblinded_on = t.unblinded_on;
  p.unblinded_by = t.unblinded_by;
  p.transfer_reason = t.reason;
  p.transfer_decision = "transferred from site " + t.from_site + " (node " + t.from_node + ")";
  p.transferred_from = t.from_site;
  p.study_version = t.study_version;
  save_participant(p);
  for (const auto& k : t.kits) {
    KitRecord rec;
    rec.number = k.kit_number;
    rec.shipment = "TRF-" + std::to_string(t.transfer_id);
    rec.status = KitStatus::dispensed;
    rec.expiry = k.expiry;
    rec.participant = p.id;
    rec.kit_type = k.kit_type;
    rec.lot = k.lot;
    rec.visit = k.visit;
    rec.note = "dispensed at site " + t.from_site + ", came with participant " + t.participant;
    save_kit(rec);
  }
  return {};
}

}  // namespace irt::node
