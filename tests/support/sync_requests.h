// The headers of a signed push or proof request (docs/sync-protocol.md), for
// tests that speak the sync protocol by hand: the node's certificate, its
// clock, and its key's signature over the request's content.
#pragma once

#include <httplib.h>

#include <optional>
#include <string>

#include "crypto/bytes.h"
#include "crypto/sign.h"
#include "sync/hlc.h"
#include "sync/protocol.h"

namespace irt::test {

inline httplib::Headers signed_request_headers(const crypto::Bytes& certificate, const crypto::SigningKey& key,
                                               const char* domain, const std::string& content,
                                               std::optional<std::int64_t> time_ms = std::nullopt) {
  const auto t = time_ms.value_or(sync::system_millis());
  auto sig = key.sign(crypto::as_bytes(sync::request_signing_text(domain, t, content)));
  return {{sync::kCertificateHeader, crypto::to_base64(certificate)},
          {sync::kTimeHeader, std::to_string(t)},
          {sync::kSignatureHeader, crypto::to_base64(sig.view())}};
}

}  // namespace irt::test
