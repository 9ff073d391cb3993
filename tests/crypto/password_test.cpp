#include "crypto/password.h"

#include <doctest/doctest.h>

#include "crypto/key_wrap.h"
#include "crypto/seal.h"

using namespace irt::crypto;

TEST_CASE("a password hash verifies the password and nothing else") {
  auto h = password_hash("correct horse", kTest);
  CHECK(h.rfind("$argon2id$", 0) == 0);
  CHECK(password_verify(h, "correct horse"));
  CHECK_FALSE(password_verify(h, "correct hors"));
  CHECK_FALSE(password_verify("not a hash", "correct horse"));
}

TEST_CASE("Argon2id derivation is deterministic in passphrase and salt") {
  Salt salt = random_salt();
  auto a = derive_key("pass", salt, kTest);
  auto b = derive_key("pass", salt, kTest);
  auto c = derive_key("pasS", salt, kTest);
  CHECK(equal_ct(a.view(), b.view()));
  CHECK_FALSE(equal_ct(a.view(), c.view()));
}

TEST_CASE("a wrapped key unwraps with the passphrase and is refused with a wrong one") {
  auto secret = SecretBytes::random(32);
  Bytes wrapped = wrap_key(secret, "site 101 passphrase", kTest);
  auto ok = unwrap_key(wrapped, "site 101 passphrase");
  REQUIRE(ok.secret);
  CHECK(equal_ct(ok.secret->view(), secret.view()));

  auto bad = unwrap_key(wrapped, "site 102 passphrase");
  CHECK_FALSE(bad.secret);
  CHECK(bad.error == UnwrapError::wrong_passphrase);
}

TEST_CASE("a wrapped key file with an edited header, a newer version or truncation is refused") {
  auto secret = SecretBytes::random(32);
  Bytes wrapped = wrap_key(secret, "p", kTest);

  Bytes weaker = wrapped;
  weaker[22] ^= 0x01;  // a salt byte: header bytes are authenticated
  CHECK(unwrap_key(weaker, "p").error == UnwrapError::wrong_passphrase);

  Bytes newer = wrapped;
  newer[4] = 2;
  CHECK(unwrap_key(newer, "p").error == UnwrapError::unsupported_version);

  CHECK(unwrap_key(ByteView(wrapped).first(40), "p").error == UnwrapError::malformed);
  Bytes not_ours = wrapped;
  not_ours[0] = 'X';
  CHECK(unwrap_key(not_ours, "p").error == UnwrapError::malformed);
}

TEST_CASE("a sealed box opens only with the recipient's key pair") {
  auto hub = BoxKeyPair::generate();
  auto sealed = seal_to(hub.public_key(), as_bytes("arm B"));
  auto opened = open_sealed(hub, sealed);
  REQUIRE(opened);
  CHECK(to_string(*opened) == "arm B");
  CHECK_FALSE(open_sealed(BoxKeyPair::generate(), sealed));
  sealed.back() ^= 1;
  CHECK_FALSE(open_sealed(hub, sealed));
}
