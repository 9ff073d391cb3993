#include "shared/result.h"

namespace irt::shared {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::invalid_input: return "invalid_input";
    case Errc::not_found: return "not_found";
    case Errc::unauthenticated: return "unauthenticated";
    case Errc::forbidden: return "forbidden";
    case Errc::conflict: return "conflict";
    case Errc::exhausted: return "exhausted";
    case Errc::unavailable: return "unavailable";
    case Errc::integrity: return "integrity";
    case Errc::internal: return "internal";
  }
  return "internal";
}

int http_status(Errc code) {
  switch (code) {
    case Errc::invalid_input: return 400;
    case Errc::not_found: return 404;
    case Errc::unauthenticated: return 401;
    case Errc::forbidden: return 403;
    case Errc::conflict: return 409;
    case Errc::exhausted: return 409;
    case Errc::unavailable: return 503;
    case Errc::integrity: return 422;
    case Errc::internal: return 500;
  }
  return 500;
}

int exit_code(Errc code) {
  switch (code) {
    case Errc::invalid_input: return 2;
    case Errc::unavailable: return 3;
    default: return 1;
  }
}

}  // namespace irt::shared
