#include "sync/protocol.h"

#include <nlohmann/json.hpp>

namespace irt::sync {

std::string request_signing_text(std::string_view domain, std::int64_t time_ms, std::string_view content) {
  auto digest = crypto::hash_domain("irt/request/v1", crypto::as_bytes(content));
  return std::string(domain) + std::to_string(time_ms) + "\n" + digest.hex();
}

std::string receipt_to_json(const Receipt& r) {
  nlohmann::json j;
  j["node_id"] = r.node_id;
  j["seq"] = r.seq;
  j["leaf_index"] = r.leaf_index;
  j["tree_size"] = r.tree_size;
  j["proof"] = nlohmann::json::array();
  for (const auto& h : r.proof) j["proof"].push_back(crypto::to_base64(h.view()));
  j["checkpoint"] = r.checkpoint;
  return j.dump();
}

shared::Result<Receipt> receipt_from_json(const std::string& json) {
  auto malformed = [](const std::string& what) {
    return shared::make_error(shared::Errc::invalid_input, "malformed receipt: " + what);
  };
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (!j.is_object()) return malformed("not a JSON object");
  Receipt r;
  for (auto [key, out] : {std::pair{"node_id", &r.node_id}, std::pair{"checkpoint", &r.checkpoint}}) {
    if (!j.contains(key) || !j[key].is_string()) return malformed(std::string(key) + ": must be a string");
    *out = j[key].get<std::string>();
  }
  for (auto [key, out] : {std::pair{"seq", &r.seq}, std::pair{"leaf_index", &r.leaf_index},
                          std::pair{"tree_size", &r.tree_size}}) {
    if (!j.contains(key) || !j[key].is_number_unsigned())
      return malformed(std::string(key) + ": must be an unsigned integer");
    *out = j[key].get<std::uint64_t>();
  }
  if (!j.contains("proof") || !j["proof"].is_array()) return malformed("proof: must be an array of hashes");
  for (std::size_t i = 0; i < j["proof"].size(); ++i) {
    const auto& p = j["proof"][i];
    auto b = p.is_string() ? crypto::from_base64(p.get<std::string>()) : std::nullopt;
    auto h = b ? crypto::Hash::from_view(*b) : std::nullopt;
    if (!h) return malformed("proof[" + std::to_string(i) + "]: not 32 bytes of base64");
    r.proof.push_back(*h);
  }
  return r;
}

}  // namespace irt::sync
