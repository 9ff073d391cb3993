// The hub's TLS identity: an ECDSA P-256 key and a self-signed X.509
// certificate (SAN DNS:localhost, IP:127.0.0.1, IP:::1), made once by
// `irt-hub init`. Nodes do not trust it through a CA: they pin the SHA-256
// fingerprint of the certificate's DER bytes, which `irt-hub fingerprint`
// prints and the person enrolling a node passes to `irt-node enroll`.
//
// The key never touches the disk in clear: create_tls_identity returns it as
// PEM in memory, HubState stores it sealed under the hub's data key
// (hub/hub_state.h), and the server is given it from memory (load_tls_identity).
// Thread-safety: stateless functions.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <filesystem>
#include <memory>
#include <string>

#include "crypto/bytes.h"
#include "shared/result.h"

namespace irt::hub {

// Writes cert_file (PEM, must not exist), valid for ten years; returns its private key as PEM.
shared::Result<crypto::SecretBytes> create_tls_identity(const std::filesystem::path& cert_file);

// The certificate of cert_file and the key of key_pem, as OpenSSL objects for
// httplib::SSLServer (which takes its own references to them).
struct TlsIdentity {
  struct X509Free {
    void operator()(X509* p) const { X509_free(p); }
  };
  struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  };
  std::unique_ptr<X509, X509Free> certificate;
  std::unique_ptr<EVP_PKEY, PkeyFree> key;
};
shared::Result<TlsIdentity> load_tls_identity(const std::filesystem::path& cert_file, const crypto::SecretBytes& key_pem);

// Lowercase hex SHA-256 of the certificate's DER encoding (64 characters).
shared::Result<std::string> tls_fingerprint(const std::filesystem::path& cert_file);

}  // namespace irt::hub
