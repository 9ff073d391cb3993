// How the node's sync code reaches the hub. The agent talks to a Transport, so
// tests can put a fault-injecting or in-memory one in its place.
//
// HttpTransport speaks HTTP/1.1 with cpp-httplib. For https:// it pins the
// hub's certificate: the SHA-256 fingerprint of the certificate's DER bytes must
// equal the one given at enrollment, whatever CA or host name it carries (the
// hub's certificate is self-signed). Plain http:// is for loopback only.
// A failure to connect is Errc::unavailable; a pin mismatch Errc::integrity.
// Thread-safety: one HttpTransport per thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "shared/result.h"
#include "sync/tuning.h"

namespace irt::sync {

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string content_type;
  std::int64_t hub_time_ms = 0;  // the hub's clock (kHubTimeHeader), 0 when the answer had none
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual shared::Result<HttpResponse> post(const std::string& path, const std::string& content_type,
                                            const std::string& body,
                                            const std::map<std::string, std::string>& headers) = 0;
  virtual shared::Result<HttpResponse> get(const std::string& path) = 0;
};

struct HttpTransportOptions {
  std::string base_url;         // "https://hub.example:8443" or "http://127.0.0.1:9000"
  std::string fingerprint_hex;  // SHA-256 of the hub certificate's DER; required for https
  int connect_timeout_s = kHubConnectTimeoutSeconds;  // sync/tuning.h, where the reasons are
  int read_timeout_s = kHubReadTimeoutSeconds;        // also the write timeout: silence while sending
};

// invalid_input for a URL that is not http(s)://host[:port], for an https URL
// without a fingerprint of 64 hex digits, and for plain http to a host that is
// not loopback (participant data never crosses a network in clear).
shared::Result<std::unique_ptr<Transport>> make_http_transport(const HttpTransportOptions& options);

// True for 127.0.0.0/8, ::1 (bare or in brackets) and "localhost": the only
// hosts plain HTTP may be used with, for the hub and for the node's web UI.
bool is_loopback_host(std::string_view host);

// Turns a refusal body {"error":{"code","message"}} into a readable line.
std::string describe_refusal(const HttpResponse& r);

}  // namespace irt::sync
