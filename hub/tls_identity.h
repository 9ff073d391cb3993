// The hub's TLS identity: an ECDSA P-256 key and a self-signed X.509
// certificate (SAN DNS:localhost, IP:127.0.0.1, IP:::1), made once by
// `irt-hub init`. Nodes do not trust it through a CA: they pin the SHA-256
// fingerprint of the certificate's DER bytes, which `irt-hub fingerprint`
// prints and the person enrolling a node passes to `irt-node enroll`.
//
// The key file is written 0600 and never read by anything but the server.
// Thread-safety: stateless functions.
#pragma once

#include <filesystem>
#include <string>

#include "shared/result.h"

namespace irt::hub {

// Writes key_file (PEM, 0600, must not exist) and cert_file (PEM), valid for ten years.
shared::Status create_tls_identity(const std::filesystem::path& key_file, const std::filesystem::path& cert_file);

// Lowercase hex SHA-256 of the certificate's DER encoding (64 characters).
shared::Result<std::string> tls_fingerprint(const std::filesystem::path& cert_file);

}  // namespace irt::hub
