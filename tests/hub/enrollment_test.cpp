// Enrollment tokens and enrollment, on a real hub data directory.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "hub/audit.h"
#include "hub/enrollment.h"
#include "sync/directive.h"
#include "sync/protocol.h"
#include "tests/hub/hub_fixture.h"

using namespace irt;
using test::HubFixture;
using test::kHour;
using test::kHubNow;

namespace {

hub::EnrollRequest request(const std::string& token, const crypto::SigningKey& key) {
  return {token, key.public_key().hex(), "test tablet"};
}

std::int64_t table_rows(storage::Database& db, const std::string& table) {
  auto st = db.prepare("SELECT count(*) FROM " + table);
  st.step();
  return st.int64(0);
}

}  // namespace

TEST_CASE("an invitation is a 160-bit base32 token bound to a site and kind") {
  HubFixture f;
  auto inv = hub::invite(*f.hub, "101", "site", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE_MESSAGE(inv.ok(), inv.error().message);
  CHECK(inv->token.size() == 32);
  CHECK(inv->token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == std::string::npos);
  CHECK(inv->expires_ms == kHubNow + 72 * kHour);
  auto other = hub::invite(*f.hub, "101", "site", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE(other.ok());
  CHECK(other->token != inv->token);
}

TEST_CASE("the token is stored only as a hash") {
  HubFixture f;
  auto inv = hub::invite(*f.hub, "101", "site", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE(inv.ok());
  auto st = f.hub->db().prepare("SELECT * FROM hub_enrollment_tokens");
  REQUIRE(st.step());
  for (int col = 0; col < 9; ++col) CHECK(st.text(col).find(inv->token) == std::string::npos);
  // Nor anywhere in the database file or its write-ahead log.
  for (const char* name : {"hub.db", "hub.db-wal"}) {
    auto path = f.dir / "hub" / name;
    if (std::filesystem::exists(path)) CHECK(test::read_file(path).find(inv->token) == std::string::npos);
  }
  bool audited_without_token = false;
  for (const auto& e : hub::audit_entries(f.hub->db()))
    if (e.action == "enrollment.invited") audited_without_token = e.new_value.find(inv->token) == std::string::npos;
  CHECK(audited_without_token);
}

TEST_CASE("an invitation for an unknown site or a kind the site does not allow is refused") {
  HubFixture f;
  auto unknown = hub::invite(*f.hub, "999", "site", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == shared::Errc::invalid_input);
  CHECK(unknown.error().message.find("999") != std::string::npos);
  auto nurse = hub::invite(*f.hub, "102", "nurse", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE_FALSE(nurse.ok());
  CHECK(nurse.error().message.find("nurse") != std::string::npos);
  auto odd = hub::invite(*f.hub, "101", "drone", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE_FALSE(odd.ok());
  CHECK(table_rows(f.hub->db(), "hub_enrollment_tokens") == 0);
}

TEST_CASE("a site that allows nurse tablets gets nurse invitations") {
  HubFixture f("packaging/examples/study-minimization.json");
  auto inv = hub::invite(*f.hub, "402", "nurse", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE_MESSAGE(inv.ok(), inv.error().message);
  auto key = crypto::SigningKey::generate();
  auto done = hub::enroll(*f.hub, request(inv->token, key), kHubNow);
  REQUIRE(done.ok());
  CHECK(done->certificate.kind == "nurse");
  CHECK(done->certificate.node_id == "402-N1");
}

TEST_CASE("enrolling signs a certificate, records the node and issues the first directives") {
  HubFixture f;
  auto inv = hub::invite(*f.hub, "101", "site", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE(inv.ok());
  auto key = crypto::SigningKey::generate();
  // Tokens are accepted as typed: lower case, grouped with dashes.
  std::string typed;
  for (std::size_t i = 0; i < inv->token.size(); ++i) {
    if (i && i % 4 == 0) typed += '-';
    typed += static_cast<char>(std::tolower(static_cast<unsigned char>(inv->token[i])));
  }
  auto done = hub::enroll(*f.hub, request(typed, key), kHubNow + kHour);
  REQUIRE_MESSAGE(done.ok(), done.refusal().message);
  const auto& cert = done->certificate;
  CHECK(cert.node_id == "101-N1");
  CHECK(cert.site_id == "101");
  CHECK(cert.kind == "site");
  CHECK(cert.node_key == key.public_key());
  CHECK(cert.valid_until_ms - cert.valid_from_ms == hub::kCertificateValidityMs);
  auto parsed = sync::parse_certificate(cert.record);
  REQUIRE(parsed.ok());
  CHECK(sync::check_certificate(*parsed, f.hub->signing_key().public_key(), kHubNow + 2 * kHour).ok());

  auto node = f.hub->ledger().find_node("101-N1");
  REQUIRE(node);
  CHECK(node->public_key == key.public_key());
  CHECK(node->status == sync::NodeStatus::active);

  // study.config, roster, then the grants (tests/hub/grants_test.cpp): numbers, slots, shipment, lease.
  auto records = f.hub->outbox().after("101-N1", 0, 10);
  REQUIRE(records.size() == 6);
  CHECK(done->directives == 6);
  auto config = sync::parse_directive(records[0]);
  auto roster = sync::parse_directive(records[1]);
  REQUIRE(config.ok());
  REQUIRE(roster.ok());
  CHECK(sync::verify_directive(*config, f.hub->signing_key().public_key()));
  CHECK(sync::verify_directive(*roster, f.hub->signing_key().public_key()));
  CHECK(config->body.type == "study.config");
  CHECK(config->body.seq == 1);
  CHECK(roster->body.type == "roster");
  CHECK(roster->body.seq == 2);
  CHECK(roster->body.hlc > config->body.hlc);
  test::remember_node_key("101-N1", key);
  auto cj = nlohmann::json::parse(test::opened_payload(*config));
  CHECK(cj["study_id"] == "VLC-301");
  CHECK(cj["version"] == 1);
  CHECK(cj["document"].get<std::string>() == f.hub->study_document());
  auto rj = nlohmann::json::parse(test::opened_payload(*roster));
  CHECK(rj["users"].is_array());
  CHECK(rj["site_id"] == "101");

  bool audited = false;
  for (const auto& e : hub::audit_entries(f.hub->db()))
    audited |= e.action == "node.enrolled" && e.subject == "101-N1" && e.reason == "test tablet";
  CHECK(audited);
}

TEST_CASE("a token works once: the second enrollment is refused and creates nothing") {
  HubFixture f;
  auto inv = hub::invite(*f.hub, "101", "site", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE(inv.ok());
  REQUIRE(hub::enroll(*f.hub, request(inv->token, crypto::SigningKey::generate()), kHubNow).ok());
  const auto directives = table_rows(f.hub->db(), "hub_directives");  // study, roster and the grants
  CHECK(directives == 6);
  auto again = hub::enroll(*f.hub, request(inv->token, crypto::SigningKey::generate()), kHubNow);
  REQUIRE_FALSE(again.ok());
  CHECK(again.refusal().code == sync::wire_error::kTokenInvalid);
  CHECK(again.refusal().http_status == 401);
  CHECK(again.refusal().message.find("already used") != std::string::npos);
  CHECK(f.hub->ledger().nodes().size() == 1);
  CHECK(table_rows(f.hub->db(), "hub_directives") == directives);
}

TEST_CASE("an expired token is refused and creates nothing") {
  HubFixture f;
  auto inv = hub::invite(*f.hub, "101", "site", 2 * kHour, "admin", kHubNow);
  REQUIRE(inv.ok());
  auto late = hub::enroll(*f.hub, request(inv->token, crypto::SigningKey::generate()), kHubNow + 2 * kHour);
  REQUIRE_FALSE(late.ok());
  CHECK(late.refusal().code == sync::wire_error::kTokenInvalid);
  CHECK(late.refusal().message.find("expired") != std::string::npos);
  CHECK(f.hub->ledger().nodes().empty());
  CHECK(table_rows(f.hub->db(), "hub_directives") == 0);
}

TEST_CASE("an unknown or malformed token is refused and creates nothing") {
  HubFixture f;
  REQUIRE(hub::invite(*f.hub, "101", "site", hub::kTokenValidityMs, "admin", kHubNow).ok());
  auto key = crypto::SigningKey::generate();
  for (std::string token : {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", "not a token", "AAAA"}) {
    auto r = hub::enroll(*f.hub, request(token, key), kHubNow);
    REQUIRE_FALSE(r.ok());
    CHECK(r.refusal().code == sync::wire_error::kTokenInvalid);
  }
  CHECK(f.hub->ledger().nodes().empty());
}

TEST_CASE("a malformed or already enrolled node key is refused and leaves the token usable") {
  HubFixture f;
  auto inv = hub::invite(*f.hub, "101", "site", hub::kTokenValidityMs, "admin", kHubNow);
  auto first = hub::invite(*f.hub, "101", "site", hub::kTokenValidityMs, "admin", kHubNow);
  REQUIRE(inv.ok());
  REQUIRE(first.ok());
  auto bad = hub::enroll(*f.hub, {inv->token, "abc", ""}, kHubNow);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.refusal().code == sync::wire_error::kBadRequest);

  auto key = crypto::SigningKey::generate();
  REQUIRE(hub::enroll(*f.hub, request(first->token, key), kHubNow).ok());
  auto reused = hub::enroll(*f.hub, request(inv->token, key), kHubNow);
  REQUIRE_FALSE(reused.ok());
  CHECK(reused.refusal().code == sync::wire_error::kBadRequest);

  auto ok = hub::enroll(*f.hub, request(inv->token, crypto::SigningKey::generate()), kHubNow);
  REQUIRE(ok.ok());
  CHECK(ok->certificate.node_id == "101-N2");
}
