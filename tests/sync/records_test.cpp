#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "sync/batch.h"
#include "sync/certificate.h"
#include "sync/checkpoint.h"
#include "sync/directive.h"
#include "sync/event.h"

using namespace irt::sync;
namespace crypto = irt::crypto;

namespace {

EventBody sample_body() {
  EventBody b;
  b.node_id = "N101-1";
  b.seq = 7;
  b.prev_hash = crypto::hash_domain("test", crypto::as_bytes("previous"));
  b.hlc = 123456789;
  b.device_time_ms = 1764000000000;
  b.actor = "coordinator.jane";
  b.type = "site.note";
  b.directive_seq = 3;
  std::string payload = R"({"text":"fridge checked"})";
  b.payload.assign(payload.begin(), payload.end());
  return b;
}

}  // namespace

TEST_CASE("an event round-trips through its exact bytes and verifies") {
  auto key = crypto::SigningKey::generate();
  auto e = sign_event(sample_body(), key);
  auto parsed = parse_event(e.record);
  REQUIRE(parsed.ok());
  CHECK(parsed->body.node_id == "N101-1");
  CHECK(parsed->body.seq == 7);
  CHECK(parsed->body.actor == "coordinator.jane");
  CHECK(parsed->body.payload == e.body.payload);
  CHECK(parsed->hash == e.hash);
  CHECK(verify_event(*parsed, key.public_key()));
  CHECK_FALSE(verify_event(*parsed, crypto::SigningKey::generate().public_key()));
}

TEST_CASE("flipping any byte of an event record breaks its parse, hash or signature") {
  auto key = crypto::SigningKey::generate();
  auto e = sign_event(sample_body(), key);
  for (std::size_t i = 0; i < e.record.size(); ++i) {
    auto bad = e.record;
    bad[i] ^= 0x01;
    auto parsed = parse_event(bad);
    bool caught = !parsed.ok() || !verify_event(*parsed, key.public_key());
    CHECK_MESSAGE(caught, "byte " << i << " flipped unnoticed");
  }
}

TEST_CASE("a truncated event record or one with trailing bytes is refused") {
  auto e = sign_event(sample_body(), crypto::SigningKey::generate());
  CHECK_FALSE(parse_event(crypto::ByteView(e.record).first(e.record.size() - 1)).ok());
  auto longer = e.record;
  longer.push_back(0);
  CHECK_FALSE(parse_event(longer).ok());
  CHECK_FALSE(parse_event({}).ok());
}

TEST_CASE("a directive verifies only under the hub's key") {
  auto hub = crypto::SigningKey::generate();
  DirectiveBody b{.node_id = "N101-1", .seq = 1, .hlc = 5, .issued_ms = 9, .type = "roster", .payload = {'{', '}'}};
  auto d = sign_directive(b, hub);
  auto parsed = parse_directive(d.record);
  REQUIRE(parsed.ok());
  CHECK(parsed->body.type == "roster");
  CHECK(verify_directive(*parsed, hub.public_key()));
  auto bad = d.record;
  bad[10] ^= 0x20;
  auto parsed_bad = parse_directive(bad);
  CHECK((!parsed_bad.ok() || !verify_directive(*parsed_bad, hub.public_key())));
}

TEST_CASE("a directive's sealed fields leave the payload at any depth and come back in place for the node's key only") {
  auto node = crypto::SigningKey::generate();
  auto box = crypto::BoxKeyPair::from_signing_key(node);
  auto box_public = crypto::box_key_of(node.public_key());
  REQUIRE(box_public);
  CHECK(*box_public == box.public_key());  // the converted public key is the converted secret's
  const std::string payload =
      R"({"shipment_id":"SHP-1","kind":"initial","kits":[{"kit_number":"1","kit_type":"VLC25","lot":"L/1~"},)"
      R"({"kit_number":"2","kit_type":"PBO","lot":"L2"}]})";
  auto sealed = seal_fields("shipment", payload, box_public);
  CHECK(sealed.find("VLC25") == std::string::npos);
  CHECK(sealed.find("L/1~") == std::string::npos);
  CHECK(sealed.find("\"kit_number\":\"2\"") != std::string::npos);
  auto opened = open_sealed_fields(sealed, box);
  REQUIRE(opened.ok());
  CHECK(nlohmann::json::parse(*opened) == nlohmann::json::parse(payload));
  // Another node's key opens nothing; a payload without "sealed" is read as it is.
  auto stranger = crypto::BoxKeyPair::from_signing_key(crypto::SigningKey::generate());
  auto refused = open_sealed_fields(sealed, stranger);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == irt::shared::Errc::integrity);
  CHECK(*open_sealed_fields(payload, stranger) == payload);
  // A type with nothing to seal, or a payload without the fields, is left as given, key or not.
  CHECK(seal_fields("kits.release", R"({"kits":["1"],"lot":"x"})", std::nullopt) == R"({"kits":["1"],"lot":"x"})");
  CHECK(seal_fields("roster", R"({"users":[]})", std::nullopt) == R"({"users":[]})");
  CHECK_THROWS_AS(seal_fields("shipment", payload, std::nullopt), std::invalid_argument);
  CHECK_THROWS_AS(seal_fields("shipment", "[1]", box_public), std::invalid_argument);
}

TEST_CASE("sealed fields go back only into an object of the payload: another place is refused, not made") {
  auto node = crypto::SigningKey::generate();
  auto box = crypto::BoxKeyPair::from_signing_key(node);
  auto sealed_with = [&](const nlohmann::json& moved) {
    return nlohmann::json{{"kits", {{{"kit_number", "1"}}}},
                          {"sealed", crypto::to_base64(crypto::seal_to(box.public_key(), crypto::as_bytes(moved.dump())))}}
        .dump();
  };
  auto opened = open_sealed_fields(sealed_with({{"/kits/0/kit_type", "VLC25"}}), box);
  REQUIRE(opened.ok());
  CHECK(nlohmann::json::parse(*opened)["kits"][0]["kit_type"] == "VLC25");
  // An index far past the list's end would grow it to that length; the whole
  // payload, a string, or an object that is not there are no field's place either.
  for (const char* place : {"/kits/99999999", "/kits/1/kit_type", "", "/kits/0/kit_number/x", "/missing/lot", "bad"}) {
    auto refused = open_sealed_fields(sealed_with({{place, "VLC25"}}), box);
    REQUIRE_FALSE_MESSAGE(refused.ok(), place);
    CHECK(refused.error().code == irt::shared::Errc::integrity);
    CHECK(refused.error().message.find("name a place that is not in the payload") != std::string::npos);
  }
}

TEST_CASE("a certificate is checked for the hub's signature and its validity period") {
  auto hub = crypto::SigningKey::generate();
  NodeCertificate c{.node_id = "N101-1", .site_id = "101", .kind = "site",
                    .node_key = crypto::SigningKey::generate().public_key(), .serial = 1,
                    .valid_from_ms = 1000, .valid_until_ms = 2000};
  auto signed_cert = sign_certificate(c, hub);
  auto parsed = parse_certificate(signed_cert.record);
  REQUIRE(parsed.ok());
  CHECK(parsed->site_id == "101");
  CHECK(check_certificate(*parsed, hub.public_key(), 1500).ok());
  CHECK_FALSE(check_certificate(*parsed, hub.public_key(), 2500).ok());
  CHECK_FALSE(check_certificate(*parsed, crypto::SigningKey::generate().public_key(), 1500).ok());
  auto forged = signed_cert.record;
  forged[12] ^= 1;  // inside the node id
  auto p2 = parse_certificate(forged);
  CHECK((!p2.ok() || !check_certificate(*p2, hub.public_key(), 1500).ok()));
}

TEST_CASE("a checkpoint opens with the right key and name only") {
  auto hub = crypto::SigningKey::generate();
  Checkpoint cp{.origin = "irt.hub/STUDY-1", .size = 42, .root = crypto::sha256(crypto::as_bytes("x")), .audit = {}};
  std::string text = sign_checkpoint(cp, "irt-hub", hub);
  auto opened = open_checkpoint(text, "irt-hub", hub.public_key());
  REQUIRE(opened);
  CHECK(opened->size == 42);
  CHECK(opened->root == cp.root);
  CHECK_FALSE(open_checkpoint(text, "other", hub.public_key()));
  CHECK_FALSE(open_checkpoint(text, "irt-hub", crypto::SigningKey::generate().public_key()));
  std::string edited = text;
  edited[text.find("42")] = '5';
  CHECK_FALSE(open_checkpoint(edited, "irt-hub", hub.public_key()));
}

TEST_CASE("a batch round-trips and a truncated batch is refused") {
  std::vector<crypto::Bytes> records = {{1, 2, 3}, {}, {4}};
  auto body = encode_batch(records);
  auto decoded = decode_batch(body);
  REQUIRE(decoded.ok());
  CHECK(*decoded == records);
  CHECK_FALSE(decode_batch(crypto::ByteView(body).first(body.size() - 1)).ok());
}

TEST_CASE("a checkpoint's audit head line is signed, and a reader of an earlier release still opens it") {
  auto hub = crypto::SigningKey::generate();
  const AuditHead head{17, crypto::sha256(crypto::as_bytes("entry 17"))};
  Checkpoint cp{.origin = "irt.hub/STUDY-1", .size = 42, .root = crypto::sha256(crypto::as_bytes("x")), .audit = head};
  std::string text = sign_checkpoint(cp, "irt-hub", hub);
  auto opened = open_checkpoint(text, "irt-hub", hub.public_key());
  REQUIRE(opened);
  REQUIRE(opened->audit);
  CHECK(opened->audit->entries == 17);
  CHECK(opened->audit->last == head.last);
  // The note text and the "irt-hub" line are what an earlier release signs and reads: that line alone verifies.
  const auto audit_line = text.find(std::string("\xE2\x80\x94 ") + kAuditHeadKeyName);
  REQUIRE(audit_line != std::string::npos);
  auto without = open_checkpoint(text.substr(0, audit_line), "irt-hub", hub.public_key());
  REQUIRE(without);
  CHECK_FALSE(without->audit);
  CHECK(without->root == cp.root);
  // An audit head line signed by another key, or cut short, makes the checkpoint invalid.
  cp.audit->entries = 16;
  auto other = sign_checkpoint(cp, "irt-hub", crypto::SigningKey::generate());
  CHECK_FALSE(open_checkpoint(text.substr(0, audit_line) + other.substr(other.find(std::string("\xE2\x80\x94 ") + kAuditHeadKeyName)),
                              "irt-hub", hub.public_key()));
  CHECK_FALSE(open_checkpoint(text.substr(0, text.size() - 6) + "\n", "irt-hub", hub.public_key()));
}
