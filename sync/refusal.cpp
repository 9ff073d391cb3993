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

bool retry_can_fix(std::string_view code, int http_status) {
  if (http_status >= 500 || http_status == 408 || http_status == 429) return true;
  return code == wire_error::kGap;
}

std::string refusal_advice(std::string_view code) {
  using namespace wire_error;
  if (code == kRevoked)
    return "this device can no longer sync: enroll a new node with a fresh token; the events kept here wait for "
           "the central team";
  if (code == kFrozen)
    return "a hub administrator must review the evidence and run 'irt-hub unfreeze'; sync resumes by itself then";
  if (code == kCertificate || code == kWrongNode || code == kRequestSignature || code == kTokenInvalid)
    return "the hub does not accept this node's identity: check the hub address, or re-enroll the device";
  if (code == kBadSignature || code == kBrokenChain || code == kEquivocation)
    return "run 'irt-node verify' and report its result to the central team";
  return "retrying will not help: run 'irt-node verify' and report this to the central team; everything recorded "
         "here is kept";
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
