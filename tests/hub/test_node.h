// A node as the hub's unit tests see it: its key, certificate and chain of
// signed events, with the payloads built the way the node builds them
// (shared/event_payloads.h), and the helpers that enroll it and read what the
// hub sent it.
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "crypto/seal.h"
#include "hub/consumption.h"
#include "hub/enrollment.h"
#include "hub/tuning.h"
#include "shared/directive_payloads.h"
#include "shared/event_payloads.h"
#include "shared/numbering.h"
#include "sync/directive.h"
#include "sync/event.h"
#include "tests/hub/hub_fixture.h"

namespace irt::test {

using nlohmann::json;

// A node as the hub sees it: its key, certificate and chain of signed events.
struct TestNode {
  std::string id;
  crypto::SigningKey key = crypto::SigningKey::generate();
  crypto::Bytes certificate;
  std::uint64_t seq = 0;
  crypto::Hash prev;

  std::uint64_t directive_seq = 0;  // the cursor the next events carry
  std::int64_t device_time_ms = kHubNow;  // the node's clock on the next events

  // Signs the next event and pushes it into the hub's ledger.
  // `payload` is one of the structs of shared/event_payloads.h, or deliberately malformed JSON.
  void push(HubFixture& f, std::string_view type, const json& payload) { push(*f.hub, type, payload); }
  // The same into any HubState of the hub (another connection to its database).
  void push(hub::HubState& hub, std::string_view type, const json& payload) {
    auto e = next_event(type, payload);
    auto ack = hub.ledger().ingest(certificate, {e.record}, kHubNow);
    REQUIRE_MESSAGE(ack.ok(), ack.refusal().message);
  }
  // The node's next signed event.
  sync::SignedEvent next_event(std::string_view type, const json& payload) {
    sync::EventBody b;
    b.node_id = id;
    b.seq = ++seq;
    b.prev_hash = prev;
    b.hlc = seq;
    b.device_time_ms = device_time_ms;
    b.actor = "coordinator.ana";
    b.directive_seq = directive_seq;
    b.type = std::string(type);
    auto text = payload.dump();
    b.payload = crypto::Bytes(text.begin(), text.end());
    auto e = sync::sign_event(std::move(b), key);
    prev = e.hash;
    return e;
  }
  // The same through an observer of the append, as the sync server pushes
  // (hub::Ingest): what it throws escapes, the batch rolled back, and the
  // node's chain stays where it was.
  void push_observed(hub::HubState& hub, std::string_view type, const json& payload, sync::AppendObserver& observer) {
    const auto saved_seq = seq;
    const auto saved_prev = prev;
    auto e = next_event(type, payload);
    auto node = hub.ledger().find_node(id);
    REQUIRE(node);
    auto checked = hub.ledger().check_batch(*node, {e.record});
    REQUIRE_MESSAGE(checked.ok(), checked.refusal().message);
    try {
      auto ack = hub.ledger().append(*node, std::move(checked.value()), kHubNow, &observer);
      REQUIRE_MESSAGE(ack.ok(), ack.refusal().message);
    } catch (...) {
      seq = saved_seq;
      prev = saved_prev;
      throw;
    }
  }
};

// A node of `kind` ("site" or "nurse") enrolled at `site`.
inline TestNode enroll(HubFixture& f, const std::string& site, const std::string& kind = "site") {
  auto inv = hub::invite(*f.hub, site, kind, hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE_MESSAGE(inv.ok(), inv.error().message);
  TestNode n;
  auto done = hub::enroll(*f.hub, {inv->token, n.key.public_key().hex(), ""}, kHubNow);
  REQUIRE_MESSAGE(done.ok(), done.refusal().message);
  n.id = done->certificate.node_id;
  n.certificate = done->certificate.record;
  remember_node_key(n.id, n.key);
  return n;
}

// The node's directives of one type, after `after`, as JSON, their sealed
// fields opened as the node opens them (a node enrolled by enroll()).
inline std::vector<json> directives(HubFixture& f, const std::string& node, std::string_view type, std::uint64_t after = 0) {
  std::vector<json> out;
  for (const auto& r : f.hub->outbox().after(node, after, 1000)) {
    auto d = sync::parse_directive(r);
    REQUIRE(d.ok());
    if (d->body.type == type) out.push_back(json::parse(opened_payload(*d)));
  }
  return out;
}

inline std::string seal(HubFixture& f, const json& j) {
  auto text = j.dump();
  return crypto::to_base64(crypto::seal_to(f.hub->unblinding_key().public_key(), crypto::as_bytes(text)));
}

inline shared::Screened screened(const std::string& number, const std::map<std::string, std::string>& factors) {
  return {number, shared::ParticipantStatus::screened, factors, {"yes", "yes"}, "coordinator", ""};
}

// A randomization from a list slot, as a node records it.
inline shared::Randomized from_slot(const std::string& number, const shared::SlotGrant& grant, std::size_t i,
                             std::vector<std::string> kits, std::string sealed) {
  shared::Randomized r;
  r.participant = number;
  r.randomization_number = shared::list_randomization_number(grant.stratum, grant.slots[i].slot);
  r.visit = "V1";
  r.kits = std::move(kits);
  r.esignature = {"ana", "coordinator", kHubNow, "I confirm the randomization of participant " + number};
  r.stratum = grant.stratum;
  r.stratum_label = grant.stratum_label;
  r.slot = grant.slots[i].slot;
  r.sealed = std::move(sealed);
  return r;
}

inline hub::ConsumptionReport consume(HubFixture& f, const std::string& node) {
  storage::Transaction tx(f.hub->db());
  auto r = hub::record_consumption(*f.hub, node, kHubNow);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  tx.commit();
  return *r;
}

}  // namespace irt::test
