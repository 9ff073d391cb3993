#include "sync/refusal.h"

#include <nlohmann/json.hpp>

#include "sync/protocol.h"

namespace irt::sync {

namespace {

// Each wire code belongs to one family of shared::Errc, which gives its HTTP
// status: docs/errors.md, "Sync refusal codes", lists the same pairs.
struct WireRow {
  const char* code;
  shared::Errc family;
};
const WireRow kWireTable[] = {
    {wire_error::kBadRequest, shared::Errc::invalid_input},
    {wire_error::kTokenInvalid, shared::Errc::unauthenticated},
    {wire_error::kCertificate, shared::Errc::unauthenticated},
    {wire_error::kWrongNode, shared::Errc::unauthenticated},
    {wire_error::kRequestSignature, shared::Errc::unauthenticated},
    {wire_error::kRevoked, shared::Errc::forbidden},
    {wire_error::kFrozen, shared::Errc::forbidden},
    {wire_error::kNotFound, shared::Errc::not_found},
    {wire_error::kGap, shared::Errc::conflict},
    {wire_error::kEquivocation, shared::Errc::conflict},
    {wire_error::kBadSignature, shared::Errc::integrity},
    {wire_error::kBrokenChain, shared::Errc::integrity},
    {wire_error::kRateLimited, shared::Errc::rate_limited},
    {wire_error::kClockSkew, shared::Errc::invalid_input},
    {wire_error::kUnavailable, shared::Errc::unavailable},
    {wire_error::kInternal, shared::Errc::internal},
};

}  // namespace

std::optional<shared::Errc> wire_family(std::string_view code) {
  for (const auto& r : kWireTable)
    if (code == r.code) return r.family;
  return std::nullopt;
}

int wire_status(std::string_view code) {
  return shared::http_status(wire_family(code).value_or(shared::Errc::internal));
}

shared::Errc refusal_family(std::string_view code, int http_status) {
  // The hub, or a proxy in front of it, failed or is busy: nothing was
  // recorded, and the same request can succeed later.
  if (http_status >= 500 || http_status == 408 || http_status == 429) return shared::Errc::unavailable;
  if (auto family = wire_family(code)) return *family;
  return shared::errc_for_http_status(http_status);
}

bool retry_can_fix(std::string_view code, int http_status) {
  // A gap is resent from the hub's expected seq; a clock skew is timed again by
  // the hub's clock that came with the refusal.
  return refusal_family(code, http_status) == shared::Errc::unavailable || code == wire_error::kGap ||
         code == wire_error::kClockSkew;
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
