// The irt-hub commands for EDC webhooks (hub/webhooks.h): add, list, remove,
// and the delivery log. Changes take --user NAME (manage_nodes) and reads
// --reader (manage_nodes), the password as the first line of standard input.
// The shared secret comes from a file (--secret-file), never the command
// line, and is never printed.
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "crypto/bytes.h"
#include "hub/audit.h"
#include "hub/commands.h"
#include "hub/webhooks.h"
#include "sync/hlc.h"

namespace irt::hub {

namespace {

using shared::Args;
using shared::Command;
using shared::Option;

constexpr auto kPermission = shared::Permission::manage_nodes;

int fail(const Args& a, const std::string& message) {
  std::cerr << a.command_path() << ": " << message << "\n";
  return shared::exit_code(shared::Errc::invalid_input);
}

// The secret file's bytes without a final line end (an editor adds one).
std::optional<std::string> read_secret_file(const Args& a, int& rc) {
  const auto& path = a.get("secret-file");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    rc = fail(a, "cannot read the secret file '" + path + "'; give a file holding the shared secret");
    return std::nullopt;
  }
  std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) {
    rc = fail(a, "the secret file '" + path + "' is empty; put the shared secret in it (e.g. 'openssl rand -hex 32')");
    return std::nullopt;
  }
  return secret;
}

int webhook_add(const Args& a) {
  int rc = 0;
  WebhookInput in{a.get_or("name", ""), a.get("url"), split_list(a.get("events")), ""};
  auto secret = read_secret_file(a, rc);
  if (!secret) return rc;
  in.secret = std::move(*secret);
  if (auto st = check_webhook_input(in); !st) {
    crypto::secure_zero(in.secret.data(), in.secret.size());
    return report(a, st.error());
  }
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto who = command_line_user(a, *hub, "user", kPermission, rc);
  if (!who) return rc;
  auto added = add_webhook(*hub, in, who->name, sync::system_millis());
  crypto::secure_zero(in.secret.data(), in.secret.size());
  if (!added) return report(a, added.error());
  std::cout << "webhook " << added->id << " (" << added->name << ") added: " << added->url << " receives";
  for (const auto& k : added->events) std::cout << " " << k;
  std::cout << "\n";
  return 0;
}

int webhook_list(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  if (!command_line_user(a, *hub, "reader", kPermission, rc)) return rc;
  auto all = webhooks(hub->db(), a.flag("all"));
  if (a.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& w : all) out.push_back(to_json(w));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (all.empty()) std::cout << "no webhook\n";
  for (const auto& w : all) {
    std::cout << w.id << "  " << w.name << "  " << w.url << "  ";
    for (std::size_t i = 0; i < w.events.size(); ++i) std::cout << (i ? "," : "") << w.events[i];
    std::cout << "  added by " << w.created_by << " at " << utc_text(w.created_ms);
    if (w.removed_ms) std::cout << ", removed at " << utc_text(*w.removed_ms);
    std::cout << "\n";
  }
  return 0;
}

int webhook_remove(const Args& a) {
  auto id = shared::parse_u64(a.positional().at(0));
  if (!id || *id == 0 || *id > static_cast<std::uint64_t>(INT64_MAX))
    return fail(a, "'" + a.positional().at(0) + "' is not a webhook id; 'irt-hub webhook list' shows them");
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto who = command_line_user(a, *hub, "user", kPermission, rc);
  if (!who) return rc;
  auto removed = remove_webhook(*hub, static_cast<std::int64_t>(*id), who->name, sync::system_millis());
  if (!removed) return report(a, removed.error());
  std::cout << "webhook " << removed->id << " (" << removed->url << ") removed; its pending deliveries are cancelled\n";
  return 0;
}

int webhook_deliveries_command(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  if (!command_line_user(a, *hub, "reader", kPermission, rc)) return rc;
  auto all = webhook_deliveries(hub->db());
  if (a.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : all) out.push_back(to_json(d));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (all.empty()) std::cout << "no delivery\n";
  for (const auto& d : all) {
    std::cout << d.id << "  webhook " << d.webhook_id << "  " << d.kind << " " << d.event_id << "  " << d.status
              << ", " << d.attempts << " attempts";
    if (d.delivered_ms) std::cout << ", delivered " << utc_text(*d.delivered_ms);
    if (d.status == "pending") std::cout << ", next attempt " << utc_text(d.next_attempt_ms);
    if (!d.last_error.empty()) std::cout << "; last: " << d.last_error;
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

std::vector<Command> webhook_commands() {
  const Option signer{"user", "NAME", "the hub user making the change (manage_nodes); the password is the first line "
                                      "of standard input", true};
  Command w{.name = "webhook",
            .summary = "EDC webhooks: add, list or remove a subscription; the delivery log",
            .options = {kData, kDb, kPassphraseFile, kJson, reader_option(kPermission), {"all", "", "removed webhooks too", false}},
            .run = webhook_list};
  w.subcommands.push_back(
      {.name = "add",
       .summary = "Subscribe a URL to event kinds; each delivery is blinded JSON signed with the shared secret",
       .options = {kData, kDb, kPassphraseFile,
                   {"url", "URL", "https://HOST[:PORT][/PATH] (http:// only to a loopback host)", true},
                   {"events", "KINDS",
                    "comma-separated: participant.randomized, kit.dispensed, participant.withdrawn, "
                    "participant.completed, participant.unblinded (code break)",
                    true},
                   {"secret-file", "FILE", "a file holding the shared secret (its final line end is dropped)", true},
                   {"name", "N", "a name for people (default: the URL's host)", false},
                   signer},
       .run = webhook_add});
  w.subcommands.push_back({.name = "list",
                           .summary = "The webhooks: URL, event kinds, who added them (never the secret)",
                           .options = {kData, kDb, kPassphraseFile, kJson, reader_option(kPermission),
                                       {"all", "", "removed webhooks too", false}},
                           .run = webhook_list});
  w.subcommands.push_back({.name = "remove",
                           .summary = "Remove a webhook: no new deliveries, its pending ones cancelled",
                           .options = {kData, kDb, kPassphraseFile, signer},
                           .positional = "ID",
                           .min_positional = 1,
                           .max_positional = 1,
                           .run = webhook_remove});
  w.subcommands.push_back({.name = "deliveries",
                           .summary = "The delivery log, newest first: status, attempts, last error, next attempt",
                           .options = {kData, kDb, kPassphraseFile, kJson, reader_option(kPermission)},
                           .run = webhook_deliveries_command});
  return {w};
}

}  // namespace irt::hub
