// The exports of hub/exports.h over the API (export_data), the same bytes
// `irt-hub export` writes:
//   GET  /api/v1/exports/{what}?format=csv|json|odm   blinded, for any reader holding export_data
//   POST /api/v1/exports/{what} {"format", "reason", "signature"}
//        unblinded: signed by the session's user, whose role reads unblinded; audited
#include "hub/api_server.h"
#include "hub/exports.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Errc;
using shared::make_error;

shared::Result<ExportRequest> request_of(ApiCall& c, const std::string& format_text) {
  auto what = parse_export_kind(c.param("what"));
  if (!what)
    return make_error(Errc::not_found, "no export named '" + c.param("what") + "'; the exports are " +
                                           export_kinds_text());
  auto format = parse_export_format(format_text.empty() ? "json" : format_text);
  if (!format)
    return make_error(Errc::invalid_input, "format: csv, json or odm (got '" + format_text + "')");
  return ExportRequest{*what, *format, false};
}

shared::Result<json> answer(ApiCall& c, const ExportRequest& request) {
  auto text = export_text(c.hub, request, c.now_ms);
  if (!text) return text.error();
  c.file = ApiFile{content_type(request.format),
                   c.hub.study().id + "-" + to_string(request.what) + (request.unblinded ? "-unblinded" : "") + "." +
                       file_extension(request.format),
                   std::move(text).value()};
  return json(nullptr);
}

shared::Result<json> blinded_export(ApiCall& c) {
  auto request = request_of(c, c.query_value("format"));
  if (!request) return request.error();
  return answer(c, *request);
}

shared::Result<json> unblinded_export(ApiCall& c) {
  auto format = c.body.id("format");
  auto reason = c.body.text("reason");
  auto request = request_of(c, format);
  if (!request) return request.error();
  request->unblinded = true;
  auto password = c.body.signature_password();
  if (auto st = c.body.finish(); !st) return st.error();
  auto who = authorize_unblinded_export(c.hub, {c.user->name, password}, *request, reason, c.now_ms);
  if (!who) {
    if (who.error().code == Errc::unauthenticated)
      return make_error(Errc::unauthenticated, "the signature was refused: wrong password; sign with your own "
                                               "password; nothing was exported");
    return who.error();
  }
  return answer(c, *request);
}

}  // namespace

std::vector<ApiRoute> export_routes() {
  return {{"GET", "/api/v1/exports/{what}", shared::Permission::export_data, blinded_export},
          {"POST", "/api/v1/exports/{what}", shared::Permission::export_data, unblinded_export}};
}

}  // namespace irt::hub
