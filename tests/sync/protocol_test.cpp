#include "sync/protocol.h"

#include <doctest/doctest.h>

using namespace irt;
using namespace irt::sync;

TEST_CASE("a receipt survives its JSON form") {
  Receipt r{"101-N1", 7, 41, 42, {crypto::sha256(crypto::as_bytes("a")), crypto::sha256(crypto::as_bytes("b"))},
            "irt.hub/TEST-1\n42\n..."};
  auto back = receipt_from_json(receipt_to_json(r));
  REQUIRE(back.ok());
  CHECK(back->node_id == r.node_id);
  CHECK(back->seq == 7);
  CHECK(back->leaf_index == 41);
  CHECK(back->tree_size == 42);
  CHECK(back->proof == r.proof);
  CHECK(back->checkpoint == r.checkpoint);
}

TEST_CASE("a malformed receipt is an invalid_input error naming the field") {
  const std::string hash = crypto::to_base64(crypto::sha256(crypto::as_bytes("a")).view());
  struct Case {
    std::string json;
    std::string message;
  };
  const Case cases[] = {
      {"not json", "malformed receipt: not a JSON object"},
      {"[1, 2]", "malformed receipt: not a JSON object"},
      {R"({"seq":1,"leaf_index":0,"tree_size":1,"proof":[],"checkpoint":"c"})",
       "malformed receipt: node_id: must be a string"},
      {R"({"node_id":"n","seq":-1,"leaf_index":0,"tree_size":1,"proof":[],"checkpoint":"c"})",
       "malformed receipt: seq: must be an unsigned integer"},
      {R"({"node_id":"n","seq":1,"leaf_index":"0","tree_size":1,"proof":[],"checkpoint":"c"})",
       "malformed receipt: leaf_index: must be an unsigned integer"},
      {R"({"node_id":"n","seq":1,"leaf_index":0,"tree_size":1,"proof":"x","checkpoint":"c"})",
       "malformed receipt: proof: must be an array of hashes"},
      {R"({"node_id":"n","seq":1,"leaf_index":0,"tree_size":1,"proof":[")" + hash + R"(","AAAA"],"checkpoint":"c"})",
       "malformed receipt: proof[1]: not 32 bytes of base64"},
      {R"({"node_id":"n","seq":1,"leaf_index":0,"tree_size":1,"proof":[7],"checkpoint":"c"})",
       "malformed receipt: proof[0]: not 32 bytes of base64"},
      {R"({"node_id":"n","seq":1,"leaf_index":0,"tree_size":1,"proof":[]})",
       "malformed receipt: checkpoint: must be a string"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.json);
    auto r = receipt_from_json(c.json);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == shared::Errc::invalid_input);
    CHECK(r.error().message == c.message);
  }
}
