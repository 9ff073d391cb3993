#include "sync/refusal.h"

#include <nlohmann/json.hpp>

#include "sync/protocol.h"

namespace irt::sync {

int wire_status(std::string_view code) {
  using namespace wire_error;
  if (code == kBadRequest) return 400;
  if (code == kTokenInvalid || code == kCertificate || code == kWrongNode || code == kRequestSignature) return 401;
  if (code == kRevoked || code == kFrozen) return 403;
  if (code == kNotFound) return 404;
  if (code == kGap || code == kEquivocation) return 409;
  if (code == kBadSignature || code == kBrokenChain) return 422;
  return 500;
}

std::string refusal_to_json(const Refusal& r) {
  nlohmann::json e;
  e["code"] = r.code;
  e["message"] = r.message;
  if (r.expected_seq) e["expected_seq"] = *r.expected_seq;
  if (r.seq) e["seq"] = *r.seq;
  nlohmann::json body;
  body["error"] = std::move(e);
  return body.dump();
}

}  // namespace irt::sync
