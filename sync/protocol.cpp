#include "sync/protocol.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace irt::sync {

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

Receipt receipt_from_json(const std::string& json) {
  try {
    auto j = nlohmann::json::parse(json);
    Receipt r;
    r.node_id = j.at("node_id").get<std::string>();
    r.seq = j.at("seq").get<std::uint64_t>();
    r.leaf_index = j.at("leaf_index").get<std::uint64_t>();
    r.tree_size = j.at("tree_size").get<std::uint64_t>();
    for (const auto& p : j.at("proof")) {
      auto b = crypto::from_base64(p.get<std::string>());
      if (!b || b->size() != 32) throw std::invalid_argument("receipt proof hash is not 32 bytes of base64");
      r.proof.push_back(*crypto::Hash::from_view(*b));
    }
    r.checkpoint = j.at("checkpoint").get<std::string>();
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("malformed receipt: ") + e.what());
  }
}

}  // namespace irt::sync
