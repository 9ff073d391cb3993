// The sync protocol's refusal codes and their HTTP statuses are those of
// docs/errors.md ("Sync refusal codes"), on the hub's side (refuse) and on the
// node's (refusal_family, refusal_error, retry_can_fix).
#include "sync/refusal.h"

#include <doctest/doctest.h>

#include <set>

#include "sync/agent.h"
#include "sync/protocol.h"
#include "tests/support/test_support.h"

using namespace irt;
using namespace irt::sync;

TEST_CASE("every sync refusal code has the family and HTTP status docs/errors.md gives it, on both sides") {
  auto rows = test::markdown_table(test::read_file(test::source_path("docs/errors.md")),
                                   "| wire code | family | HTTP |");
  REQUIRE(rows.size() == 16);
  std::set<std::string> codes;
  for (const auto& r : rows) {
    CAPTURE(r[0]);
    REQUIRE(r.size() >= 3);
    auto family = shared::errc_from_name(r[1]);
    REQUIRE(family.has_value());
    int status = std::stoi(r[2]);
    CHECK(wire_family(r[0]) == family);
    CHECK(wire_status(r[0]) == status);
    CHECK(shared::http_status(*family) == status);
    // The hub sends it with that status...
    auto sent = refuse(r[0].c_str(), "refused");
    CHECK(sent.http_status == status);
    // ...and the node reads it back as that family, unless the hub failed
    // (5xx) or is busy (429): then it retries later.
    auto read = refusal_error(HttpResponse{sent.http_status, refusal_to_json(sent), "application/json"});
    CHECK(read.code == (status >= 500 || status == 429 ? shared::Errc::unavailable : *family));
    codes.insert(r[0]);
  }
  CHECK(codes.size() == rows.size());
  for (const char* c : {wire_error::kBadRequest, wire_error::kTokenInvalid, wire_error::kCertificate,
                        wire_error::kWrongNode, wire_error::kRevoked, wire_error::kFrozen, wire_error::kGap,
                        wire_error::kEquivocation, wire_error::kBadSignature, wire_error::kBrokenChain,
                        wire_error::kRequestSignature, wire_error::kNotFound, wire_error::kRateLimited,
                        wire_error::kClockSkew, wire_error::kUnavailable, wire_error::kInternal})
    CHECK_MESSAGE(codes.count(c) == 1, c << " is missing from docs/errors.md");
}

TEST_CASE("a refusal with a code the node does not know is read by its HTTP status") {
  CHECK_FALSE(wire_family("from_a_newer_hub").has_value());
  CHECK(wire_status("from_a_newer_hub") == 500);
  CHECK(refusal_family("from_a_newer_hub", 403) == shared::Errc::forbidden);
  CHECK(refusal_family("from_a_newer_hub", 413) == shared::Errc::invalid_input);
  CHECK(refusal_family("", 502) == shared::Errc::unavailable);
  CHECK(refusal_family("", 429) == shared::Errc::unavailable);
  CHECK(refusal_family("", 408) == shared::Errc::unavailable);
  auto e = refusal_error(HttpResponse{403, "<html>forbidden by the clinic's proxy</html>", "text/html"});
  CHECK(e.code == shared::Errc::forbidden);
  CHECK(e.message == "the hub refused: the hub answered HTTP 403 without an error description");
}

TEST_CASE("only an unavailable hub, a sequence gap and a clock skew are fixed by retrying") {
  CHECK(retry_can_fix(wire_error::kGap, 409));
  CHECK(retry_can_fix(wire_error::kClockSkew, 400));  // timed again by the hub's clock
  CHECK(retry_can_fix(wire_error::kInternal, 500));
  CHECK(retry_can_fix("", 503));
  CHECK(retry_can_fix("", 429));
  CHECK_FALSE(retry_can_fix(wire_error::kEquivocation, 409));
  CHECK_FALSE(retry_can_fix(wire_error::kRevoked, 403));
  CHECK_FALSE(retry_can_fix(wire_error::kBadRequest, 400));
  CHECK_FALSE(retry_can_fix(wire_error::kBadSignature, 422));
}

TEST_CASE("a kept sync refusal that is malformed is an error naming the fields, not no refusal") {
  auto ok = sync_refusal_from_json(sync_refusal_to_json({"node_revoked", 403, "revoked by the hub", 17}));
  REQUIRE(ok.ok());
  CHECK(ok->code == "node_revoked");
  CHECK(ok->at_ms == 17);
  for (const char* bad : {"", "[]", R"({"code":"x","message":"m","http_status":"403","at_ms":1})",
                          R"({"code":"x","http_status":403,"at_ms":1})"}) {
    CAPTURE(bad);
    auto r = sync_refusal_from_json(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == shared::Errc::invalid_input);
    CHECK(r.error().message ==
          "malformed sync refusal: needs code and message (strings), http_status and at_ms (integers)");
  }
}
