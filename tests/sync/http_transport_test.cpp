#include <doctest/doctest.h>

#include "sync/transport.h"
#include "tests/support/test_support.h"

using namespace irt;
using namespace irt::sync;

TEST_CASE("a hub URL that is not http(s)://HOST[:PORT] is refused with invalid_input naming it") {
  for (const char* url : {"", "hub.example:8443", "ftp://hub.example", "https://hub.example/sync",
                          "http://hub example", "http://127.0.0.1:0", "http://127.0.0.1:70000",
                          "https://user@hub.example"}) {
    CAPTURE(url);
    auto t = make_http_transport({.base_url = url, .fingerprint_hex = std::string(64, 'a')});
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().code == shared::Errc::invalid_input);
    CHECK(t.error().message == "hub URL '" + std::string(url) +
                                   "' is not of the form https://HOST[:PORT] or http://HOST[:PORT] (PORT 1 to 65535)");
  }
}

TEST_CASE("an https hub URL without a certificate fingerprint is refused before any connection") {
  for (const std::string& fp : {std::string(), std::string(63, 'a'), std::string(64, 'g')}) {
    CAPTURE(fp);
    auto t = make_http_transport({.base_url = "https://hub.example:8443", .fingerprint_hex = fp});
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().code == shared::Errc::invalid_input);
    CHECK(t.error().message == "the https hub URL https://hub.example:8443 needs the hub's certificate fingerprint: "
                               "the 64 hex digits printed by 'irt-hub fingerprint'");
  }
}

TEST_CASE("a well-formed hub URL gives a transport, and a closed port is unavailable") {
  CHECK(make_http_transport({.base_url = "https://[::1]:8443/", .fingerprint_hex = std::string(64, 'a')}).ok());
  int port = test::free_port();
  auto t = make_http_transport({.base_url = "http://127.0.0.1:" + std::to_string(port)});
  REQUIRE(t.ok());
  auto r = (*t)->get("/sync/v1/checkpoint");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::unavailable);
  CHECK(r.error().message.find("cannot reach the hub at http://127.0.0.1:" + std::to_string(port)) == 0);
}
