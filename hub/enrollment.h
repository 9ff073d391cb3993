// Enrolling a node: one-time tokens issued by a hub administrator
// (`irt-hub invite`), redeemed by a device over POST /sync/v1/enroll.
//
// A token is 20 random bytes (160 bits) shown as 32 characters of RFC 4648
// base32; the hub stores only BLAKE2b-256 under domain "irt/enroll-token/v1",
// so a copy of the database cannot enroll anything. A token is bound to a
// site and a node kind, expires (72 hours by default) and works once.
//
// enroll() runs in ONE transaction: the token is spent, the node gets the next
// id of its site ("101-N1"), a certificate signed by the hub (valid two
// years), its ledger row, and its first directives ("study.config", then
// "roster", then its grants: "grant.numbers", "grant.slots" or
// "grant.minimization_stream", and the initial "shipment", hub/grants.h), and
// the audit trail records it. A refused enrollment (unknown,
// used or expired token, bad key) creates nothing.
// Thread-safety: as HubState.
#pragma once

#include <cstdint>
#include <string>

#include "hub/hub_state.h"
#include "hub/tuning.h"  // kTokenValidityMs, kCertificateValidityMs
#include "shared/result.h"
#include "sync/certificate.h"
#include "sync/refusal.h"

namespace irt::hub {

shared::Status migrate_enrollment(storage::Database& db);

struct Invitation {
  std::int64_t id = 0;
  std::string token;  // shown once, never stored
  std::string site_id;
  std::string kind;
  std::int64_t expires_ms = 0;
};

// kind is "site" or "nurse"; the study's site must exist, be active, and allow
// that kind of node (site.node_kinds).
shared::Result<Invitation> invite(HubState& hub, const std::string& site_id, const std::string& kind,
                                  std::int64_t valid_ms, const std::string& actor, std::int64_t now_ms);

struct EnrollRequest {
  std::string token;
  std::string node_public_key_hex;
  std::string device;  // free text the node reports ("tablet 7, Android 14"), for the audit trail
};

struct Enrolled {
  sync::NodeCertificate certificate;
  std::uint64_t directives = 0;  // how many directives were issued to it
};

sync::Refusable<Enrolled> enroll(HubState& hub, const EnrollRequest& request, std::int64_t now_ms);

}  // namespace irt::hub
