// The hub's data directory: creation, refusal to overwrite, key files, reopening.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>

#include "hub/audit.h"
#include "crypto/aead.h"
#include "hub/hub_state.h"
#include "storage/sealed_vfs.h"
#include "sync/checkpoint.h"
#include "sync/protocol.h"
#include "tests/hub/hub_fixture.h"

using namespace irt;
using test::HubFixture;
using test::kHubNow;

namespace {
unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

std::string bytes_text(crypto::ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// Which of the hub's secrets (the signing seed, the unblinding secret, the TLS
// key's PEM body) occur in some file of `dir`, as the hub that opened it holds them.
std::vector<std::string> clear_keys_in(const std::filesystem::path& dir, const hub::HubState& h) {
  const std::string pem = bytes_text(h.tls_key_pem().view());
  const auto body_at = pem.find('\n') + 1;
  const std::map<std::string, std::string> secrets = {
      {"signing seed", bytes_text(h.signing_key().seed().view())},
      {"unblinding secret", bytes_text(h.unblinding_key().secret().view())},
      {"TLS key", pem.substr(body_at, pem.find('\n', body_at) - body_at)},
      {"PEM private key", "PRIVATE KEY"}};
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const auto content = test::read_file(entry.path());
    for (const auto& [name, secret] : secrets)
      if (content.find(secret) != std::string::npos) found.push_back(name + " in " + entry.path().string());
  }
  return found;
}

// A data directory as init made it before keys were wrapped: raw key files, no data key.
// A data directory as a release before wrapped keys and sealed tables left it:
// raw key files, and hub.db in clear.
void write_clear_keys(hub::HubState& h) {
  const auto& p = h.paths();
  for (const auto& f : {p.data_key, p.signing_key, p.unblinding_key, p.tls_key}) std::filesystem::remove(f);
  test::write_file(p.signing_key, bytes_text(h.signing_key().seed().view()));
  test::write_file(p.unblinding_key, bytes_text(h.unblinding_key().secret().view()));
  test::write_file(p.tls_key, bytes_text(h.tls_key_pem().view()));
  for (const auto& f : {p.signing_key, p.unblinding_key, p.tls_key}) ::chmod(f.c_str(), 0600);
  if (p.postgresql()) return;
  const auto clear = p.database.string() + ".clear";
  h.db().exec("PRAGMA wal_checkpoint(TRUNCATE); VACUUM INTO '" + clear + "'");
  {
    std::fstream f(clear, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(68);  // the header's application id: no longer marked sealed
    f.write("\0\0\0\0", 4);
  }
  std::filesystem::rename(clear, p.database);
}

// Whether the bytes of DIR's database files hold `text`.
bool database_files_hold(const std::filesystem::path& dir, const std::string& text) {
  for (const char* suffix : {"", "-wal"}) {
    const auto f = dir / (std::string("hub.db") + suffix);
    if (std::filesystem::exists(f) && test::read_file(f).find(text) != std::string::npos) return true;
  }
  return false;
}
}  // namespace

TEST_CASE("init makes the keys, TLS identity and database with private permissions") {
  HubFixture f;
  const auto& p = f.hub->paths();
  CHECK(mode_of(p.dir) == 0700);
  CHECK(mode_of(p.signing_key) == 0600);
  CHECK(mode_of(p.unblinding_key) == 0600);
  CHECK(mode_of(p.tls_key) == 0600);
  CHECK(mode_of(p.data_key) == 0600);
  // The SQLite file, or the file recording the PostgreSQL URL.
  CHECK(mode_of(p.postgresql() ? p.database_url : p.database) == 0600);
  CHECK(std::filesystem::file_size(p.signing_key) == 32 + crypto::kAeadOverhead);  // sealed, not the raw seed
  CHECK(f.hub->tls_fingerprint().size() == 64);
  CHECK(f.hub->study().id == "VLC-301");
  CHECK(f.hub->ledger().origin() == "irt.hub/VLC-301");
  // The empty tree already has a signed head.
  auto cp = sync::open_checkpoint(f.hub->ledger().latest_checkpoint(), sync::kCheckpointKeyName,
                                  f.hub->signing_key().public_key());
  REQUIRE(cp);
  CHECK(cp->size == 0);
  auto audit = hub::audit_entries(f.hub->db());
  REQUIRE_FALSE(audit.empty());
  CHECK(audit[0].action == "hub.initialized");
  CHECK(audit[0].actor == "tester");
}

TEST_CASE("reopening a hub gives the same keys, fingerprint and study") {
  HubFixture f;
  auto key = f.hub->signing_key().public_key();
  auto unblinding = f.hub->unblinding_key().public_key();
  auto fingerprint = f.hub->tls_fingerprint();
  auto dir = f.hub->paths().dir;
  f.hub.reset();
  auto again = hub::HubState::open(dir, test::kHubPassphrase);
  REQUIRE_MESSAGE(again.ok(), again.error().message);
  CHECK((*again)->signing_key().public_key() == key);
  CHECK((*again)->unblinding_key().public_key() == unblinding);
  CHECK((*again)->tls_fingerprint() == fingerprint);
  CHECK((*again)->study().id == "VLC-301");
}

TEST_CASE("a copied data directory holds none of the hub's keys in clear, and they open only with the passphrase") {
  HubFixture f;
  const auto dir = f.hub->paths().dir;
  const auto key = f.hub->signing_key().public_key();
  REQUIRE(f.hub->tls_key_pem().size() > 100);
  CHECK(clear_keys_in(dir, *f.hub) == std::vector<std::string>{});
  // The check can fail: the same keys written in clear are found.
  test::TempDir copy;
  std::filesystem::copy(dir, copy / "hub", std::filesystem::copy_options::recursive);
  auto clear = hub::HubState::open(copy / "hub", test::kHubPassphrase);
  REQUIRE_MESSAGE(clear.ok(), clear.error().message);
  write_clear_keys(**clear);
  CHECK(clear_keys_in(copy / "hub", *f.hub).size() == 4);
  if (!f.hub->paths().postgresql()) {
    // Nor the randomization list, its seed, or a kit's type: the tables are sealed.
    auto list = f.hub->db().prepare("SELECT list_csv, seed FROM hub_randomization_lists");
    REQUIRE(list.step());
    const auto csv = list.text(0);
    const auto seed = list.blob(1);
    auto kit = f.hub->db().prepare("SELECT kit_number, kit_type FROM hub_kits LIMIT 1");
    REQUIRE(kit.step());
    for (const auto& secret : {csv.substr(csv.find('\n') + 1, 40), std::string(seed.begin(), seed.end()),
                               kit.text(0), std::string("hub_allocations")})
      CHECK_FALSE(database_files_hold(dir, secret));
    // The check can fail: the copy just written in clear shows them.
    CHECK(database_files_hold(copy / "hub", csv.substr(csv.find('\n') + 1, 40)));
    CHECK(database_files_hold(copy / "hub", kit.text(0)));
  }

  f.hub.reset();
  const auto before = test::read_file(dir / "keys" / "hub-data.key");
  auto wrong = hub::HubState::open(dir, "not the hub's passphrase");
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().code == shared::Errc::unauthenticated);
  CHECK(wrong.error().message.find("wrong passphrase") != std::string::npos);
  CHECK(wrong.error().message.find("IRT_HUB_PASSPHRASE or --passphrase-file") != std::string::npos);
  CHECK(test::read_file(dir / "keys" / "hub-data.key") == before);
  auto right = hub::HubState::open(dir, test::kHubPassphrase);
  REQUIRE_MESSAGE(right.ok(), right.error().message);
  CHECK((*right)->signing_key().public_key() == key);
}

TEST_CASE("a sealed key file moved to another key's place or edited does not open") {
  HubFixture f;
  const auto p = f.hub->paths();
  f.hub.reset();
  const auto signing = test::read_file(p.signing_key), unblinding = test::read_file(p.unblinding_key);
  std::filesystem::remove(p.signing_key);
  test::write_file(p.signing_key, unblinding);
  ::chmod(p.signing_key.c_str(), 0600);
  auto swapped = hub::HubState::open(p.dir, test::kHubPassphrase);
  REQUIRE_FALSE(swapped.ok());
  CHECK(swapped.error().code == shared::Errc::integrity);
  CHECK(swapped.error().message.find(p.signing_key.string() + " does not open") != std::string::npos);

  std::filesystem::remove(p.signing_key);
  test::write_file(p.signing_key, signing);
  ::chmod(p.signing_key.c_str(), 0600);
  REQUIRE(hub::HubState::open(p.dir, test::kHubPassphrase).ok());
  test::flip_byte_in_file(p.tls_key, 30);
  auto edited = hub::HubState::open(p.dir, test::kHubPassphrase);
  REQUIRE_FALSE(edited.ok());
  CHECK(edited.error().message.find(p.tls_key.string() + " does not open") != std::string::npos);
}

TEST_CASE("a data directory with keys in clear is refused naming keys wrap, which wraps them in place") {
  HubFixture f;
  const auto p = f.hub->paths();
  const auto key = f.hub->signing_key().public_key();
  const auto unblinding = f.hub->unblinding_key().public_key();
  const auto fingerprint = f.hub->tls_fingerprint();
  write_clear_keys(*f.hub);
  auto legacy = hub::HubState::open(p.dir, test::kHubPassphrase);
  REQUIRE_FALSE(legacy.ok());
  CHECK(legacy.error().message.find("stored in clear") != std::string::npos);
  CHECK(legacy.error().message.find("irt-hub keys wrap --data " + p.dir.string()) != std::string::npos);

  auto wrapped = hub::HubState::wrap_clear_keys(p.dir, test::kHubPassphrase, crypto::kTest);
  REQUIRE_MESSAGE(wrapped.ok(), wrapped.error().message);
  CHECK(clear_keys_in(p.dir, *f.hub) == std::vector<std::string>{});
  auto again = hub::HubState::wrap_clear_keys(p.dir, test::kHubPassphrase, crypto::kTest);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().message.find("already wrapped") != std::string::npos);
  f.hub.reset();
  auto opened = hub::HubState::open(p.dir, test::kHubPassphrase);
  REQUIRE_MESSAGE(opened.ok(), opened.error().message);
  if (!p.postgresql()) {  // the clear hub.db was sealed as it opened, its tables whole
    CHECK(storage::detail::sqlite_file_kind(p.database) == storage::detail::FileKind::sealed);
    CHECK_FALSE(database_files_hold(p.dir, "hub_allocations"));
    CHECK((*opened)->study().id == "VLC-301");
  }
  CHECK((*opened)->signing_key().public_key() == key);
  CHECK((*opened)->unblinding_key().public_key() == unblinding);
  CHECK((*opened)->tls_fingerprint() == fingerprint);
  CHECK(bytes_text((*opened)->tls_key_pem().view()).find("PRIVATE KEY") != std::string::npos);
}

TEST_CASE("two hubs have different identities") {
  HubFixture a, b;
  CHECK(a.hub->signing_key().public_key() != b.hub->signing_key().public_key());
  CHECK(a.hub->tls_fingerprint() != b.hub->tls_fingerprint());
}

TEST_CASE("init refuses an existing directory and leaves it untouched") {
  test::TempDir dir;
  std::filesystem::create_directory(dir / "hub");
  test::write_file(dir / "hub" / "keep.txt", "mine");
  auto r = hub::HubState::create(dir / "hub", test::read_file(test::source_path("packaging/examples/study-blocks.json")),
                                 "tester", kHubNow, test::kHubPassphrase, crypto::kTest);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::invalid_input);
  CHECK(r.error().message.find("already exists") != std::string::npos);
  CHECK(test::read_file(dir / "hub" / "keep.txt") == "mine");
  CHECK(std::distance(std::filesystem::directory_iterator(dir / "hub"), {}) == 1);
}

TEST_CASE("init with an invalid study creates nothing") {
  test::TempDir dir;
  auto pg = test::hub_postgres();
  auto r = hub::HubState::create(dir / "hub", R"({"id": "X"})", "tester", kHubNow, test::kHubPassphrase, crypto::kTest, pg ? pg->url() : "");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::invalid_input);
  CHECK_FALSE(std::filesystem::exists(dir / "hub"));
  if (pg) {
    auto db = pg->open();
    CHECK_FALSE(test::has_table(db, "schema_version"));
  }
}

TEST_CASE("opening a missing directory or one with a key readable by others is refused") {
  test::TempDir dir;
  auto missing = hub::HubState::open(dir / "nothing", test::kHubPassphrase);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == shared::Errc::not_found);
  CHECK(missing.error().message.find("irt-hub init") != std::string::npos);

  HubFixture f;
  auto p = f.hub->paths();
  f.hub.reset();
  ::chmod(p.signing_key.c_str(), 0644);
  auto open = hub::HubState::open(p.dir, test::kHubPassphrase);
  REQUIRE_FALSE(open.ok());
  CHECK(open.error().message.find("chmod 600") != std::string::npos);
}

TEST_CASE("a database a newer release migrated is refused, naming both versions and the fix, and left unchanged") {
  for (const std::string component : {"hub.kits", "ledger"}) {
    CAPTURE(component);
    HubFixture f;
    auto paths = f.hub->paths();
    f.hub->db().prepare("UPDATE schema_version SET version = version + 1 WHERE component = ?").bind(1, component).run();
    const int newer = f.hub->db().schema_version(component);
    f.hub.reset();
    auto r = hub::HubState::open(paths.dir, test::kHubPassphrase);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == shared::Errc::conflict);
    CHECK_MESSAGE(r.error().message.find(component + " schema version " + std::to_string(newer) +
                                         ", newer than this program knows (" + std::to_string(newer - 1) + ")") !=
                      std::string::npos,
                  r.error().message);
    CHECK(r.error().message.find("install the newer release") != std::string::npos);
    auto db = hub::HubState::open_database(paths.dir, test::kHubPassphrase);
    REQUIRE(db.ok());
    CHECK(db->schema_version(component) == newer);
  }
}

TEST_CASE("--db naming another database than init recorded is refused, without the password, and the recorded one is accepted") {
  HubFixture f;
  auto paths = f.hub->paths();
  f.hub.reset();
  auto other = hub::HubState::open(paths.dir, test::kHubPassphrase, "postgresql://irt:s3cret@127.0.0.1:1/another_hub");
  REQUIRE_FALSE(other.ok());
  CHECK(other.error().code == shared::Errc::invalid_input);
  CHECK(other.error().message.find("s3cret") == std::string::npos);
  if (f.pg) {
    CHECK(other.error().message.find("is not the database this hub was initialized with") != std::string::npos);
    CHECK(other.error().message.find(paths.database_url.string()) != std::string::npos);
    auto same = hub::HubState::open(paths.dir, test::kHubPassphrase, f.pg->url());
    CHECK_MESSAGE(same.ok(), same.error().message);
  } else {
    CHECK(other.error().message.find("keeps its tables in " + paths.database.string()) != std::string::npos);
  }
}

TEST_CASE("a data directory whose database holds no hub is refused, and the database gets no tables") {
  HubFixture f;
  auto paths = f.hub->paths();
  f.hub.reset();
  // The database replaced by an empty one: a database.url edited to name the
  // wrong database, or a hub.db lost and recreated.
  auto empty = test::hub_postgres();
  if (empty) {
    std::filesystem::remove(paths.database_url);
    test::write_file(paths.database_url, empty->url() + "\n");
  } else {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(paths.database.string() + suffix);
    REQUIRE(storage::Database::open(paths.database).ok());
  }
  auto r = hub::HubState::open(paths.dir, test::kHubPassphrase);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::not_found);
  CHECK(r.error().message.find("holds no hub") != std::string::npos);
  auto db = empty ? storage::Database::open_location(empty->url())
                  : hub::HubState::open_database(paths.dir, test::kHubPassphrase);
  REQUIRE(db.ok());
  CHECK(db->tables().empty());
}

TEST_CASE("the hub's audit trail is append-only in the database: no statement changes or deletes a record") {
  HubFixture f;
  auto count = [&] {
    auto st = f.hub->db().prepare("SELECT count(*), max(actor) FROM hub_audit");
    REQUIRE(st.step());
    return std::to_string(st.int64(0)) + " " + st.text(1);
  };
  const auto before = count();
  CHECK(before.rfind("0 ", 0) != 0);  // init recorded itself
  CHECK_THROWS_AS(f.hub->db().exec("UPDATE hub_audit SET actor = 'someone else'"), storage::StorageError);
  CHECK_THROWS_AS(f.hub->db().exec("DELETE FROM hub_audit"), storage::StorageError);
  if (f.hub->db().engine() == storage::Engine::postgresql)
    CHECK_THROWS_AS(f.hub->db().exec("TRUNCATE hub_audit"), storage::StorageError);
  CHECK(count() == before);
  hub::record_audit(f.hub->db(), {test::kHubNow, "tester", "test.appended", "x", "", "", ""});
  CHECK(count() != before);  // appending still works
}

TEST_CASE("a backup an earlier release wrote, the hub's clear database itself, restores into a sealed hub.db") {
  HubFixture f;
  const auto p = f.hub->paths();
  if (p.postgresql()) return;  // backups are SQLite's (docs/operations.md)
  test::TempDir keep;
  // The earlier format: a clear copy of hub.db, the key files in table irt_backup_files.
  const auto backup = keep / "old.backup";
  f.hub->db().exec("VACUUM INTO '" + backup.string() + "'");
  {
    std::fstream file(backup, std::ios::binary | std::ios::in | std::ios::out);
    file.seekp(68);  // the header's application id: not marked sealed
    file.write("\0\0\0\0", 4);
  }
  {
    auto db = storage::Database::open(backup, {.create = false});
    REQUIRE_MESSAGE(db.ok(), db.error().message);
    db->exec("CREATE TABLE irt_backup_files (path TEXT PRIMARY KEY, content BLOB NOT NULL)");
    for (const auto& file : {p.data_key, p.signing_key, p.unblinding_key, p.tls_key, p.tls_certificate}) {
      const auto text = test::read_file(file);
      db->prepare("INSERT INTO irt_backup_files(path, content) VALUES (?, ?)")
          .bind_all(std::filesystem::relative(file, p.dir).string(), storage::Blob(text.begin(), text.end()))
          .run();
    }
    db->exec("PRAGMA journal_mode=DELETE");
  }
  REQUIRE(test::read_file(backup).find("hub_randomization_lists") != std::string::npos);  // in clear
  auto restored = hub::HubState::restore(backup, keep / "restored", test::kHubPassphrase);
  REQUIRE_MESSAGE(restored.ok(), restored.error().message);
  CHECK((*restored)->study().id == "VLC-301");
  CHECK((*restored)->signing_key().public_key() == f.hub->signing_key().public_key());
  CHECK(storage::detail::sqlite_file_kind(keep / "restored" / "hub.db") == storage::detail::FileKind::sealed);
  CHECK_FALSE(database_files_hold(keep / "restored", "hub_randomization_lists"));
  CHECK_FALSE(std::filesystem::exists(keep / "restored" / "restore.partial"));
  CHECK((*restored)->ledger().verify_all().ok());
}
