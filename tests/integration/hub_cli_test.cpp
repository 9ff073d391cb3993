// The real irt-hub binary: init, invite, fingerprint, user add, nodes, alerts,
// revoke, unfreeze, verify, and serve over HTTPS and loopback HTTP, driven
// through its command line and the /sync/v1 endpoints.
#include <doctest/doctest.h>
#include <httplib.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <filesystem>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "crypto/hash.h"
#include "crypto/sign.h"
#include "shared/event_payloads.h"
#include "storage/database.h"
#include "sync/batch.h"
#include "sync/certificate.h"
#include "sync/checkpoint.h"
#include "sync/directive.h"
#include "sync/event.h"
#include "sync/hlc.h"
#include "sync/merkle.h"
#include "sync/protocol.h"
#include "tests/support/cluster.h"
#include "tests/support/sync_requests.h"
#include "tests/support/test_support.h"

using namespace irt;
using test::CommandResult;

namespace {

const std::string kStudy = "packaging/examples/study-blocks.json";

CommandResult hub(std::vector<std::string> args, const std::string& stdin_text = "") {
  args.insert(args.begin(), IRT_HUB_BIN);
  return test::run(args, stdin_text);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// A hub data directory made with `irt-hub init`.
struct InitializedHub {
  test::TempDir dir;
  std::string data = (dir / "hub").string();
  std::string init_out;
  // With the hub's first user, admin.kim (role admin: manage_users, manage_nodes, view_audit), unless `bare`.
  explicit InitializedHub(bool bare = false) {
    auto r = hub({"init", "--kdf-cost", "min", "--data", data, "--study", test::source_path(kStudy)});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    init_out = r.out;
    if (bare) return;
    auto admin = hub({"user", "add", "--data", data, "--name", "admin.kim", "--role", "admin"}, kAdminPassword + "\n");
    REQUIRE_MESSAGE(admin.exit_code == 0, admin.err);
  }
  static inline const std::string kAdminPassword = "admin-password-123";
  // admin.kim's password, as the first line of standard input.
  std::string add_admin() const { return kAdminPassword; }
  // A command acting as admin.kim: --user (a decision) or --reader (a read); `more` follows the password.
  CommandResult as_admin(std::vector<std::string> args, const std::string& option = "--user",
                         const std::string& more = "") const {
    args.insert(args.begin() + (args.at(0) == "user" ? 2 : 1), {"--data", data, option, "admin.kim"});
    return hub(std::move(args), kAdminPassword + "\n" + more);
  }
  CommandResult read(std::vector<std::string> args) const { return as_admin(std::move(args), "--reader"); }
  crypto::PublicKey hub_key() const {
    auto at = init_out.find("hub signing key: ");
    REQUIRE(at != std::string::npos);
    auto key = crypto::PublicKey::from_hex(init_out.substr(at + 17, 64));
    REQUIRE(key);
    return *key;
  }
};

// `irt-hub serve` on a free loopback port, stopped with SIGTERM at the end.
struct Serving {
  int port = test::free_port();
  std::filesystem::path log;
  std::unique_ptr<test::Process> process;
  Serving(const InitializedHub& h, bool tls) : log(h.dir / "serve.log") {
    std::vector<std::string> argv{IRT_HUB_BIN, "serve", "--data", h.data, "--listen",
                                  "127.0.0.1:" + std::to_string(port)};
    if (!tls) argv.push_back("--http");
    process = std::make_unique<test::Process>(argv, std::vector<std::string>{}, log);
    REQUIRE_MESSAGE(test::wait_for_port(port), "irt-hub serve did not start: " << test::read_file(log));
  }
  int stop() { return process->terminate(); }
};

// A device's side of the protocol: its key, certificate and log.
struct Device {
  crypto::SigningKey key = crypto::SigningKey::generate();
  std::string node_id;
  crypto::Bytes certificate;
  std::vector<sync::SignedEvent> log;

  sync::SignedEvent make(std::uint64_t seq, const crypto::Hash& prev, const std::string& text) const {
    sync::EventBody b;
    b.node_id = node_id;
    b.seq = seq;
    b.prev_hash = prev;
    b.hlc = seq;
    b.device_time_ms = 1767225600000;
    b.actor = "coordinator.jane";
    b.type = shared::kSiteNoteEvent;
    std::string p = nlohmann::json(shared::SiteNote{text, "coordinator", "101"}).dump();
    b.payload.assign(p.begin(), p.end());
    return sync::sign_event(std::move(b), key);
  }
  void append(int n) {
    for (int i = 0; i < n; ++i)
      log.push_back(make(log.size() + 1, log.empty() ? crypto::Hash{} : log.back().hash, "note"));
  }
  httplib::Headers cert_header() const {
    return {{sync::kCertificateHeader, crypto::to_base64(certificate)}};
  }
  // The headers of a push or proof request over `content`, signed by `signer`
  // (the node's key by default) at `time_ms` (now by default).
  httplib::Headers signed_headers(const char* domain, const std::string& content,
                                  const crypto::SigningKey* signer = nullptr,
                                  std::optional<std::int64_t> time_ms = std::nullopt) const {
    return test::signed_request_headers(certificate, signer ? *signer : key, domain, content, time_ms);
  }
  std::string batch(std::uint64_t from, std::uint64_t to) const {
    std::vector<crypto::Bytes> records;
    for (auto s = from; s <= to; ++s) records.push_back(log[s - 1].record);
    auto body = sync::encode_batch(records);
    return std::string(body.begin(), body.end());
  }
  httplib::Result push_body(httplib::Client& cli, const std::string& body) const {
    return cli.Post(sync::kPushPath, signed_headers(sync::kPushDomain, body), body, "application/octet-stream");
  }
  httplib::Result push(httplib::Client& cli, std::uint64_t from, std::uint64_t to) const {
    return push_body(cli, batch(from, to));
  }
  httplib::Result proof(httplib::Client& cli, const std::string& node, std::uint64_t seq) const {
    const std::string query = "node=" + node + "&seq=" + std::to_string(seq);
    return cli.Get(std::string(sync::kProofPath) + "?" + query, signed_headers(sync::kProofDomain, query));
  }
  httplib::Result pull(httplib::Client& cli, std::uint64_t after, const crypto::SigningKey* signer = nullptr) const {
    std::string body = nlohmann::json{{"node_id", node_id}, {"after", after},
                                      {"time_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                                      std::chrono::system_clock::now().time_since_epoch())
                                                      .count()},
                                      {"limit", 100}}
                           .dump();
    auto sig = (signer ? *signer : key).sign(crypto::as_bytes(std::string(sync::kPullDomain) + body));
    auto headers = cert_header();
    headers.emplace(sync::kSignatureHeader, crypto::to_base64(sig.view()));
    return cli.Post(sync::kPullPath, headers, body, "application/json");
  }
};

std::string invite(const InitializedHub& h, const std::string& site = "101") {
  auto r = h.as_admin({"invite", "--site", site});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return trim(r.out);
}

nlohmann::json enroll(httplib::Client& cli, const std::string& token, Device& d) {
  nlohmann::json req{{"token", token}, {"node_public_key", d.key.public_key().hex()}, {"device", "integration test"}};
  auto res = cli.Post(sync::kEnrollPath, req.dump(), "application/json");
  REQUIRE(res);
  REQUIRE_MESSAGE(res->status == 200, res->body);
  auto j = nlohmann::json::parse(res->body);
  d.node_id = j["node_id"];
  d.certificate = *crypto::from_base64(j["certificate"].get<std::string>());
  return j;
}

std::string error_code(const httplib::Result& res) {
  REQUIRE(res);
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  REQUIRE_MESSAGE(j.contains("error"), res->body);
  return j["error"]["code"];
}

// Pins the hub's certificate by its SHA-256 fingerprint, as a node does: the
// chain is not trusted through any CA; only the exact certificate is.
std::string g_pinned_fingerprint;
int pin_fingerprint(int /*preverify_ok*/, X509_STORE_CTX* ctx) {
  if (X509_STORE_CTX_get_error_depth(ctx) != 0) return 1;
  unsigned char* der = nullptr;
  int len = i2d_X509(X509_STORE_CTX_get_current_cert(ctx), &der);
  if (len <= 0) return 0;
  auto fp = crypto::sha256({der, static_cast<std::size_t>(len)}).hex();
  OPENSSL_free(der);
  return fp == g_pinned_fingerprint ? 1 : 0;
}

}  // namespace

TEST_CASE("irt-hub lists the node commands and each has --help") {
  auto top = hub({"--help"});
  CHECK(top.exit_code == 0);
  for (const char* c : {"init", "invite", "fingerprint", "user", "serve", "revoke", "unfreeze", "verify", "nodes",
                        "alerts"})
    CHECK_MESSAGE(top.out.find(std::string("  ") + c + " ") != std::string::npos, c);
  auto init = hub({"init", "--help"});
  CHECK(init.exit_code == 0);
  CHECK(init.out.find("--study FILE") != std::string::npos);
  auto add = hub({"user", "add", "--help"});
  CHECK(add.exit_code == 0);
  CHECK(add.out.find("--role ROLE") != std::string::npos);
  auto serve = hub({"serve", "--help"});
  CHECK(serve.out.find("--http") != std::string::npos);
  auto missing = hub({"init", "--kdf-cost", "min", "--data", "/tmp/x"});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("--study") != std::string::npos);
}

TEST_CASE("init creates a hub and prints its fingerprint, and fingerprint prints the same") {
  InitializedHub h;
  auto fp = hub({"fingerprint", "--data", h.data});
  REQUIRE(fp.exit_code == 0);
  auto hex = trim(fp.out);
  CHECK(hex.size() == 64);
  CHECK(hex.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(h.init_out.find(hex) != std::string::npos);
  CHECK(std::filesystem::exists(std::filesystem::path(h.data) / "hub.db"));
}

TEST_CASE("serve without the hub's passphrase or with a wrong one exits naming the fix, and the right one serves") {
  InitializedHub h;
  const auto keys = std::filesystem::path(h.data) / "keys";
  const auto before = test::read_file(keys / "hub-data.key") + test::read_file(keys / "hub-signing.key");
  const int port = test::free_port();
  const std::vector<std::string> serve = {IRT_HUB_BIN, "serve", "--data", h.data, "--listen",
                                          "127.0.0.1:" + std::to_string(port), "--http"};
  auto missing = test::run(serve, "", {"IRT_HUB_PASSPHRASE="});
  CHECK(missing.exit_code != 0);
  CHECK_MESSAGE(missing.err.find("no passphrase for the hub's keys: set IRT_HUB_PASSPHRASE or give --passphrase-file FILE") !=
                    std::string::npos,
                missing.err);
  auto wrong = test::run(serve, "", {"IRT_HUB_PASSPHRASE=not the hub passphrase"});
  CHECK(wrong.exit_code != 0);
  CHECK_MESSAGE(wrong.err.find("wrong passphrase for the hub in " + h.data) != std::string::npos, wrong.err);
  test::TempDir dir;
  test::write_file(dir / "wrong", "not the hub passphrase\n");
  auto wrong_file = test::run({IRT_HUB_BIN, "fingerprint", "--data", h.data, "--passphrase-file", (dir / "wrong").string()});
  CHECK(wrong_file.exit_code != 0);
  CHECK(wrong_file.err.find("wrong passphrase") != std::string::npos);
  CHECK(test::read_file(keys / "hub-data.key") + test::read_file(keys / "hub-signing.key") == before);

  // The right one, from a file, with nothing in the environment; serve's key
  // file for TLS is sealed, so HTTPS proves the key was given from memory.
  test::write_file(dir / "right", std::string(test::kHubPassphrase) + "\n");
  auto argv = serve;
  argv.pop_back();  // HTTPS
  argv.insert(argv.end(), {"--passphrase-file", (dir / "right").string()});
  test::Process served(argv, {"IRT_HUB_PASSPHRASE="}, dir / "serve.log");
  REQUIRE_MESSAGE(test::wait_for_port(port, 15000), test::read_file(dir / "serve.log"));
  g_pinned_fingerprint = trim(hub({"fingerprint", "--data", h.data}).out);
  httplib::SSLClient pinned("127.0.0.1", port);
  pinned.enable_server_certificate_verification(false);
  SSL_CTX_set_verify(pinned.ssl_context(), SSL_VERIFY_PEER, pin_fingerprint);
  auto ok = pinned.Get("/healthz");
  REQUIRE(ok);
  CHECK(ok->status == 200);
  CHECK(served.terminate() == 0);
}

TEST_CASE("init refuses an existing directory with exit 2 and touches nothing") {
  InitializedHub h;
  auto db = std::filesystem::path(h.data) / "hub.db";
  auto before = test::read_file(db);
  auto fp = trim(hub({"fingerprint", "--data", h.data}).out);
  auto again = hub({"init", "--kdf-cost", "min", "--data", h.data, "--study", test::source_path(kStudy)});
  CHECK(again.exit_code == 2);
  CHECK(again.err.find("already exists") != std::string::npos);
  CHECK(test::read_file(db) == before);
  CHECK(trim(hub({"fingerprint", "--data", h.data}).out) == fp);
}

TEST_CASE("init with an invalid study prints its problems, exits 2 and creates nothing") {
  test::TempDir dir;
  test::write_file(dir / "bad.json", R"({"format": "irt-study/1", "id": "", "arms": []})");
  auto r = hub({"init", "--kdf-cost", "min", "--data", (dir / "hub").string(), "--study", (dir / "bad.json").string()});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("bad.json") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "hub"));
  auto missing = hub({"init", "--kdf-cost", "min", "--data", (dir / "hub").string(), "--study", (dir / "none.json").string()});
  CHECK(missing.exit_code == 2);
  CHECK_FALSE(std::filesystem::exists(dir / "hub"));
}

TEST_CASE("invite prints a fresh token and refuses an unknown site or a bad expiry") {
  InitializedHub h;
  auto a = invite(h), b = invite(h);
  CHECK(a.size() == 32);
  CHECK(a != b);
  auto unknown = h.as_admin({"invite", "--site", "999"});
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("999") != std::string::npos);
  auto nurse = h.as_admin({"invite", "--site", "102", "--kind", "nurse"});
  CHECK(nurse.exit_code == 2);
  auto hours = h.as_admin({"invite", "--site", "101", "--expires-hours", "-1"});
  CHECK(hours.exit_code == 2);
  // Only a hub user holding manage_nodes invites, and the audit trail names that user.
  auto anonymous = hub({"invite", "--data", h.data, "--site", "101"});
  CHECK(anonymous.exit_code == 2);
  CHECK(anonymous.err.find("--user") != std::string::npos);
  auto wrong = hub({"invite", "--data", h.data, "--site", "101", "--user", "admin.kim"}, "not the password\n");
  CHECK(wrong.exit_code != 0);
  CHECK(wrong.out.empty());
  REQUIRE(h.as_admin({"user", "add", "--name", "mona", "--role", "monitor"}, "--user", "monitor password 1\n")
              .exit_code == 0);
  auto monitor = hub({"invite", "--data", h.data, "--site", "101", "--user", "mona"}, "monitor password 1\n");
  CHECK(monitor.exit_code != 0);
  CHECK(monitor.err.find("manage_nodes") != std::string::npos);
  CHECK(monitor.out.empty());
  auto trail = h.read({"audit", "--json", "--object", "101"});
  REQUIRE_MESSAGE(trail.exit_code == 0, trail.err);
  std::size_t invited = 0;
  for (const auto& e : nlohmann::json::parse(trail.out))
    if (e["action"] == "enrollment.invited") {
      ++invited;
      CHECK(e["user"] == "admin.kim");
    }
  CHECK(invited == 2);
  auto no_hub = hub({"invite", "--data", (h.dir / "none").string(), "--site", "101", "--user", "admin.kim"});
  CHECK(no_hub.exit_code == 1);
  CHECK(no_hub.err.find("irt-hub init") != std::string::npos);
}

TEST_CASE("user add reads the password from standard input and checks role and sites") {
  InitializedHub h;
  auto add = [&](std::vector<std::string> args, const std::string& password) {
    args.insert(args.begin(), {"user", "add"});
    return h.as_admin(std::move(args), "--user", password);
  };
  auto ok = add({"--name", "jane", "--role", "coordinator", "--sites", "101,102"}, "correct horse battery\n");
  CHECK_MESSAGE(ok.exit_code == 0, ok.err);
  CHECK(ok.out.find("jane") != std::string::npos);
  CHECK(ok.out.find("correct horse") == std::string::npos);
  auto dup = add({"--name", "jane", "--role", "monitor"}, "another long one\n");
  CHECK(dup.exit_code == 1);
  auto role = add({"--name", "bob", "--role", "pilot"}, "correct horse battery\n");
  CHECK(role.exit_code == 2);
  auto site = add({"--name", "bob", "--role", "monitor", "--sites", "404"}, "correct horse battery\n");
  CHECK(site.exit_code == 2);
  auto empty = add({"--name", "bob", "--role", "monitor"}, "");
  CHECK(empty.exit_code == 2);
  CHECK(empty.err.find("standard input") != std::string::npos);
  auto short_pw = add({"--name", "bob", "--role", "monitor"}, "short\n");
  CHECK(short_pw.exit_code == 2);
}

TEST_CASE("a hub's first user is added at setup and must hold manage_users, every later one by such a user") {
  InitializedHub h(/*bare=*/true);
  auto coordinator = hub({"user", "add", "--data", h.data, "--name", "jane", "--role", "coordinator", "--sites", "101"},
                         "correct horse battery\n");
  CHECK(coordinator.exit_code == 2);
  CHECK(coordinator.err.find("manage_users") != std::string::npos);
  CHECK(coordinator.err.find("admin") != std::string::npos);  // names the roles that may
  auto first = hub({"user", "add", "--data", h.data, "--name", "admin.kim", "--role", "admin"},
                   h.kAdminPassword + "\n");
  REQUIRE_MESSAGE(first.exit_code == 0, first.err);
  auto unsigned_ = hub({"user", "add", "--data", h.data, "--name", "jane", "--role", "monitor"},
                       "correct horse battery\n");
  CHECK(unsigned_.exit_code != 0);
  CHECK(unsigned_.err.find("--user") != std::string::npos);
  auto signed_ = h.as_admin({"user", "add", "--name", "jane", "--role", "monitor"}, "--user", "correct horse battery\n");
  REQUIRE_MESSAGE(signed_.exit_code == 0, signed_.err);
  // Nobody without manage_users lists the users, nor adds one.
  auto by_monitor = hub({"user", "add", "--data", h.data, "--user", "jane", "--name", "bob", "--role", "monitor"},
                        "correct horse battery\nanother long password\n");
  CHECK(by_monitor.exit_code != 0);
  CHECK(by_monitor.err.find("manage_users") != std::string::npos);
  CHECK(hub({"user", "list", "--data", h.data, "--reader", "jane"}, "correct horse battery\n").exit_code != 0);
  auto list = h.read({"user", "list", "--json"});
  REQUIRE_MESSAGE(list.exit_code == 0, list.err);
  CHECK(nlohmann::json::parse(list.out).size() == 2);
  // The trail names the setup for the first and the signer for the next.
  auto trail = nlohmann::json::parse(h.read({"audit", "--json"}).out);
  std::map<std::string, std::string> added_by;
  for (const auto& e : trail)
    if (e["action"] == "user.added") added_by[e["object"]] = e["user"];
  CHECK(added_by["admin.kim"].rfind("setup (OS account ", 0) == 0);
  CHECK(added_by["jane"] == "admin.kim");
}

TEST_CASE("serve refuses plain HTTP on a non-loopback address with exit 2") {
  InitializedHub h;
  auto r = hub({"serve", "--data", h.data, "--listen", "0.0.0.0:" + std::to_string(test::free_port()), "--http"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("loopback") != std::string::npos);
  auto bad = hub({"serve", "--data", h.data, "--listen", "nowhere"});
  CHECK(bad.exit_code == 2);
}

TEST_CASE("serve answers over HTTPS with its pinned certificate and stops cleanly on SIGTERM") {
  InitializedHub h;
  Serving s(h, true);
  httplib::SSLClient cli("127.0.0.1", s.port);
  cli.enable_server_certificate_verification(false);
  auto res = cli.Get(sync::kCheckpointPath);
  REQUIRE(res);
  CHECK(res->status == 200);
  auto cp = sync::open_checkpoint(res->body, sync::kCheckpointKeyName, h.hub_key());
  REQUIRE(cp);
  CHECK(cp->origin == "irt.hub/VLC-301");
  CHECK(cp->size == 0);

  // Pinning the fingerprint `irt-hub fingerprint` prints lets the handshake through ...
  g_pinned_fingerprint = trim(hub({"fingerprint", "--data", h.data}).out);
  httplib::SSLClient pinned("127.0.0.1", s.port);
  pinned.enable_server_certificate_verification(false);
  SSL_CTX_set_verify(pinned.ssl_context(), SSL_VERIFY_PEER, pin_fingerprint);
  auto ok = pinned.Get("/healthz");
  REQUIRE(ok);
  CHECK(ok->status == 200);
  // ... and any other fingerprint stops it.
  g_pinned_fingerprint = std::string(64, '0');
  httplib::SSLClient wrong("127.0.0.1", s.port);
  wrong.enable_server_certificate_verification(false);
  SSL_CTX_set_verify(wrong.ssl_context(), SSL_VERIFY_PEER, pin_fingerprint);
  CHECK_FALSE(wrong.Get("/healthz"));

  // Plain HTTP to the TLS port gets nothing useful.
  httplib::Client plain("127.0.0.1", s.port);
  auto p = plain.Get("/healthz");
  CHECK((!p || p->status != 200));

  CHECK(s.stop() == 0);
  auto log = test::read_file(s.log);
  CHECK(log.find("irt-hub: listening on https://127.0.0.1:" + std::to_string(s.port)) != std::string::npos);
}

TEST_CASE("a device enrolls, pushes, pulls and gets receipts over loopback HTTP") {
  InitializedHub h;
  REQUIRE(h.as_admin({"user", "add", "--name", "jane", "--role", "coordinator", "--sites", "101"}, "--user",
                     "correct horse battery\n")
              .exit_code == 0);
  Serving s(h, false);
  httplib::Client cli("127.0.0.1", s.port);
  Device d;
  auto enrolled = enroll(cli, invite(h), d);
  CHECK(d.node_id == "101-N1");
  CHECK(enrolled["site_id"] == "101");
  CHECK(enrolled["hub_public_key"] == h.hub_key().hex());
  CHECK(enrolled["tls_fingerprint"] == trim(hub({"fingerprint", "--data", h.data}).out));
  CHECK(enrolled["ledger_origin"] == "irt.hub/VLC-301");
  CHECK(enrolled["hub_unblinding_key"].get<std::string>().size() == 64);

  // Pull: the study configuration, then the roster with jane, then the grants
  // (numbers, slots, initial shipment: tests/hub/grants_test.cpp), then the lease.
  auto pulled = d.pull(cli, 0);
  REQUIRE(pulled);
  REQUIRE_MESSAGE(pulled->status == 200, pulled->body);
  auto records = sync::decode_batch(crypto::as_bytes(pulled->body));
  REQUIRE(records.ok());
  REQUIRE(records->size() == 6);
  auto roster = sync::parse_directive((*records)[1]);
  REQUIRE(roster.ok());
  CHECK(sync::verify_directive(*roster, h.hub_key()));
  CHECK(roster->body.type == "roster");
  CHECK(nlohmann::json::parse(crypto::to_string(roster->body.payload))["users"][0]["name"] == "jane");
  // What a network attacker captures of the pull shows no arm, no kit type
  // and no password hash: they are sealed to the node's key, which opens them.
  for (const char* secret : {"\"arm\"", "\"VLC25\"", "\"PBO\"", "$argon2id$", "Placebo"})
    CHECK_MESSAGE(pulled->body.find(secret) == std::string::npos, secret);
  const auto box = crypto::BoxKeyPair::from_signing_key(d.key);
  std::map<std::string, nlohmann::json> opened;
  for (const auto& record : *records) {
    auto directive = sync::parse_directive(record);
    REQUIRE(directive.ok());
    auto text = sync::open_sealed_fields(crypto::to_string(directive->body.payload), box);
    REQUIRE_MESSAGE(text.ok(), text.error().message);
    opened[directive->body.type] = nlohmann::json::parse(*text);
  }
  CHECK(opened["roster"]["users"][0]["password_hash"].get<std::string>().rfind("$argon2id$", 0) == 0);
  CHECK(opened["grant.slots"]["grants"][0]["slots"][0]["arm"].is_string());
  CHECK(opened["shipment"]["kits"][0]["kit_type"].is_string());
  auto other_box = crypto::BoxKeyPair::from_signing_key(crypto::SigningKey::generate());
  CHECK_FALSE(sync::open_sealed_fields(crypto::to_string(roster->body.payload), other_box).ok());
  auto none = d.pull(cli, 6);
  REQUIRE(none);
  CHECK(sync::decode_batch(crypto::as_bytes(none->body))->empty());
  auto stranger = crypto::SigningKey::generate();
  auto forged = d.pull(cli, 0, &stranger);
  CHECK(forged->status == 401);
  CHECK(error_code(forged) == "request_signature");

  // Push: a batch, a re-send, a gap.
  d.append(10);
  auto res = d.push(cli, 1, 6);
  REQUIRE(res);
  REQUIRE_MESSAGE(res->status == 200, res->body);
  auto ack = nlohmann::json::parse(res->body);
  CHECK(ack["acked_seq"] == 6);
  CHECK(ack["appended"] == 6);
  auto receipt = sync::receipt_from_json(ack["receipt"].dump());
  REQUIRE(receipt.ok());
  auto cp = sync::open_checkpoint(receipt->checkpoint, sync::kCheckpointKeyName, h.hub_key());
  REQUIRE(cp);
  CHECK(sync::verify_inclusion(sync::merkle_leaf_hash(d.log[5].record), receipt->leaf_index, receipt->tree_size,
                               receipt->proof, cp->root));
  auto again = d.push(cli, 1, 6);
  CHECK(nlohmann::json::parse(again->body)["already_recorded"] == 6);
  auto gap = d.push(cli, 8, 10);
  CHECK(gap->status == 409);
  CHECK(error_code(gap) == "sequence_gap");
  CHECK(nlohmann::json::parse(gap->body)["error"]["expected_seq"] == 7);

  auto proof = d.proof(cli, "101-N1", 3);
  REQUIRE(proof);
  REQUIRE(proof->status == 200);
  auto r3 = sync::receipt_from_json(proof->body);
  REQUIRE(r3.ok());
  auto cp3 = sync::open_checkpoint(r3->checkpoint, sync::kCheckpointKeyName, h.hub_key());
  REQUIRE(cp3);
  CHECK(sync::verify_inclusion(sync::merkle_leaf_hash(d.log[2].record), r3->leaf_index, r3->tree_size, r3->proof,
                               cp3->root));
  auto missing = d.proof(cli, "101-N1", 99);
  CHECK(missing->status == 404);
  CHECK(error_code(missing) == "not_found");

  auto token_again = cli.Post(sync::kEnrollPath, R"({"token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","node_public_key":""})",
                              "application/json");
  CHECK(token_again->status == 401);
  CHECK(error_code(token_again) == "token_invalid");
  auto junk = d.push_body(cli, "junk");
  CHECK(junk->status == 400);
  CHECK(error_code(junk) == "bad_request");
  auto huge = cli.Post(sync::kPushPath, d.cert_header(), std::string(sync::kMaxBatchBytes + 100 * 1024, 'x'),
                       "application/octet-stream");
  REQUIRE(huge);
  CHECK(huge->status == 413);
  CHECK(error_code(huge) == "bad_request");
  auto unknown_path = cli.Get("/sync/v1/nothing");
  CHECK(unknown_path->status == 404);
  CHECK(error_code(unknown_path) == "not_found");
  auto no_cert = cli.Post(sync::kPushPath, "junk", "application/octet-stream");
  CHECK(no_cert->status == 401);
  CHECK(error_code(no_cert) == "certificate_invalid");

  // The CLI sees the node while the server runs, and the ledger verifies.
  auto nodes = h.read({"nodes", "--json"});
  REQUIRE(nodes.exit_code == 0);
  auto list = nlohmann::json::parse(nodes.out);
  REQUIRE(list.size() == 1);
  CHECK(list[0]["acked_seq"] == 6);
  CHECK(list[0]["status"] == "active");
  auto verify = hub({"verify", "--data", h.data});
  CHECK_MESSAGE(verify.exit_code == 0, verify.err);
  CHECK(verify.out.find("6 events") != std::string::npos);

  // Revoked from the command line: pushes and pulls are refused from then on.
  const auto password = h.add_admin();
  auto unsigned_revoke = hub({"revoke", "--data", h.data, "--node", "101-N1", "--reason", "tablet lost", "--user",
                              "admin.kim"}, "wrong-password\n");
  CHECK(unsigned_revoke.exit_code != 0);
  CHECK(unsigned_revoke.err.find("signature was refused") != std::string::npos);
  CHECK(d.push(cli, 7, 7)->status == 200);  // nothing was revoked
  auto revoke = hub({"revoke", "--data", h.data, "--node", "101-N1", "--reason", "tablet lost", "--user",
                     "admin.kim"}, password + "\n");
  REQUIRE_MESSAGE(revoke.exit_code == 0, revoke.err);
  auto after = d.push(cli, 8, 10);
  CHECK(after->status == 403);
  CHECK(error_code(after) == "node_revoked");
  CHECK(nlohmann::json::parse(after->body)["error"]["message"].get<std::string>().find("tablet lost") !=
        std::string::npos);
  auto pull_after = d.pull(cli, 0);
  CHECK(pull_after->status == 403);
  auto twice = hub({"revoke", "--data", h.data, "--node", "101-N1", "--reason", "again", "--user", "admin.kim"},
                   password + "\n");
  CHECK(twice.exit_code == 1);
  CHECK(hub({"verify", "--data", h.data}).exit_code == 0);
  CHECK(s.stop() == 0);
}

TEST_CASE("a push or proof request that does not prove the node's key is refused, stores nothing and blames no one") {
  InitializedHub h;
  Serving s(h, false);
  httplib::Client cli("127.0.0.1", s.port);
  Device d;
  enroll(cli, invite(h), d);
  d.append(3);
  const auto body = d.batch(1, 3);
  // The certificate alone (it is not a secret): refused.
  auto bare = cli.Post(sync::kPushPath, d.cert_header(), body, "application/octet-stream");
  CHECK(bare->status == 401);
  CHECK(error_code(bare) == "request_signature");
  // A stranger's key, a signature over another body, a time two days off.
  auto stranger = crypto::SigningKey::generate();
  auto forged = cli.Post(sync::kPushPath, d.signed_headers(sync::kPushDomain, body, &stranger), body,
                         "application/octet-stream");
  CHECK(forged->status == 401);
  CHECK(error_code(forged) == "request_signature");
  auto swapped = cli.Post(sync::kPushPath, d.signed_headers(sync::kPushDomain, d.batch(1, 2)), body,
                          "application/octet-stream");
  CHECK(swapped->status == 401);
  auto stale = cli.Post(sync::kPushPath,
                        d.signed_headers(sync::kPushDomain, body, nullptr, sync::system_millis() - 48LL * 3600 * 1000),
                        body, "application/octet-stream");
  CHECK(stale->status == 400);
  CHECK(nlohmann::json::parse(stale->body)["error"]["message"].get<std::string>().find("clock") != std::string::npos);
  // Records with zeroed signatures under a forged request: no evidence, no alert.
  auto zeroed = d.log;
  for (auto& e : zeroed) std::fill(e.record.end() - 64, e.record.end(), std::uint8_t{0});
  auto junk_body = sync::encode_batch({zeroed[0].record});
  auto junk = cli.Post(sync::kPushPath, d.cert_header(), std::string(junk_body.begin(), junk_body.end()),
                       "application/octet-stream");
  CHECK(junk->status == 401);
  CHECK(nlohmann::json::parse(h.read({"alerts", "--json"}).out).empty());
  auto nodes = nlohmann::json::parse(h.read({"nodes", "--json"}).out);
  CHECK(nodes[0]["acked_seq"] == 0);

  // The node's own signed push is taken; a replay of it is answered as already recorded.
  auto headers = d.signed_headers(sync::kPushDomain, body);
  REQUIRE(cli.Post(sync::kPushPath, headers, body, "application/octet-stream")->status == 200);
  auto replay = cli.Post(sync::kPushPath, headers, body, "application/octet-stream");
  CHECK(nlohmann::json::parse(replay->body)["already_recorded"] == 3);
  CHECK(nlohmann::json::parse(h.read({"alerts", "--json"}).out).empty());

  // Receipts: the node's own, signed; nobody else's, and not unsigned.
  CHECK(d.proof(cli, d.node_id, 2)->status == 200);
  auto anonymous = cli.Get(std::string(sync::kProofPath) + "?node=" + d.node_id + "&seq=2");
  CHECK(anonymous->status == 401);
  Device other;
  enroll(cli, invite(h, "102"), other);
  auto nosy = other.proof(cli, d.node_id, 2);
  CHECK(nosy->status == 401);
  CHECK(error_code(nosy) == "wrong_node");
}

TEST_CASE("refused pushes store nothing, raise no alert, and past a limit a minute their source is answered 429") {
  InitializedHub h;
  Serving s(h, false);
  httplib::Client cli("127.0.0.1", s.port);
  Device d;
  enroll(cli, invite(h), d);
  d.append(3);
  // Records with zeroed signatures, pushed with the (public) certificate and
  // a stranger's request signature, as someone who copied it would.
  auto zeroed = d.log;
  for (auto& e : zeroed) std::fill(e.record.end() - 64, e.record.end(), std::uint8_t{0});
  auto bad = sync::encode_batch({zeroed[0].record, zeroed[1].record, zeroed[2].record});
  const std::string bad_body(bad.begin(), bad.end());
  auto stranger = crypto::SigningKey::generate();
  constexpr int kLimit = 30;  // kRefusedSyncRequestsPerMinute, hub/tuning.h
  auto forged_push = [&] {
    return cli.Post(sync::kPushPath, d.signed_headers(sync::kPushDomain, bad_body, &stranger), bad_body,
                    "application/octet-stream");
  };
  int refused = 0;
  auto limited = forged_push();
  for (; limited && limited->status == 401 && refused <= kLimit; limited = forged_push()) ++refused;
  CHECK(refused == kLimit);
  CHECK(limited->status == 429);
  CHECK(error_code(limited) == "rate_limited");
  CHECK(nlohmann::json::parse(limited->body)["error"]["message"].get<std::string>().find("try again in") !=
        std::string::npos);
  REQUIRE(limited->has_header("Retry-After"));
  auto wait = std::stoi(limited->get_header_value("Retry-After"));
  CHECK(wait >= 1);
  CHECK(wait <= 60);
  // While it lasts the source gets nothing read, however well signed.
  auto body = d.batch(1, 3);
  CHECK(cli.Post(sync::kPushPath, d.signed_headers(sync::kPushDomain, body), body, "application/octet-stream")
            ->status == 429);
  CHECK(d.pull(cli, 0)->status == 429);
  CHECK(s.stop() == 0);

  // Nothing stored, nobody blamed.
  CHECK(nlohmann::json::parse(h.read({"alerts", "--json", "--all"}).out).empty());
  auto db = test::open_hub_tables(h.data);
  for (const char* table : {"ledger_events", "ledger_evidence", "ledger_alerts"}) {
    auto st = db.prepare(std::string("SELECT count(*) FROM ") + table);
    REQUIRE(st.step());
    CHECK_MESSAGE(st.int64(0) == 0, table);
  }
}

TEST_CASE("equivocation over HTTP raises an alert, freezes the node, and unfreeze lifts it") {
  InitializedHub h;
  Serving s(h, false);
  httplib::Client cli("127.0.0.1", s.port);
  Device d;
  enroll(cli, invite(h), d);
  d.append(3);
  REQUIRE(d.push(cli, 1, 3)->status == 200);
  CHECK(nlohmann::json::parse(h.read({"alerts", "--json"}).out).empty());

  auto fork = d.make(2, d.log[0].hash, "another story");
  auto body = sync::encode_batch({fork.record});
  auto res = d.push_body(cli, std::string(body.begin(), body.end()));
  CHECK(res->status == 409);
  CHECK(error_code(res) == "equivocation");

  auto alerts = nlohmann::json::parse(h.read({"alerts", "--json"}).out);
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0]["kind"] == "equivocation");
  CHECK(alerts[0]["node_id"] == "101-N1");
  CHECK(alerts[0]["seq"] == 2);
  auto nodes = nlohmann::json::parse(h.read({"nodes", "--json"}).out);
  CHECK(nodes[0]["status"] == "frozen");
  d.append(1);
  auto frozen = d.push(cli, 4, 4);
  CHECK(frozen->status == 403);
  CHECK(error_code(frozen) == "node_frozen");
  CHECK(d.pull(cli, 0)->status == 200);  // directives still reach a frozen node

  const auto password = h.add_admin();
  auto unfreeze = hub({"unfreeze", "--data", h.data, "--node", "101-N1", "--reason", "seq 2 as first recorded",
                       "--user", "admin.kim"}, password + "\n");
  REQUIRE_MESSAGE(unfreeze.exit_code == 0, unfreeze.err);
  CHECK(nlohmann::json::parse(h.read({"alerts", "--json"}).out).empty());
  CHECK(nlohmann::json::parse(h.read({"alerts", "--json", "--all"}).out).size() == 1);
  CHECK(d.push(cli, 4, 4)->status == 200);
  auto not_frozen = hub({"unfreeze", "--data", h.data, "--node", "101-N1", "--reason", "again", "--user",
                         "admin.kim"}, password + "\n");
  CHECK(not_frozen.exit_code == 1);
  CHECK(hub({"verify", "--data", h.data}).exit_code == 0);
  CHECK(s.stop() == 0);
}

TEST_CASE("verify exits 1 and names the event when a stored record was altered") {
  InitializedHub h;
  {
    Serving s(h, false);
    httplib::Client cli("127.0.0.1", s.port);
    Device d;
    enroll(cli, invite(h), d);
    d.append(4);
    REQUIRE(d.push(cli, 1, 4)->status == 200);
    CHECK(s.stop() == 0);
  }
  // Flip one payload byte of event 3 inside the SQLite file, through SQL.
  {
    auto db = test::open_hub_tables(h.data);
    auto st = db.prepare("SELECT record FROM ledger_events WHERE seq = 3");
    REQUIRE(st.step());
    auto record = st.blob(0);
    record[record.size() - 70] ^= 0x01;
    db.prepare("UPDATE ledger_events SET record = ? WHERE seq = 3").bind_all(record).run();
  }
  auto v = hub({"verify", "--data", h.data});
  CHECK(v.exit_code == 1);
  CHECK_MESSAGE(v.err.find("node 101-N1 seq 3") != std::string::npos, v.err);
}

TEST_CASE("irt-hub verify exits 1 naming each table edited behind its back, and never prints an arm") {
  InitializedHub h;
  auto clean = hub({"verify", "--data", h.data});
  REQUIRE_MESSAGE(clean.exit_code == 0, clean.err);
  CHECK(clean.out.find("audit trail verified") != std::string::npos);
  {
    auto db = test::open_hub_tables(h.data);
    db.exec("UPDATE hub_users SET role = 'unblinded-statistician' WHERE name = 'admin.kim'");
    // One slot's arm flipped in the stored list (line 3: the second slot).
    auto st = db.prepare("SELECT list_csv FROM hub_randomization_lists");
    REQUIRE(st.step());
    auto csv = st.text(0);
    const auto end = csv.find('\n', csv.find('\n', csv.find('\n') + 1) + 1);
    REQUIRE((csv[end - 1] == 'A' || csv[end - 1] == 'B'));
    csv[end - 1] = csv[end - 1] == 'A' ? 'B' : 'A';
    db.prepare("UPDATE hub_randomization_lists SET list_csv = ?").bind(1, csv).run();
  }
  auto edited = hub({"verify", "--data", h.data});
  CHECK(edited.exit_code == 1);
  CHECK(edited.err.find("2 problems") != std::string::npos);
  CHECK(edited.err.find("hub_users: user admin.kim role is unblinded-statistician, the audit trail says admin") !=
        std::string::npos);
  CHECK(edited.err.find("hub_randomization_lists: study version 1: line 3 of the stored list differs") !=
        std::string::npos);
  for (const auto& text : {edited.out, edited.err})
    for (const char* arm : {"arm", ",A", ",B", "Velcardin", "Placebo"}) CHECK(text.find(arm) == std::string::npos);
}
