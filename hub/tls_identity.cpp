#include "hub/tls_identity.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "crypto/bytes.h"
#include "crypto/hash.h"

namespace irt::hub {

namespace {

template <class T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

shared::Error failed(const std::string& what) {
  return shared::make_error(shared::Errc::internal, "could not " + what + " (" + openssl_error() +
                                                        "); check the OpenSSL installation and retry");
}

bool add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

}  // namespace

shared::Result<crypto::SecretBytes> create_tls_identity(const std::filesystem::path& cert_file) {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return failed("generate the TLS key");

  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return failed("create the TLS certificate");
  // A random positive 127-bit serial, as CAs do, so two hubs never share one.
  auto serial_bytes = crypto::random_bytes(16);
  serial_bytes[0] &= 0x7f;
  BnPtr serial(BN_bin2bn(serial_bytes.data(), static_cast<int>(serial_bytes.size()), nullptr));
  if (!serial || !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())))
    return failed("set the TLS certificate serial");
  // An hour of slack for a node whose clock runs a little behind.
  constexpr long kTenYears = 10L * 365 * 24 * 3600;
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), kTenYears))
    return failed("set the TLS certificate validity");
  if (X509_set_pubkey(cert.get(), key.get()) != 1) return failed("set the TLS certificate key");
  X509_NAME* name = X509_get_subject_name(cert.get());
  const auto* cn = reinterpret_cast<const unsigned char*>("irt-hub");
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, cn, -1, -1, 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1)
    return failed("name the TLS certificate");
  if (!add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !add_extension(cert.get(), NID_key_usage, "critical,digitalSignature") ||
      !add_extension(cert.get(), NID_ext_key_usage, "serverAuth") ||
      !add_extension(cert.get(), NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"))
    return failed("add the TLS certificate extensions");
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return failed("sign the TLS certificate");

  FilePtr cf(std::fopen(cert_file.c_str(), "wx"));
  if (!cf) return shared::make_error(shared::Errc::conflict, "cannot create " + cert_file.string());
  if (PEM_write_X509(cf.get(), cert.get()) != 1 || std::fflush(cf.get()) != 0 || fsync(fileno(cf.get())) != 0)
    return failed("write the TLS certificate to " + cert_file.string());
  // A secure-heap BIO: OpenSSL zeroes its buffer when it is freed.
  BioPtr pem(BIO_new(BIO_s_secmem()));
  if (!pem || PEM_write_bio_PrivateKey(pem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return failed("encode the TLS key");
  char* data = nullptr;
  long size = BIO_get_mem_data(pem.get(), &data);
  if (size <= 0) return failed("encode the TLS key");
  return crypto::SecretBytes::copy_of({reinterpret_cast<const std::uint8_t*>(data), static_cast<std::size_t>(size)});
}

shared::Result<TlsIdentity> load_tls_identity(const std::filesystem::path& cert_file,
                                              const crypto::SecretBytes& key_pem) {
  TlsIdentity out;
  FilePtr f(std::fopen(cert_file.c_str(), "r"));
  if (f) out.certificate.reset(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  BioPtr pem(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  if (pem) out.key.reset(PEM_read_bio_PrivateKey(pem.get(), nullptr, nullptr, nullptr));
  if (!out.certificate || !out.key)
    return shared::make_error(shared::Errc::integrity, "the hub's TLS certificate " + cert_file.string() +
                                                           " or its key cannot be loaded; restore the data "
                                                           "directory from backup");
  if (X509_check_private_key(out.certificate.get(), out.key.get()) != 1)
    return shared::make_error(shared::Errc::integrity, "the hub's TLS key does not match its certificate " +
                                                           cert_file.string() + "; restore the data directory from backup");
  return out;
}

shared::Result<std::string> tls_fingerprint(const std::filesystem::path& cert_file) {
  FilePtr f(std::fopen(cert_file.c_str(), "r"));
  if (!f)
    return shared::make_error(shared::Errc::not_found, "cannot read the hub's TLS certificate " +
                                                           cert_file.string() + "; is this a hub data directory?");
  X509Ptr cert(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  if (!cert)
    return shared::make_error(shared::Errc::integrity, cert_file.string() +
                                                           " is not a PEM certificate; restore the data directory "
                                                           "from backup");
  unsigned char* der = nullptr;
  int len = i2d_X509(cert.get(), &der);
  if (len <= 0) return failed("encode the TLS certificate");
  auto digest = crypto::sha256({der, static_cast<std::size_t>(len)});
  OPENSSL_free(der);
  return digest.hex();
}

}  // namespace irt::hub
