#include <unistd.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "crypto/sign.h"
#include "node/api_server.h"
#include "node/commands.h"
#include "node/node_state.h"
#include "node/request_limits.h"
#include "node/roster.h"
#include "node/sync_service.h"
#include "node/tuning.h"
#include "shared/civil_date.h"
#include "shared/event_payloads.h"
#include "sync/batch.h"
#include "sync/certificate.h"
#include "sync/protocol.h"

namespace irt::node {

namespace {

using shared::Args;
using shared::Command;
using shared::Option;

const Option kDataOption{"data", "DIR", "the node's data directory", true};
const Option kPassphraseFileOption{"passphrase-file", "FILE",
                                   "read the passphrase from FILE instead of IRT_PASSPHRASE", false};

int fail(const Args& args, const shared::Error& e) {
  std::cerr << args.command_path() << ": " << e.message << "\n";
  return shared::exit_code(e.code);
}

shared::Result<std::string> read_passphrase(const Args& args) {
  std::string pass;
  if (auto file = args.find("passphrase-file")) {
    std::ifstream in(*file);
    if (!in)
      return shared::make_error(shared::Errc::invalid_input, "cannot read passphrase file " + *file);
    std::getline(in, pass);
  } else if (const char* env = std::getenv("IRT_PASSPHRASE")) {
    pass = env;
  }
  if (pass.empty())
    return shared::make_error(shared::Errc::invalid_input,
                              "no passphrase: set IRT_PASSPHRASE or give --passphrase-file FILE");
  return pass;
}

shared::Result<std::unique_ptr<NodeState>> open_node(const Args& args) {
  auto pass = read_passphrase(args);
  if (!pass) return pass.error();
  auto state = NodeState::open(args.get("data"), *pass);
  crypto::secure_zero(pass->data(), pass->size());
  return state;
}

const crypto::PwhashCost* kdf_cost(const std::string& name) {
  if (name == "moderate") return &crypto::kModerate;
  if (name == "interactive") return &crypto::kInteractive;
  if (name == "min") return &crypto::kTest;
  return nullptr;
}

void print_round(const sync::RoundReport& r) {
  std::cout << "synced: " << r.events_sent << " events sent (" << r.already_recorded
            << " already at the hub), acknowledged up to " << r.acked_seq << ", " << r.directives_applied
            << " hub directives applied\n";
  if (r.resent_from)
    std::cerr << "irt-node: the hub asked again for events from seq " << r.resent_from
              << ", which it had acknowledged (this node held acknowledgements up to " << r.acked_before_resend
              << "): the hub was restored from an older backup. They were sent again; the receipts this node kept "
                 "show what the hub had held (docs/operations.md)\n";
}

// ---- enroll

// The one-time token never appears on the command line, where `ps` shows it:
// it is the first line of --token-file, or of standard input
// (`irt-hub invite ... | irt-node enroll ...`).
shared::Result<std::string> read_token(const Args& args) {
  std::string token;
  if (auto file = args.find("token-file")) {
    std::ifstream in(*file);
    if (!in) return shared::make_error(shared::Errc::invalid_input, "cannot read token file " + *file);
    std::getline(in, token);
  } else {
    std::getline(std::cin, token);
  }
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.empty())
    return shared::make_error(shared::Errc::invalid_input,
                              "no enrollment token: give the token 'irt-hub invite' printed on standard input "
                              "(irt-hub invite ... | irt-node enroll ...) or in --token-file FILE");
  return token;
}

shared::Result<Enrollment> request_enrollment(const Args& args, const crypto::SigningKey& key) {
  Enrollment e;
  e.hub_url = args.get("hub");
  e.hub_fingerprint = args.get("hub-fingerprint");
  for (auto& c : e.hub_fingerprint) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (e.hub_fingerprint.size() != 64 || !crypto::from_hex(e.hub_fingerprint))
    return shared::make_error(shared::Errc::invalid_input,
                              "--hub-fingerprint must be the 64 hex digits printed by 'irt-hub fingerprint'");
  auto made = sync::make_http_transport({.base_url = e.hub_url, .fingerprint_hex = e.hub_fingerprint});
  if (!made) return made.error();
  auto& transport = *made;
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  auto token = read_token(args);
  if (!token) return token.error();
  nlohmann::json req = {{"token", *token}, {"node_public_key", key.public_key().hex()}, {"device", host}};
  auto response = transport->post(sync::kEnrollPath, "application/json", req.dump(), {});
  if (!response) return response.error();
  if (response->status != 200) return sync::refusal_error(*response);
  try {
    auto j = nlohmann::json::parse(response->body);
    e.node_id = j.at("node_id").get<std::string>();
    e.site_id = j.at("site_id").get<std::string>();
    e.kind = j.at("kind").get<std::string>();
    e.study_id = j.at("study_id").get<std::string>();
    auto cert = crypto::from_base64(j.at("certificate").get<std::string>());
    auto hub_key = crypto::PublicKey::from_hex(j.at("hub_public_key").get<std::string>());
    auto unblinding = crypto::BoxPublicKey::from_hex(j.at("hub_unblinding_key").get<std::string>());
    if (!cert || !hub_key || !unblinding) throw std::invalid_argument("keys or certificate are not encoded as agreed");
    // Over https the pin was checked during the handshake; over plain loopback
    // http the hub states its fingerprint, which must still be the one given.
    if (j.value("tls_fingerprint", "") != e.hub_fingerprint)
      return shared::make_error(shared::Errc::integrity,
                                "the hub at " + e.hub_url + " has certificate fingerprint " +
                                    j.value("tls_fingerprint", std::string("(none)")) + ", not " + e.hub_fingerprint +
                                    "; check the URL and the fingerprint; nothing was enrolled");
    e.certificate = *cert;
    e.hub_key = *hub_key;
    e.hub_unblinding_key = *unblinding;
  } catch (const std::exception& ex) {
    return shared::make_error(shared::Errc::integrity,
                              std::string("the hub's enrollment answer is malformed (") + ex.what() + ")");
  }
  auto cert = sync::parse_certificate(e.certificate);
  if (!cert) return cert.error();
  if (auto st = sync::check_certificate(*cert, e.hub_key, sync::system_millis()); !st) return st.error();
  if (cert->node_key != key.public_key() || cert->node_id != e.node_id)
    return shared::make_error(shared::Errc::integrity,
                              "the hub's certificate is not for this node's key; nothing was enrolled");
  return e;
}

int enroll(const Args& args) {
  const auto* cost = kdf_cost(args.get_or("kdf-cost", "moderate"));
  if (!cost) return fail(args, shared::make_error(shared::Errc::invalid_input,
                                                  "--kdf-cost must be moderate, interactive or min"));
  auto pass = read_passphrase(args);
  if (!pass) return fail(args, pass.error());
  if (pass->size() < 10)
    return fail(args, shared::make_error(shared::Errc::invalid_input,
                                         "the passphrase must be at least 10 characters; choose a longer one"));
  std::filesystem::path dir = args.get("data");
  if (std::filesystem::exists(NodeState::database_path(dir)))
    return fail(args, shared::make_error(shared::Errc::conflict,
                                         dir.string() + " already holds an enrolled node; choose an empty directory"));
  auto key = crypto::SigningKey::generate();
  auto enrollment = request_enrollment(args, key);
  if (!enrollment) return fail(args, enrollment.error());
  auto state = NodeState::create(dir, *pass, *cost, std::move(key), *enrollment);
  if (!state) return fail(args, state.error());
  std::cout << "enrolled node " << enrollment->node_id << " for site " << enrollment->site_id << " ("
            << enrollment->kind << ") of study " << enrollment->study_id << "\n";
  auto round = (*state)->sync_once();
  if (!round) {
    std::cerr << args.command_path() << ": enrolled, but the first sync failed: " << round.error().message
              << "\nRun 'irt-node sync --data " << dir.string() << "' to fetch the study and user roster.\n";
    return shared::exit_code(round.error().code);
  }
  print_round(*round);
  return 0;
}

// ---- note

int note(const Args& args) {
  auto state = open_node(args);
  if (!state) return fail(args, state.error());
  auto& s = **state;
  std::string text = args.get("text");
  if (text.empty()) return fail(args, shared::make_error(shared::Errc::invalid_input, "--text: write the note"));
  if (auto st = check_text("--text", text, sync::kMaxTextChars); !st) return fail(args, st.error());
  std::string password;
  std::getline(std::cin, password);
  auto user = authenticate(s.log(), s.enrollment().site_id, args.get("user"), password);
  crypto::secure_zero(password.data(), password.size());
  if (!user) return fail(args, user.error());
  const nlohmann::json payload = shared::SiteNote{text, user->role, s.enrollment().site_id};
  storage::Transaction tx(s.db());
  auto e = s.log().append(s.key(), user->name, std::string(shared::kSiteNoteEvent), s.domain().event_payload(payload));
  if (!e) return fail(args, e.error());
  tx.commit();
  std::cout << "recorded note as event " << e->body.seq << " by " << user->name << "\n";
  return 0;
}

// ---- verify, status, sync

int verify(const Args& args) {
  auto state = open_node(args);
  if (!state) return fail(args, state.error());
  auto& s = **state;
  if (auto st = s.log().verify(s.key().public_key()); !st) {
    std::cerr << args.command_path() << ": FAILED: " << st.error().message << "\n";
    return 1;
  }
  std::cout << "log of node " << s.enrollment().node_id << ": " << s.log().last_seq()
            << " events, sequence, hash chain and every signature verified\n";
  return 0;
}

int status(const Args& args) {
  auto state = open_node(args);
  if (!state) return fail(args, state.error());
  auto& s = **state;
  auto& log = s.log();
  nlohmann::json j = {{"node_id", s.enrollment().node_id},
                      {"site_id", s.enrollment().site_id},
                      {"kind", s.enrollment().kind},
                      {"study_id", s.enrollment().study_id},
                      {"hub_url", s.enrollment().hub_url},
                      {"last_seq", log.last_seq()},
                      {"acked_seq", log.acked_seq()},
                      {"pending_events", log.pending_events()},
                      {"applied_directive_seq", log.applied_directive_seq()},
                      {"clock_skew_ms", -log.hub_clock_offset_ms()},
                      {"has_study", s.domain().study() != nullptr},
                      {"study_version", s.domain().study() ? s.domain().study()->version : 0}};
  if (const auto& lease = s.domain().lease()) j["randomization_lease_until"] = shared::utc_text(lease->until_ms);
  // The node opened, so its study and trial records authenticate; what is
  // read only on demand is checked here, and damage is reported, never shown
  // as "none".
  std::vector<std::string> damage;
  auto roster = load_roster(log);
  j["users"] = roster ? roster->size() : 0;
  if (!roster) damage.push_back(roster.error().message);
  // Offline, the last round's refusal is all this command can know of the hub.
  auto refused = s.sync_refusal();
  j["sync_refused"] = refused && refused->has_value();
  j["sync_error"] = refused && *refused ? (*refused)->text() : "";
  if (!refused) damage.push_back(refused.error().message);
  // The cheap end-of-log check; 'irt-node verify' walks the whole chain.
  if (auto end = log.check_end(); !end) damage.push_back(end.error().message);
  if (!damage.empty()) j["damage"] = damage.front();
  std::cout << j.dump(2) << "\n";
  for (const auto& d : damage) std::cerr << args.command_path() << ": FAILED: " << d << "\n";
  return damage.empty() ? 0 : 1;
}

int sync_command(const Args& args) {
  sync::AgentLimits limits;
  if (auto v = args.find("batch-events")) {
    auto n = shared::parse_u64(*v);
    if (!n || *n == 0 || *n > sync::kMaxBatchRecords)
      return fail(args, shared::make_error(shared::Errc::invalid_input,
                                           "--batch-events takes a number of events from 1 to " +
                                               std::to_string(sync::kMaxBatchRecords) + ", got '" + *v + "'"));
    limits.batch_events = *n;
  }
  auto state = open_node(args);
  if (!state) return fail(args, state.error());
  auto round = (*state)->sync_once(limits);
  if (!round) return fail(args, round.error());
  print_round(*round);
  return 0;
}

// ---- serve

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop = true; }

int serve(const Args& args) {
  auto state = open_node(args);
  if (!state) return fail(args, state.error());
  auto& s = **state;
  SyncServiceOptions options;
  if (auto v = args.find("sync-interval")) {
    try {
      options.interval = std::chrono::milliseconds(static_cast<std::int64_t>(std::stod(*v) * 1000));
    } catch (const std::exception&) {
      return fail(args, shared::make_error(shared::Errc::invalid_input, "--sync-interval takes seconds, e.g. 30"));
    }
  }
  std::int64_t session_idle_ms = kSessionIdleMs;
  if (auto v = args.find("session-idle")) {
    try {
      session_idle_ms = std::stoll(*v) * 1000;
    } catch (const std::exception&) {
      session_idle_ms = 0;
    }
    if (session_idle_ms <= 0)
      return fail(args, shared::make_error(shared::Errc::invalid_input,
                                           "--session-idle takes whole seconds above 0, e.g. 900 (got " + *v + ")"));
  }
  // From here on the service thread and the API's threads share the node,
  // each holding s.mutex() while it uses it; the round takes it itself, never
  // across a request to the hub.
  SyncService service(
      [&]() -> RoundOutcome {
        auto r = s.sync_once();
        if (!r) {
          std::cerr << "irt-node: sync failed: " << r.error().message << "\n";
          return {r.error(), s.last_round_refused()};
        }
        if (r->events_sent || r->directives_applied || r->resent_from) print_round(*r);
        return {};
      },
      options);
  std::unique_ptr<ApiServer> api;
  std::thread api_thread;
  if (auto listen = args.find("listen")) {
    auto colon = listen->rfind(':');
    int port = 0;
    try {
      port = colon == std::string::npos ? -1 : std::stoi(listen->substr(colon + 1));
    } catch (const std::exception&) {
      port = -1;
    }
    if (port <= 0 || port > 65535)
      return fail(args, shared::make_error(shared::Errc::invalid_input,
                                           "--listen takes HOST:PORT, e.g. 127.0.0.1:8080 (got " + *listen + ")"));
    const std::string host = listen->substr(0, colon);
    if (!sync::is_loopback_host(host) && !args.flag("insecure-http"))
      return fail(args, shared::make_error(
                            shared::Errc::invalid_input,
                            "--listen " + *listen +
                                " would serve participant data in clear HTTP beyond this machine; listen on "
                                "127.0.0.1, or pass --insecure-http only on a network you trust"));
    api = std::make_unique<ApiServer>(s, &service, session_idle_ms);
    if (auto st = api->bind(host, port); !st) return fail(args, st.error());
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  service.start();
  // The HTTP server's own threads, never the Boost.Asio loop of the sync service.
  if (api) api_thread = std::thread([&] { api->run(); });
  std::cout << "irt-node: node " << s.enrollment().node_id << " serving; syncing with " << s.enrollment().hub_url;
  if (auto listen = args.find("listen")) std::cout << "; web UI and API on http://" << *listen << "/";
  std::cout << std::endl;
  // Another process (irt-node note) may record events: SQLite's data_version
  // changes when it commits, and we sync right away.
  std::int64_t seen = -1;
  while (!g_stop) {
    std::this_thread::sleep_for(kCommitPollInterval);
    std::int64_t version;
    {
      std::lock_guard lock(s.mutex());
      auto st = s.db().prepare("PRAGMA data_version");
      st.step();
      version = st.int64(0);
    }
    if (seen >= 0 && version != seen) service.poke();
    seen = version;
  }
  if (api) {
    api->stop();
    api_thread.join();
  }
  service.stop();
  std::cout << "irt-node: stopped" << std::endl;
  return 0;
}

}  // namespace

std::vector<Command> node_commands() {
  return {
      Command{.name = "enroll",
              .summary = "enroll this device as a node of the hub, with a one-time token",
              .options = {kDataOption,
                          {"hub", "URL", "the hub's address, https://HOST:PORT (http:// on loopback only)", true},
                          {"token-file", "FILE",
                           "read the one-time enrollment token from 'irt-hub invite' from FILE (default: the first "
                           "line of standard input; never on the command line)",
                           false},
                          {"hub-fingerprint", "HEX", "the hub certificate's SHA-256, from 'irt-hub fingerprint'", true},
                          kPassphraseFileOption,
                          {"kdf-cost", "LEVEL", "Argon2id cost: moderate (default), interactive, min (tests only)",
                           false}},
              .run = enroll},
      Command{.name = "note",
              .summary = "record a signed, dated site note by a user (password on standard input)",
              .options = {kDataOption,
                          {"user", "NAME", "the user recording the note", true},
                          {"text", "TEXT", "the note, at most 2000 characters", true},
                          kPassphraseFileOption},
              .run = note},
      Command{.name = "verify",
              .summary = "re-check the whole log: sequence, hash chain, every signature, and that it ends at its sealed head",
              .options = {kDataOption, kPassphraseFileOption},
              .run = verify},
      Command{.name = "status",
              .summary = "print the node's identity, log position and pending events as JSON (exit 1 if the log's end is damaged)",
              .options = {kDataOption, kPassphraseFileOption},
              .run = status},
      Command{.name = "sync",
              .summary = "run one sync round with the hub (exit 3 if it cannot be reached)",
              .options = {kDataOption, kPassphraseFileOption,
                          {"batch-events", "N", "events per push request, at most 2000 (default 2000)", false}},
              .run = sync_command},
      Command{.name = "serve",
              .summary = "run the node: background sync with backoff while offline; with --listen, the web UI and API",
              .options = {kDataOption, kPassphraseFileOption,
                          {"sync-interval", "SECONDS", "time between rounds while online (default 30)", false},
                          {"listen", "HOST:PORT",
                           "serve the web UI and the /api/v1 JSON API there (e.g. 127.0.0.1:8080; an address "
                           "other than loopback needs --insecure-http)",
                           false},
                          {"insecure-http", "",
                           "allow --listen on an address other than loopback, in clear HTTP: only on a network "
                           "you trust",
                           false},
                          {"session-idle", "SECONDS",
                           "log a web UI or API session out after this long without use (default 900)", false}},
              .run = serve},
  };
}

}  // namespace irt::node
