// The signed records of the sync protocol as the hub and the node read them
// (sync/event.h, directive.h, certificate.h, merkle.h, protocol.h): the first
// byte picks the decoder, the rest is the record. Each refuses cleanly or
// gives a value that encodes to the very bytes it was read from (records are
// verified over those bytes, so there is one encoding of a value).
#include "sync/certificate.h"
#include "sync/directive.h"
#include "sync/event.h"
#include "sync/merkle.h"
#include "sync/protocol.h"
#include "tests/fuzz/fuzz.h"

using namespace irt;

namespace {

const crypto::SigningKey& fuzz_signing_key() {
  static const auto key = crypto::SigningKey::from_seed(crypto::Bytes(32, 9));
  return key;
}

bool same_bytes(crypto::ByteView a, crypto::ByteView b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

void check_event_record(crypto::ByteView record, sync::EventLimits limits) {
  auto e = sync::parse_event(record, limits);
  if (!e) return fuzz::check_clean_error(e.error());
  FUZZ_CHECK(same_bytes(e->record, record), "the parsed record is not the input");
  if (limits == sync::EventLimits::enforced) {
    auto within = sync::check_event_limits(e->body);
    FUZZ_CHECK(within.ok(), within.error().message);
  }
  (void)sync::verify_event(*e, fuzz_signing_key().public_key());
  auto again = sync::sign_event(e->body, fuzz_signing_key());
  FUZZ_CHECK(same_bytes(again.body_bytes(), e->body_bytes()), "the event's body encodes to other bytes");
  FUZZ_CHECK(again.hash == e->hash, "the same body hashes differently");
}

void check_directive_record(crypto::ByteView record) {
  auto d = sync::parse_directive(record);
  if (!d) return fuzz::check_clean_error(d.error());
  (void)sync::verify_directive(*d, fuzz_signing_key().public_key());
  auto again = sync::sign_directive(d->body, fuzz_signing_key());
  FUZZ_CHECK(same_bytes(again.body_bytes(), d->body_bytes()), "the directive's body encodes to other bytes");
  FUZZ_CHECK(sync::verify_directive(again, fuzz_signing_key().public_key()), "a directive signed here does not verify");
}

void check_certificate_record(crypto::ByteView record) {
  auto c = sync::parse_certificate(record);
  // A certificate is a credential: a malformed one is refused as unauthenticated (401).
  if (!c) return fuzz::check_clean_error(c.error(), {shared::Errc::unauthenticated});
  (void)sync::check_certificate(*c, fuzz_signing_key().public_key(), 0);
  auto again = sync::sign_certificate(*c, fuzz_signing_key());
  auto signed_part = record.size() - crypto::Signature::size();
  FUZZ_CHECK(again.record.size() == record.size() &&
                 same_bytes(crypto::ByteView(again.record).first(signed_part), record.first(signed_part)),
             "the certificate encodes to other bytes");
}

void check_compact_range(crypto::ByteView bytes) {
  auto range = sync::CompactRange::decode(bytes);
  if (!range) return fuzz::check_clean_error(range.error());
  FUZZ_CHECK(same_bytes(range->encode(), bytes), "the compact range encodes to other bytes");
  (void)range->root();
}

void check_receipt(crypto::ByteView bytes) {
  auto r = sync::receipt_from_json(crypto::to_string(bytes));
  if (!r) return fuzz::check_clean_error(r.error());
  auto text = sync::receipt_to_json(*r);
  auto again = sync::receipt_from_json(text);
  FUZZ_CHECK(again.ok(), "its own receipt refused: " + again.error().message);
  FUZZ_CHECK(sync::receipt_to_json(*again) == text, text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  crypto::ByteView record(data + 1, size - 1);
  switch (data[0] % 6) {
    case 0: check_event_record(record, sync::EventLimits::enforced); break;
    case 1: check_event_record(record, sync::EventLimits::ignored); break;
    case 2: check_directive_record(record); break;
    case 3: check_certificate_record(record); break;
    case 4: check_compact_range(record); break;
    default: check_receipt(record); break;
  }
  return 0;
}
