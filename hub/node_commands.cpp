// The irt-hub commands for the hub's state, its nodes and the sync server:
// init, invite, fingerprint, user (add, list, disable, enable, passwd, sites), serve, revoke, unfreeze, verify, nodes,
// deviations, audit, alerts. Each opens the data directory (HubState), does one thing, and
// reports failures as "irt-hub COMMAND: what was wrong; what to do" with the
// exit code of the error's family (2 for bad input).
#include <pthread.h>
#include <pwd.h>
#include <termios.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "hub/api_server.h"
#include "hub/audit.h"
#include "hub/audit_trail.h"
#include "hub/commands.h"
#include "hub/kit_lists.h"
#include "hub/deviations.h"
#include "hub/enrollment.h"
#include "hub/grants.h"
#include "hub/hub_state.h"
#include "hub/node_decisions.h"
#include "hub/node_overview.h"
#include "hub/resupply_runner.h"
#include "hub/webhooks.h"
#include "hub/sync_server.h"
#include "hub/tuning.h"
#include "hub/verify_tables.h"
#include "hub/users.h"
#include "shared/study.h"
#include "sync/hlc.h"

namespace irt::hub {

namespace {

using shared::Args;
using shared::Command;
using shared::Option;

// The passphrase a new key file is wrapped under: as read_hub_passphrase, and
// long enough to resist guessing (as the node's).
shared::Result<std::string> read_new_hub_passphrase(const Args& a) {
  auto pass = read_hub_passphrase(a);
  if (pass && pass->size() < 10)
    return shared::make_error(shared::Errc::invalid_input,
                              "the hub's passphrase must be at least 10 characters; choose a longer one");
  return pass;
}

shared::Result<const crypto::PwhashCost*> hub_kdf_cost(const Args& a) {
  const std::string name = a.get_or("kdf-cost", "moderate");
  if (name == "moderate") return &crypto::kModerate;
  if (name == "interactive") return &crypto::kInteractive;
  if (name == "min") return &crypto::kTest;
  return shared::make_error(shared::Errc::invalid_input,
                            "--kdf-cost must be moderate, interactive or min (got '" + name + "')");
}



int usage(const Args& a, const std::string& message) {
  std::cerr << a.command_path() << ": " << message << "\n";
  return 2;
}

// Who is acting, for the audit trail: the operating-system account running the command.
std::string os_user() {
  if (const passwd* pw = getpwuid(geteuid()); pw && pw->pw_name) return pw->pw_name;
  if (const char* u = std::getenv("USER")) return u;
  return "uid " + std::to_string(geteuid());
}



// ---- init

int init(const Args& a) {
  const std::string dir = a.get("data"), file = a.get("study");
  std::ifstream in(file, std::ios::binary);
  if (!in) return usage(a, "cannot read the study file " + file + "; check the path");
  std::stringstream text;
  text << in.rdbuf();
  auto load = shared::load_study(text.str());
  if (!load.study) {
    for (const auto& e : load.errors) std::cerr << file << ": " << e << "\n";
    std::cerr << a.command_path() << ": " << file << " has " << load.errors.size()
              << (load.errors.size() == 1 ? " problem" : " problems") << "; fix the study file, nothing was created\n";
    return 2;
  }
  // The lots and kit list beside the study (FILE.lots.csv, FILE.kits.csv), if it ships them.
  InitialKits kits;
  if (std::ifstream k(kits_file_beside(file), std::ios::binary); k) {
    std::ifstream l(lots_file_beside(file), std::ios::binary);
    if (!l) return usage(a, kits_file_beside(file).string() + " needs its lots file " +
                                lots_file_beside(file).string() + "; add it, or remove the kit list to generate kits");
    std::stringstream lt, kt;
    lt << l.rdbuf();
    kt << k.rdbuf();
    kits = {lt.str(), lots_file_beside(file).filename().string(), kt.str(),
            kits_file_beside(file).filename().string()};
  }
  auto cost = hub_kdf_cost(a);
  if (!cost) return report(a, cost.error());
  auto pass = read_new_hub_passphrase(a);
  if (!pass) return report(a, pass.error());
  auto hub = HubState::create(dir, text.str(), os_user(), sync::system_millis(), *pass, **cost,
                              a.find("db").value_or(""), kits);
  crypto::secure_zero(pass->data(), pass->size());
  if (!hub) return report(a, hub.error());
  const auto& h = *hub.value();
  std::cout << "hub initialized in " << dir << " for study " << h.study().id << " version " << h.study().version
            << "\n"
            << "TLS certificate fingerprint (SHA-256): " << h.tls_fingerprint() << "\n"
            << "hub signing key: " << h.signing_key().public_key().hex() << "\n";
  return 0;
}

// ---- keys wrap

int keys_wrap(const Args& a) {
  auto cost = hub_kdf_cost(a);
  if (!cost) return report(a, cost.error());
  auto pass = read_new_hub_passphrase(a);
  if (!pass) return report(a, pass.error());
  auto st = HubState::wrap_clear_keys(a.get("data"), *pass, **cost);
  crypto::secure_zero(pass->data(), pass->size());
  if (!st) return report(a, st.error());
  std::cout << "the keys in " << a.get("data") << " are wrapped; every irt-hub command now needs the passphrase\n";
  return 0;
}

// ---- invite

int invite_cmd(const Args& a) {
  std::int64_t hours = kTokenValidityMs / (3600 * 1000);
  if (auto v = a.find("expires-hours")) {
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), hours);
    if (ec != std::errc() || p != v->data() + v->size() || hours < 0 || hours > kMaxTokenValidityHours)
      return usage(a, "--expires-hours must be a whole number of hours from 0 to " +
                          std::to_string(kMaxTokenValidityHours) + " (got '" + *v + "')");
  }
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto who = command_line_user(a, *hub, "user", shared::Permission::manage_nodes, rc);
  if (!who) return rc;
  auto inv = invite(*hub, a.get("site"), a.get_or("kind", "site"), hours * 3600 * 1000, who->name,
                    sync::system_millis());
  if (!inv) return report(a, inv.error());
  std::cout << inv->token << "\n";
  std::cerr << "enrollment token #" << inv->id << " for a " << inv->kind << " node of site " << inv->site_id
            << ", valid once until " << utc_text(inv->expires_ms)
            << ". It is shown only now; give it to the person enrolling the device, with the hub's fingerprint "
               "('irt-hub fingerprint').\n";
  return 0;
}

// ---- fingerprint

int fingerprint(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  std::cout << hub->tls_fingerprint() << "\n";
  return 0;
}

// ---- user add

std::string generate_password() {
  // 15 random bytes = 120 bits, as 24 base32 characters in groups of four.
  static const char* kAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";  // no I, O, 0, 1
  auto bytes = crypto::random_bytes(24);
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i && i % 4 == 0) out.push_back('-');
    out.push_back(kAlphabet[bytes[i] & 31]);
  }
  crypto::secure_zero(bytes.data(), bytes.size());
  return out;
}

}  // namespace

int report(const Args& a, const shared::Error& e) {
  std::cerr << a.command_path() << ": " << e.message << "\n";
  return shared::exit_code(e.code);
}

shared::Result<std::string> read_hub_passphrase(const Args& a) {
  std::string pass;
  if (auto file = a.find("passphrase-file")) {
    std::ifstream in(*file);
    if (!in) return shared::make_error(shared::Errc::invalid_input, "cannot read passphrase file " + *file);
    std::getline(in, pass);
  } else if (const char* env = std::getenv("IRT_HUB_PASSPHRASE")) {
    pass = env;
  }
  if (pass.empty())
    return shared::make_error(shared::Errc::invalid_input,
                              "no passphrase for the hub's keys: set IRT_HUB_PASSPHRASE or give --passphrase-file FILE");
  return pass;
}

std::unique_ptr<HubState> open_hub(const Args& a, int& exit_code) {
  auto pass = read_hub_passphrase(a);
  if (!pass) {
    exit_code = report(a, pass.error());
    return nullptr;
  }
  auto hub = HubState::open(a.get("data"), *pass, a.find("db").value_or(""));
  crypto::secure_zero(pass->data(), pass->size());
  if (!hub) {
    exit_code = report(a, hub.error());
    return nullptr;
  }
  return std::move(hub.value());
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

// One line of standard input without its line end; on a terminal, prompted
// on standard error and not echoed (hub/commands.h).
std::string read_secret_line(const std::string& prompt) {
  std::string line;
  termios saved{};
  bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
  if (tty) {
    std::cerr << prompt << std::flush;
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::getline(std::cin, line);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::cerr << "\n";
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::optional<User> command_line_user(const Args& a, HubState& hub, const std::string& option,
                                      shared::Permission needed, int& exit_code) {
  Signature who{a.get(option), read_secret_line("password of hub user " + a.get(option) + ": ")};
  auto user = check_signature(hub, who, needed);
  crypto::secure_zero(who.password.data(), who.password.size());
  if (user) return std::move(user).value();
  std::cerr << a.command_path() << ": --" << option << " " << who.user << ": " << user.error().message << "\n";
  exit_code = shared::exit_code(user.error().code);
  return std::nullopt;
}

namespace {
// Whether what `reader` reads is blinded (hub/users.h reads_blinded).
bool blinded_reader(const HubState& hub, const User& reader) {
  return reads_blinded(hub.study(), hub.study().find_role(reader.role));
}
}  // namespace

std::optional<bool> reader_reads_blinded(const Args& a, HubState& hub, shared::Permission needed, int& exit_code) {
  auto who = command_line_user(a, hub, "reader", needed, exit_code);
  if (!who) return std::nullopt;
  return blinded_reader(hub, *who);
}

Option reader_option(shared::Permission needed) {
  return {"reader", "NAME",
          std::string("the hub user reading (the role needs ") + shared::to_string(needed) +
              "); the password is the first line of standard input",
          true};
}

namespace {

// A new user's password: the next line of standard input, or on a terminal
// one generated (`generated` set) to be shown once.
std::optional<std::string> new_password(bool& generated) {
  generated = isatty(STDIN_FILENO);
  if (generated) return generate_password();
  auto line = read_secret_line("");
  if (line.empty()) return std::nullopt;
  return line;
}

const char* kNoNewPassword =
    "no new password on standard input; pipe one in (printf '%s\\n' \"$PW\" | irt-hub user ...) or run the command "
    "in a terminal to have one generated";

void show_generated(const std::string& name, std::string& password, bool generated, bool done) {
  if (done && generated)
    std::cout << "generated password for " << name << " (shown only now; hand it over securely): " << password << "\n";
  crypto::secure_zero(password.data(), password.size());
}

std::string rosters_text(std::size_t n) {
  return "a fresh roster goes to " + std::to_string(n) + " node" + (n == 1 ? "" : "s");
}

// Added by a hub user holding manage_users (--user); only a hub's first
// user, who must hold manage_users, is added without one, recorded as added
// at setup by the operating-system account.
int user_add(const Args& a) {
  NewUser u;
  u.name = a.get("name");
  u.role = a.get("role");
  if (auto s = a.find("sites")) u.sites = split_list(*s);
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  std::optional<User> who;
  if (a.find("user")) {
    who = command_line_user(a, *hub, "user", shared::Permission::manage_users, rc);
    if (!who) return rc;
  }
  bool generated = false;
  auto password = new_password(generated);
  if (!password) return usage(a, kNoNewPassword);
  u.password = std::move(*password);
  auto now = sync::system_millis();
  auto added = who ? add_user(*hub, u, crypto::kInteractive, who->name, now)
                   : add_first_user(*hub, u, crypto::kInteractive, "setup (OS account " + os_user() + ")", now);
  show_generated(u.name, u.password, generated, added.ok());
  if (!added) return report(a, added.error());
  std::cout << "user " << u.name << " added with role " << u.role;
  if (!u.sites.empty()) std::cout << " at sites " << a.get("sites");
  std::cout << "; " << rosters_text(added->rosters_issued) << "\n";
  return 0;
}

int user_list(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  if (!command_line_user(a, *hub, "reader", shared::Permission::manage_users, rc)) return rc;
  auto users = all_users(hub->db());
  if (a.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& u : users)
      out.push_back({{"name", u.name},
                     {"role", u.role},
                     {"sites", u.sites},
                     {"status", u.disabled ? "disabled" : "enabled"},
                     {"created", utc_text(u.created_ms)}});
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& u : users) {
    std::string sites;
    for (const auto& s : u.sites) sites += (sites.empty() ? "" : ",") + s;
    std::cout << u.name << "  " << u.role << "  sites " << (sites.empty() ? "(none)" : sites) << "  "
              << (u.disabled ? "disabled" : "enabled") << "  created " << utc_text(u.created_ms) << "\n";
  }
  return 0;
}

// The acting hub user's signature: --user and the password as the first line
// of standard input.
Signature signature_of(const Args& a) {
  return {a.get("user"), read_secret_line("password of hub user " + a.get("user") + " (signature): ")};
}

int signed_user_change(const Args& a, const std::function<shared::Result<RosterChange>(HubState&, Signature&)>& change,
                       const std::string& done) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto signer = signature_of(a);
  auto changed = change(*hub, signer);
  crypto::secure_zero(signer.password.data(), signer.password.size());
  if (!changed) return report(a, changed.error());
  std::cout << "user " << a.get("name") << " " << done << ", signed by " << signer.user << "; "
            << rosters_text(changed->rosters_issued) << "\n";
  return 0;
}

int user_disable(const Args& a) {
  return signed_user_change(a, [&](HubState& h, Signature& s) {
    return set_user_disabled(h, a.get("name"), true, a.get("reason"), s, sync::system_millis());
  }, "disabled");
}

int user_enable(const Args& a) {
  return signed_user_change(a, [&](HubState& h, Signature& s) {
    return set_user_disabled(h, a.get("name"), false, a.get("reason"), s, sync::system_millis());
  }, "enabled");
}

int user_sites(const Args& a) {
  return signed_user_change(a, [&](HubState& h, Signature& s) {
    return set_user_sites(h, a.get("name"), split_list(a.get("sites")), s, sync::system_millis());
  }, "now works at sites " + a.get("sites"));
}

int user_passwd(const Args& a) {
  bool generated = false;
  std::string password;
  int rc = signed_user_change(a, [&](HubState& h, Signature& s) -> shared::Result<RosterChange> {
    auto p = new_password(generated);
    if (!p) return shared::make_error(shared::Errc::invalid_input, kNoNewPassword);
    password = std::move(*p);
    return set_user_password(h, a.get("name"), password, crypto::kInteractive, s, sync::system_millis());
  }, "has a new password");
  show_generated(a.get("name"), password, generated, rc == 0);
  return rc;
}

// ---- serve

int serve(const Args& a) {
  const std::string listen = a.get("listen");
  auto colon = listen.rfind(':');
  int port = 0;
  std::string host = colon == std::string::npos ? "" : listen.substr(0, colon);
  auto port_text = colon == std::string::npos ? std::string() : listen.substr(colon + 1);
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty() || ec != std::errc() || p != port_text.data() + port_text.size() || port < 1 || port > 65535)
    return usage(a, "--listen must be HOST:PORT, e.g. 127.0.0.1:8443 or [::1]:8443 (got '" + listen + "')");
  bool plain = a.flag("http");
  if (plain && !is_loopback_host(host))
    return usage(a, "--http serves without TLS and is allowed only on a loopback address (127.0.0.1, ::1, "
                    "localhost); drop --http to serve HTTPS on " + host);

  // Block the stop signals before any thread exists (the ledger's verify
  // pool, the server's workers), so that only the waiter below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  SyncServer server(*hub, !plain);
  // The API on the same listener, with a database connection of its own.
  auto api_hub = open_hub(a, rc);
  if (!api_hub) return rc;
  ApiServer api(*api_hub, server.http());
  // Scheduled resupply, with a database connection of its own.
  long every = 0;
  {
    const std::string text = a.get_or("resupply-every", std::to_string(kResupplyEverySeconds));
    auto [end, e] = std::from_chars(text.data(), text.data() + text.size(), every);
    if (e != std::errc() || end != text.data() + text.size() || every < 0)
      return usage(a, "--resupply-every must be a number of seconds, 0 to turn the schedule off (got '" + text + "')");
  }
  std::unique_ptr<ResupplySchedule> schedule;
  if (every > 0) {
    auto schedule_hub = open_hub(a, rc);
    if (!schedule_hub) return rc;
    schedule = std::make_unique<ResupplySchedule>(std::move(schedule_hub), std::chrono::seconds(every));
  }
  // EDC webhook deliveries (hub/webhooks.h), with a database connection of their own.
  auto webhook_hub = open_hub(a, rc);
  if (!webhook_hub) return rc;
  WebhookWorker webhook_worker(std::move(webhook_hub), WebhookTiming::from_environment());
  if (auto st = server.bind(host, port); !st) return report(a, st.error());
  std::cout << "irt-hub: listening on " << (plain ? "http" : "https") << "://" << host << ":" << port << std::endl;

  std::atomic<bool> signalled{false}, finished{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    signalled = true;
    // stop() before the accept loop has started is a no-op, so repeat it
    // until run() has returned.
    while (!finished) {
      server.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  server.run();
  finished = true;
  if (!signalled) kill(getpid(), SIGTERM);  // wake the waiter; the signal is blocked, so it only ends sigwait
  waiter.join();
  if (!signalled) {
    std::cerr << a.command_path() << ": the server stopped unexpectedly; see the messages above\n";
    return 1;
  }
  std::cerr << "irt-hub: stopped\n";
  return 0;
}

// ---- revoke, unfreeze

int revoke(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  const auto& id = a.get("node");
  auto signer = signature_of(a);
  auto revoked = revoke_node(*hub, id, a.get("reason"), signer, sync::system_millis());
  crypto::secure_zero(signer.password.data(), signer.password.size());
  if (!revoked) return report(a, revoked.error());
  const auto& voided = *revoked;
  auto node = hub->ledger().find_node(id);
  std::cout << "node " << id << " revoked; its pushes and pulls are refused from now on, and its "
            << (node ? node->acked_seq : 0) << " recorded events stay in the ledger\n"
            << "voided, never to be granted again: " << voided.slots << " unused randomization slots, "
            << voided.numbers << " unused participant numbers, " << voided.streams << " minimization streams; "
            << voided.kits << " kits in its custody marked lost with the node\n";
  if (voided.cap_places > 0)
    std::cout << voided.cap_places << " unused places under arm and cohort caps returned to the other nodes\n";
  std::cout << "signed by " << signer.user << " (" << kNodeDecisionMeaning << ")\n";
  return 0;
}

int unfreeze(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto signer = signature_of(a);
  auto st = unfreeze_node(*hub, a.get("node"), a.get("reason"), signer, sync::system_millis());
  crypto::secure_zero(signer.password.data(), signer.password.size());
  if (!st) return report(a, st.error());
  std::cout << "node " << a.get("node") << " unfrozen, signed by " << signer.user
            << "; its open alerts are resolved with the reason given\n";
  return 0;
}

// ---- verify

int verify_ledger(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto report_ = hub->ledger().verify_all();
  if (!report_) {
    std::cerr << a.command_path() << ": the ledger does not verify: " << report_.error().message
              << "\nKeep this data directory as it is for investigation and restore service from a backup.\n";
    return 1;
  }
  const auto& r = *report_;
  auto tables = verify_tables(*hub);
  if (!tables.problems.empty()) {
    std::cerr << a.command_path() << ": the hub's tables do not verify (" << tables.problems.size()
              << " problems):\n";
    for (const auto& p : tables.problems) std::cerr << "  " << p << "\n";
    std::cerr << "Keep this data directory as it is for investigation and restore service from a backup.\n";
    return 1;
  }
  std::cout << "ledger verified: " << r.nodes << " nodes, " << r.events << " events, tree size " << r.tree_size
            << ", " << r.checkpoints << " checkpoints, root " << r.root.hex() << "\n"
            << "audit trail verified: " << tables.audit_entries
            << " entries, signed by the hub; allocations, randomization lists, users, alerts and deviations "
               "match what the ledger and the trail record\n";
  return 0;
}

// ---- nodes, alerts

std::string optional_utc(const std::optional<std::int64_t>& ms) { return ms ? utc_text(*ms) : "never"; }

std::string skew_text(const std::optional<std::int64_t>& ms) {
  if (!ms) return "-";
  auto abs = *ms < 0 ? -*ms : *ms;
  return (*ms < 0 ? "-" : "+") + std::to_string(abs / 1000) + "." + std::to_string(abs % 1000 / 100) + "s";
}

// One node in full, for --node.
void print_node(const NodeOverview& o) {
  const auto& n = o.node;
  std::cout << "node " << n.node_id << " (" << n.kind << " node of site " << n.site_id << ")\n"
            << "  status            " << sync::to_string(n.status)
            << (n.status_reason.empty() ? "" : " (" + n.status_reason + ")") << "\n"
            << "  enrolled          " << utc_text(n.enrolled_ms) << "\n"
            << "  last contact      " << optional_utc(o.last_contact_ms) << " (push " << optional_utc(o.last_push_ms)
            << ", pull " << optional_utc(o.last_pull_ms) << ")\n"
            << "  events acked      " << n.acked_seq << ", chain head " << n.acked_hash.hex() << "\n"
            << "  last receipt      "
            << (o.receipt_seq ? "event " + std::to_string(*o.receipt_seq) + ", given " + optional_utc(o.last_push_ms)
                              : std::string("none"))
            << "\n"
            << "  directives        " << o.directives_issued << " issued, last pull asked after "
            << (o.directives_pulled_after ? std::to_string(*o.directives_pulled_after) : std::string("-")) << "\n"
            << "  clock skew        " << skew_text(o.skew_ms)
            << (o.skew_seen_ms ? " (node minus hub, seen " + utc_text(*o.skew_seen_ms) + ")" : std::string()) << "\n"
            << "  lease             "
            << (o.lease_until_ms ? "randomizes until " + utc_text(*o.lease_until_ms) : std::string("none")) << "\n"
            << "  numbers left      " << o.numbers_left << "\n";
  for (const auto& s : o.slots_left)
    std::cout << "  slots left        " << s.slots << " in stratum " << s.stratum + 1 << " (" << s.label << ")\n";
  std::cout << "  kits in custody  ";
  if (o.kits_by_status.empty()) std::cout << " none";
  for (const auto& [status, count] : o.kits_by_status) std::cout << " " << status << " " << count;
  std::cout << "\n  open deviations   " << o.open_deviations << "\n  open alerts       " << o.open_alerts.size() << "\n";
  for (const auto& al : o.open_alerts)
    std::cout << "    #" << al.id << " " << utc_text(al.created_ms) << " " << al.kind << ": " << al.message << "\n";
}

int nodes(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto who = command_line_user(a, *hub, "reader", shared::Permission::manage_nodes, rc);
  if (!who) return rc;
  auto all = node_overview(*hub, a.get_or("node", ""));
  if (!all) return report(a, all.error());
  const bool blinded = blinded_reader(*hub, *who);
  for (auto& o : *all)
    for (auto& al : o.open_alerts) al.message = readable_text(hub->study(), al.message, blinded);
  if (a.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& o : *all) out.push_back(to_json(o));
    std::cout << (a.find("node") ? out[0] : out).dump(2) << "\n";
    return 0;
  }
  if (a.find("node")) {
    print_node(all->front());
    return 0;
  }
  if (all->empty()) {
    std::cout << "no nodes enrolled; invite one with 'irt-hub invite --data DIR --site SITE'\n";
    return 0;
  }
  std::printf("%-14s %-8s %-6s %-8s %8s %-20s %9s %7s %6s %6s %5s %4s\n", "NODE", "SITE", "KIND", "STATUS", "ACKED",
              "LAST CONTACT", "SKEW", "SLOTS", "NUMS", "KITS", "ALRT", "DEV");
  for (const auto& o : *all) {
    const auto& n = o.node;
    std::size_t slots = 0, kits = 0;
    for (const auto& s : o.slots_left) slots += s.slots;
    for (const auto& [status, count] : o.kits_by_status) kits += count;
    std::printf("%-14s %-8s %-6s %-8s %8llu %-20s %9s %7zu %6llu %6zu %5zu %4zu\n", n.node_id.c_str(),
                n.site_id.c_str(), n.kind.c_str(), sync::to_string(n.status),
                static_cast<unsigned long long>(n.acked_seq), optional_utc(o.last_contact_ms).c_str(),
                skew_text(o.skew_ms).c_str(), slots, static_cast<unsigned long long>(o.numbers_left), kits,
                o.open_alerts.size(), o.open_deviations);
  }
  std::cout << "'irt-hub nodes --node ID' shows one node in full: slots per stratum, kits per status, alerts\n";
  return 0;
}

// ---- deviations

int deviations_list(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto who = command_line_user(a, *hub, "reader", shared::Permission::view_audit, rc);
  if (!who) return rc;
  auto list = deviations(*hub, a.flag("open"), !blinded_reader(*hub, *who));
  if (a.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : list) out.push_back(to_json(d));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (list.empty()) {
    std::cout << (a.flag("open") ? "no open deviations\n" : "no deviations\n");
    return 0;
  }
  for (const auto& d : list) {
    std::cout << "#" << d.id << " " << utc_text(d.raised_ms) << " " << d.kind << " site " << d.site_id << " node "
              << d.node_id << " seq " << d.seq << " [" << d.status << "]: " << d.summary;
    if (d.unblinded) std::cout << " [unblinded: " << *d.unblinded << "]";
    if (d.acknowledged_ms)
      std::cout << " [acknowledged by " << d.acknowledged_by << " at " << utc_text(*d.acknowledged_ms) << ": "
                << d.comment << "]";
    std::cout << "\n";
  }
  return 0;
}

int deviations_acknowledge(const Args& a) {
  auto id = shared::parse_u64(a.get("id"));
  if (!id || *id == 0 || *id > static_cast<std::uint64_t>(INT64_MAX))
    return usage(a, "--id must be a deviation number from 'irt-hub deviations' (got '" + a.get("id") + "')");
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto signer = signature_of(a);
  auto done = acknowledge_deviation(*hub, static_cast<std::int64_t>(*id), a.get("comment"), signer,
                                    sync::system_millis());
  crypto::secure_zero(signer.password.data(), signer.password.size());
  if (!done) return report(a, done.error());
  std::cout << "deviation #" << done->id << " acknowledged, signed by " << signer.user << " (reviewed)\n";
  return 0;
}

// ---- audit

int audit(const Args& a) {
  AuditFilter filter;
  if (auto since = a.find("since")) {
    filter.since_ms = shared::parse_utc(*since);
    if (!filter.since_ms)
      return usage(a, "--since must be a UTC date YYYY-MM-DD or time YYYY-MM-DDTHH:MM:SSZ (got '" + *since + "')");
  }
  filter.actor = a.get_or("user", "");
  filter.subject = a.get_or("object", "");
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto who = command_line_user(a, *hub, "reader", shared::Permission::view_audit, rc);
  if (!who) return rc;
  auto entries = audit_trail(*hub, filter, blinded_reader(*hub, *who));
  if (a.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : entries) out.push_back(to_json(e));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& e : entries) {
    std::cout << utc_text(e.at_ms) << "  " << e.user << "  " << e.action << "  " << e.object;
    if (e.source == "node") std::cout << "  node " << e.node_id << " (site " << e.site_id << ") seq " << e.seq;
    if (!e.reason.empty()) std::cout << "  why: " << e.reason;
    if (!e.old_value.empty() || !e.new_value.empty())
      std::cout << "  [" << (e.old_value.empty() ? "-" : e.old_value) << " -> " << e.new_value << "]";
    if (!e.signature.empty()) std::cout << "  signed: " << e.signature;
    if (e.source == "node" && !e.details.empty()) std::cout << "  " << e.details.dump();
    std::cout << "\n";
  }
  return 0;
}

// As GET /api/v1/alerts: a message naming an arm or a kit type is withheld
// from a blinded reader (hub/audit_trail.h readable_text).
int alerts(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto who = command_line_user(a, *hub, "reader", shared::Permission::manage_nodes, rc);
  if (!who) return rc;
  auto list = hub->ledger().alerts(!a.flag("all"));
  const bool blinded = blinded_reader(*hub, *who);
  for (auto& al : list) al.message = readable_text(hub->study(), al.message, blinded);
  if (a.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& al : list) {
      nlohmann::json j{{"id", al.id},           {"kind", al.kind},       {"node_id", al.node_id},
                       {"message", al.message}, {"created_ms", al.created_ms}};
      j["seq"] = al.seq ? nlohmann::json(*al.seq) : nlohmann::json(nullptr);
      j["resolved_by"] = al.resolved_by ? nlohmann::json(*al.resolved_by) : nlohmann::json(nullptr);
      j["resolved_ms"] = al.resolved_ms ? nlohmann::json(*al.resolved_ms) : nlohmann::json(nullptr);
      j["resolution"] = al.resolution ? nlohmann::json(*al.resolution) : nlohmann::json(nullptr);
      out.push_back(std::move(j));
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (list.empty()) {
    std::cout << (a.flag("all") ? "no alerts\n" : "no open alerts\n");
    return 0;
  }
  for (const auto& al : list) {
    std::cout << "#" << al.id << " " << utc_text(al.created_ms) << " " << al.kind << " node " << al.node_id;
    if (al.seq) std::cout << " seq " << *al.seq;
    std::cout << ": " << al.message;
    if (al.resolved_ms) std::cout << " [resolved by " << *al.resolved_by << ": " << *al.resolution << "]";
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

std::vector<Command> node_commands() {
  std::vector<Command> out;
  out.push_back({.name = "init",
                 .summary = "Create a hub: keys, TLS identity, database, and the study (never overwrites DIR)",
                 .options = {kData, kDb, kPassphraseFile, {"study", "FILE", "the study configuration (JSON)", true},
                             {"kdf-cost", "LEVEL",
                              "Argon2id cost of the passphrase: moderate (default), interactive, min (tests only)",
                              false}},
                 .run = init});
  Command keys{.name = "keys", .summary = "Manage the hub's key files"};
  keys.subcommands.push_back(
      {.name = "wrap",
       .summary = "Wrap the clear key files of a hub initialized before keys were wrapped under the passphrase "
                  "(IRT_HUB_PASSPHRASE or --passphrase-file); stop the hub and back up DIR first",
       .options = {kData, kPassphraseFile,
                   {"kdf-cost", "LEVEL",
                    "Argon2id cost of the passphrase: moderate (default), interactive, min (tests only)", false}},
       .run = keys_wrap});
  out.push_back(std::move(keys));
  out.push_back({.name = "invite",
                 .summary = "Print a one-time enrollment token for a new node of a site",
                 .options = {kData, kDb, kPassphraseFile,
                             {"user", "NAME", "the hub user inviting (manage_nodes); the password is the first line "
                                              "of standard input", true},
                             {"site", "SITE", "the site id the node will belong to", true},
                             {"kind", "KIND", "site (default) or nurse", false},
                             {"expires-hours", "N",
                              "hours the token stays valid (default 72; 0 gives an expired token, for tests)",
                              false}},
                 .run = invite_cmd});
  out.push_back({.name = "fingerprint",
                 .summary = "Print the SHA-256 fingerprint of the hub's TLS certificate, for enrolling nodes",
                 .options = {kData, kDb, kPassphraseFile},
                 .run = fingerprint});
  Command user{.name = "user", .summary = "Manage the users who log in on nodes and at the hub"};
  user.subcommands.push_back(
      {.name = "add",
       .summary = "Add a user: the signer's password is the first line of standard input, the new user's the "
                  "second (generated and shown once on a terminal); a hub's first user, who must hold "
                  "manage_users, is added without --user and with the new password only",
       .options = {kData, kDb, kPassphraseFile,
                   {"user", "NAME", "the hub user adding (manage_users); required once the hub has a user", false},
                   {"name", "NAME", "the login name", true},
                   {"role", "ROLE", "a role id of the study", true},
                   {"sites", "S1,S2",
                    "the sites whose nodes the user may log in on (a depot role, manage_depot: the depots it acts for)",
                    false}},
       .run = user_add});
  const Option signer{"user", "NAME", "the hub user signing the change (manage_users); the password is the "
                                       "first line of standard input", true};
  const Option name{"name", "NAME", "the user's login name", true};
  user.subcommands.push_back({.name = "list",
                              .summary = "List the hub's users: role, sites, enabled or disabled",
                              .options = {kData, kDb, kPassphraseFile, reader_option(shared::Permission::manage_users),
                                          {"json", "", "print JSON", false}},
                              .run = user_list});
  user.subcommands.push_back(
      {.name = "disable",
       .summary = "Disable a user: the user's nodes refuse the login and e-signatures once they have synced (signed)",
       .options = {kData, kDb, kPassphraseFile, name, signer, {"reason", "TEXT", "why, for the audit trail", true}},
       .run = user_disable});
  user.subcommands.push_back({.name = "enable",
                              .summary = "Enable a disabled user again (signed)",
                              .options = {kData, kDb, kPassphraseFile, name, signer, {"reason", "TEXT", "why, for the audit trail", true}},
                              .run = user_enable});
  user.subcommands.push_back(
      {.name = "passwd",
       .summary = "Set a user's password (signed): the new password is the second line of standard input, or "
                  "generated and shown once on a terminal",
       .options = {kData, kDb, kPassphraseFile, name, signer},
       .run = user_passwd});
  user.subcommands.push_back(
      {.name = "sites",
       .summary = "Set the sites whose nodes a user may log in on (signed); both old and new sites get a fresh roster",
       .options = {kData, kDb, kPassphraseFile, name, signer, {"sites", "S1,S2", "the user's sites, all of them", true}},
       .run = user_sites});
  out.push_back(std::move(user));
  out.push_back({.name = "serve",
                 .summary = "Serve the sync protocol (/sync/v1) and the JSON API (/api/v1, docs/openapi-hub.yaml) over "
                            "HTTPS until SIGTERM or SIGINT",
                 .options = {kData, kDb, kPassphraseFile,
                             {"listen", "HOST:PORT", "the address to listen on, e.g. 0.0.0.0:8443", true},
                             {"http", "", "plain HTTP; only on a loopback address, for tests and the demo", false},
                             {"resupply-every", "SECONDS",
                              "review every active site's resupply this often (default " +
                                  std::to_string(kResupplyEverySeconds) + "; 0: only after syncs and on demand)",
                              false}},
                 .run = serve});
  const Option node_signer{"user", "NAME", "the hub user signing the decision (manage_nodes); the password is the "
                                           "first line of standard input", true};
  out.push_back({.name = "revoke",
                 .summary = "Revoke a node (signed): its later pushes and pulls are refused, its events stay in the "
                            "ledger",
                 .options = {kData, kDb, kPassphraseFile, {"node", "ID", "the node id", true}, node_signer,
                             {"reason", "TEXT", "why, for the audit trail", true}},
                 .run = revoke});
  out.push_back({.name = "unfreeze",
                 .summary = "Lift the freeze put on a node after equivocation, once the evidence is reviewed (signed)",
                 .options = {kData, kDb, kPassphraseFile, {"node", "ID", "the node id", true}, node_signer,
                             {"reason", "TEXT", "the decision, for the audit trail", true}},
                 .run = unfreeze});
  out.push_back({.name = "verify",
                 .summary = "Check every node chain, every signature, the Merkle tree and the checkpoints, the hub's "
                            "signed audit trail, and the tables rebuilt from them (allocations, lists, users, alerts, "
                            "deviations)",
                 .options = {kData, kDb, kPassphraseFile},
                 .run = verify_ledger});
  out.push_back({.name = "nodes",
                 .summary = "The enrolled nodes: status, last contact, events acknowledged, chain head, last receipt, "
                            "clock skew, slots and numbers left, kits in custody by status, open alerts",
                 .options = {kData, kDb, kPassphraseFile, reader_option(shared::Permission::manage_nodes),
                             {"json", "", "print JSON", false}, {"node", "ID", "show this node in full", false}},
                 .run = nodes});
  Command devs{.name = "deviations",
               .summary = "List the deviations raised from what nodes report (code breaks, visit windows, kits "
                          "dispensed against a decision, exhausted slices, equivocation, ...)",
               .options = {kData, kDb, kPassphraseFile,
                           {"reader", "NAME",
                            "the hub user reading (the role needs view_audit; a reader of an unblinded role also "
                            "sees the arm of a code break); the password is the first line of standard input",
                            true},
                           {"json", "", "print JSON", false}, {"open", "", "only those not acknowledged", false}},
               .run = deviations_list};
  devs.subcommands.push_back(
      {.name = "acknowledge",
       .summary = "Acknowledge a deviation as reviewed (signed, manage_study), with a comment",
       .options = {kData, kDb, kPassphraseFile, {"id", "N", "the deviation's number", true},
                   {"comment", "TEXT", "what was reviewed and decided, for the audit trail", true},
                   {"user", "NAME", "the hub user signing (manage_study); the password is the first line of standard "
                                    "input", true}},
       .run = deviations_acknowledge});
  out.push_back(std::move(devs));
  out.push_back({.name = "audit",
                 .summary = "Read the audit trail, oldest first: the hub's entries and the nodes' events, blinded as the "
                            "reading user's role requires (the reader needs view_audit)",
                 .options = {kData, kDb, kPassphraseFile,
                             {"reader", "NAME", "the hub user reading; the password is read from standard input", true},
                             {"since", "T", "entries at or after T: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)", false},
                             {"user", "U", "only entries by this user", false},
                             {"object", "O", "only entries about this object (a user, a node id, a site, a participant, a kit)", false},
                             {"json", "", "print JSON", false}},
                 .run = audit});
  out.push_back({.name = "alerts",
                 .summary = "List open alerts (equivocation, bad signatures, broken chains, refused pushes, ingest "
                            "findings, supply shortages)",
                 .options = {kData, kDb, kPassphraseFile, reader_option(shared::Permission::manage_nodes),
                             {"json", "", "print JSON", false}, {"all", "", "include resolved alerts", false}},
                 .run = alerts});
  return out;
}

}  // namespace irt::hub
