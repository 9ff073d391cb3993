#include "sync/directive.h"

#include <algorithm>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "shared/directive_payloads.h"
#include "sync/event.h"
#include "sync/wire.h"

namespace irt::sync {

namespace {
constexpr std::uint8_t kDirectiveMagic[4] = {'I', 'R', 'T', 'D'};
constexpr std::uint8_t kDirectiveVersion = 1;

Bytes encode_body(const DirectiveBody& b) {
  Writer w;
  w.raw(kDirectiveMagic).u8(kDirectiveVersion).str16(b.node_id).u64(b.seq).u64(b.hlc).i64(b.issued_ms).str16(b.type).blob32(b.payload);
  return w.take();
}
constexpr const char* kSealedFieldsKey = "sealed";

std::string json_pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

// Moves every field named in `names` out of `j` (at any depth) into `moved`,
// keyed by its JSON pointer.
void move_sealed_fields(nlohmann::json& j, const std::string& pointer, const std::vector<std::string_view>& names,
                        nlohmann::json& moved) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end();) {
      std::string path = pointer + "/" + json_pointer_token(it.key());
      if (std::find(names.begin(), names.end(), it.key()) != names.end()) {
        moved[path] = std::move(it.value());
        it = j.erase(it);
      } else {
        move_sealed_fields(it.value(), path, names, moved);
        ++it;
      }
    }
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i) move_sealed_fields(j[i], pointer + "/" + std::to_string(i), names, moved);
  }
}
}  // namespace

const std::vector<std::string_view>& sealed_field_names(std::string_view type) {
  static const std::vector<std::string_view> kNone;
  static const std::vector<std::pair<std::string_view, std::vector<std::string_view>>> kSealed = {
      {"study.config", {"document"}},  // the arms and which kit type carries which
      {"roster", {"password_hash"}},
      {shared::kGrantSlotsDirective, {"arm"}},
      {shared::kGrantMinimizationStreamDirective, {"seed", "baseline"}},
      {shared::kGrantCapAllowanceDirective, {"allowances"}},  // names the capped arms
      {shared::kShipmentDirective, {"kit_type", "lot"}},
      {shared::kParticipantTransferInDirective, {"arm", "kit_type", "lot"}},
      {shared::kKitsRelabelDirective, {"lot", "kits"}},  // which kits share a lot
  };
  for (const auto& [t, names] : kSealed)
    if (t == type) return names;
  return kNone;
}

std::string seal_fields(std::string_view type, std::string_view payload_json,
                        const std::optional<crypto::BoxPublicKey>& node_key) {
  const auto& names = sealed_field_names(type);
  if (names.empty()) return std::string(payload_json);
  auto j = nlohmann::json::parse(payload_json, nullptr, false);
  if (!j.is_object())
    throw std::invalid_argument("the payload of a " + std::string(type) + " directive is not a JSON object");
  if (j.contains(kSealedFieldsKey))
    throw std::invalid_argument("the payload of a " + std::string(type) + " directive already has a 'sealed' field");
  auto moved = nlohmann::json::object();
  move_sealed_fields(j, "", names, moved);
  if (moved.empty()) return std::string(payload_json);
  if (!node_key)
    throw std::invalid_argument("a " + std::string(type) + " directive has fields to seal but no node key to seal them to");
  j[kSealedFieldsKey] = crypto::to_base64(crypto::seal_to(*node_key, crypto::as_bytes(moved.dump())));
  return j.dump();
}

shared::Result<std::string> open_sealed_fields(std::string_view payload_json, const crypto::BoxKeyPair& node_key) {
  auto j = nlohmann::json::parse(payload_json, nullptr, false);
  if (!j.is_object() || !j.contains(kSealedFieldsKey)) return std::string(payload_json);
  auto refuse = [](const std::string& why) {
    return shared::make_error(shared::Errc::integrity,
                              "the directive's sealed fields " + why +
                                  "; nothing of it was applied. Report it to the central team: the hub must "
                                  "send it again sealed to this node's key");
  };
  const auto& sealed = j[kSealedFieldsKey];
  auto box = sealed.is_string() ? crypto::from_base64(sealed.get<std::string>()) : std::nullopt;
  if (!box) return refuse("are not base64 text");
  auto plain = crypto::open_sealed(node_key, *box);
  if (!plain) return refuse("do not open with this node's key (damaged, or sealed to another node)");
  auto moved = nlohmann::json::parse(crypto::to_string(*plain), nullptr, false);
  if (!moved.is_object()) return refuse("are not a JSON object");
  j.erase(kSealedFieldsKey);
  // Each field goes back into an object of the payload: a place elsewhere
  // (the whole payload, inside an array or a string, under an object that is
  // not there) is refused rather than made, as writing "/kits/99999999" would
  // grow the list to that length.
  for (auto& [pointer, value] : moved.items()) {
    try {
      nlohmann::json::json_pointer place(pointer);
      if (place.empty() || !j.contains(place.parent_pointer()) || !j.at(place.parent_pointer()).is_object())
        return refuse("name a place that is not in the payload (" + pointer + ")");
      j[place] = value;
    } catch (const nlohmann::json::exception&) {
      return refuse("name a place that is not in the payload (" + pointer + ")");
    }
  }
  return j.dump();
}

SignedDirective sign_directive(DirectiveBody body, const crypto::SigningKey& hub_key) {
  SignedDirective d;
  d.record = encode_body(body);
  d.signature = hub_key.sign(d.record);
  d.record.insert(d.record.end(), d.signature.bytes.begin(), d.signature.bytes.end());
  d.body = std::move(body);
  return d;
}

shared::Result<SignedDirective> parse_directive(ByteView record) {
  Reader r(record);
  SignedDirective d;
  auto magic = r.raw(4);
  if (!r.ok() || !std::equal(magic.begin(), magic.end(), kDirectiveMagic))
    return shared::make_error(shared::Errc::invalid_input, "not a directive record (bad magic)");
  if (r.u8() != kDirectiveVersion)
    return shared::make_error(shared::Errc::invalid_input,
                              "directive record version is not 1; upgrade this node to apply it");
  auto& b = d.body;
  b.node_id = r.str16(kMaxIdLength);
  b.seq = r.u64();
  b.hlc = r.u64();
  b.issued_ms = r.i64();
  b.type = r.str16(kMaxIdLength);
  auto payload = r.blob32(kMaxPayload * 16);
  b.payload.assign(payload.begin(), payload.end());
  d.signature = r.fixed<crypto::Signature>();
  if (!r.ok() || !r.at_end())
    return shared::make_error(shared::Errc::invalid_input, "directive record is truncated or has trailing bytes");
  if (b.seq == 0) return shared::make_error(shared::Errc::invalid_input, "directive sequence numbers start at 1");
  d.record.assign(record.begin(), record.end());
  return d;
}

bool verify_directive(const SignedDirective& d, const crypto::PublicKey& hub_key) {
  return crypto::verify(hub_key, d.body_bytes(), d.signature);
}

}  // namespace irt::sync
