#include "sync/certificate.h"

#include "sync/event.h"
#include "sync/wire.h"

namespace irt::sync {

namespace {
constexpr std::uint8_t kCertificateMagic[4] = {'I', 'R', 'T', 'C'};
constexpr std::uint8_t kCertificateVersion = 1;
}  // namespace

NodeCertificate sign_certificate(NodeCertificate cert, const crypto::SigningKey& hub_key) {
  Writer w;
  w.raw(kCertificateMagic).u8(kCertificateVersion).str16(cert.node_id).str16(cert.site_id).str16(cert.kind).raw(cert.node_key.view());
  w.u64(cert.serial).i64(cert.valid_from_ms).i64(cert.valid_until_ms);
  auto sig = hub_key.sign(w.bytes());
  w.raw(sig.view());
  cert.record = w.take();
  return cert;
}

shared::Result<NodeCertificate> parse_certificate(crypto::ByteView record) {
  Reader r(record);
  NodeCertificate c;
  auto magic = r.raw(4);
  if (!r.ok() || !std::equal(magic.begin(), magic.end(), kCertificateMagic) || r.u8() != kCertificateVersion)
    return shared::make_error(shared::Errc::unauthenticated, "the node certificate is not a version 1 certificate");
  c.node_id = r.str16(kMaxIdLength);
  c.site_id = r.str16(kMaxIdLength);
  c.kind = r.str16(kMaxIdLength);
  c.node_key = r.fixed<crypto::PublicKey>();
  c.serial = r.u64();
  c.valid_from_ms = r.i64();
  c.valid_until_ms = r.i64();
  r.raw(crypto::Signature::size());
  if (!r.ok() || !r.at_end())
    return shared::make_error(shared::Errc::unauthenticated, "the node certificate is truncated or malformed");
  c.record.assign(record.begin(), record.end());
  return c;
}

shared::Status check_certificate(const NodeCertificate& cert, const crypto::PublicKey& hub_key, std::int64_t now_ms) {
  auto n = cert.record.size() - crypto::Signature::size();
  auto sig = crypto::Signature::from_view(crypto::ByteView(cert.record).subspan(n));
  if (!sig || !crypto::verify(hub_key, crypto::ByteView(cert.record).first(n), *sig))
    return shared::make_error(shared::Errc::unauthenticated,
                              "the node certificate was not signed by this hub; enroll the node with this hub");
  if (now_ms < cert.valid_from_ms || now_ms > cert.valid_until_ms)
    return shared::make_error(shared::Errc::unauthenticated,
                              "the certificate of node " + cert.node_id +
                                  " is outside its validity period; check the device clock or re-enroll the node");
  return {};
}

}  // namespace irt::sync
