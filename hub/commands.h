// The irt-hub command line, one function per group of subcommands, each in the
// file that owns that area (study_commands.cpp, ...). main.cpp assembles them.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hub/hub_state.h"
#include "hub/users.h"
#include "shared/command_line.h"

namespace irt::hub {

std::vector<shared::Command> study_commands();          // check-study, diff-study, amend, study-versions
std::vector<shared::Command> randomization_commands();  // randlist, simulate
std::vector<shared::Command> supply_commands();  // lot, kits, kit history, site activate, supply run
std::vector<shared::Command> node_commands();  // init, invite, fingerprint, user, serve, revoke, unfreeze, verify, nodes, audit, alerts
std::vector<shared::Command> kit_decision_commands();  // quarantine, kits destroy, reconcile: hub/kit_commands.cpp
std::vector<shared::Command> cohort_commands();        // cohort list|open|close: hub/cohort_commands.cpp
std::vector<shared::Command> lease_commands();         // lease shorten: hub/lease_commands.cpp
std::vector<shared::Command> export_commands();        // export: hub/export_commands.cpp
std::vector<shared::Command> transfer_commands();      // transfer list|approve|reject: hub/transfer_commands.cpp
std::vector<shared::Command> shipment_commands();      // shipment list|show|approve|ship|deliver|lose|cancel
std::vector<shared::Command> webhook_commands();       // webhook add|list|remove|deliveries: hub/webhook_commands.cpp
std::vector<shared::Command> backup_commands();        // backup, restore: hub/backup_commands.cpp

shared::Command simulate_supply_command();              // simulate supply (under randomization_commands' simulate)
shared::Command forecast_command();                     // forecast (hub/forecast_commands.cpp)

// One line of standard input without its line end (a password for an
// e-signature); on a terminal, prompted on standard error and not echoed.
std::string read_secret_line(const std::string& prompt);

// The hub user acting at the command line: named by `option` (--user for a
// decision, --reader for a read), the password the first line of standard
// input, an enabled user whose role holds `needed`. On refusal, prints why
// and sets `exit_code`. The operating-system account running a command is
// never an identity in the audit trail.
std::optional<User> command_line_user(const shared::Args& a, HubState& hub, const std::string& option,
                                      shared::Permission needed, int& exit_code);

// The --reader option of a read command: who reads, holding `needed`.
shared::Option reader_option(shared::Permission needed);

// The --reader (reader_option), holding `needed`: whether their role reads
// blinded (hub/users.h reads_blinded). nullopt, `exit_code` set, when refused.
std::optional<bool> reader_reads_blinded(const shared::Args& a, HubState& hub, shared::Permission needed,
                                         int& exit_code);

// Options and steps every command file shares.
inline const shared::Option kData{"data", "DIR", "the hub's data directory", true};
inline const shared::Option kDb{
    "db", "URL",
    "the hub's PostgreSQL database, postgresql://USER@HOST:PORT/NAME: init records it in DIR/database.url "
    "(default: DIR/hub.db, SQLite); the other commands read it there and refuse a different one",
    false};
inline const shared::Option kJson{"json", "", "print JSON", false};
inline const shared::Option kPassphraseFile{
    "passphrase-file", "FILE",
    "read the passphrase that unlocks the hub's keys from FILE's first line instead of IRT_HUB_PASSPHRASE", false};

// Prints "<command>: <message>" on standard error; returns the error's exit code.
int report(const shared::Args& a, const shared::Error& e);
// The passphrase of the hub's keys: --passphrase-file's first line, else
// IRT_HUB_PASSPHRASE; never an argument, where `ps` would show it.
shared::Result<std::string> read_hub_passphrase(const shared::Args& a);
// The hub of --data (and --db), its keys unlocked with read_hub_passphrase;
// nullptr with `exit_code` set (and printed) when it cannot be opened.
std::unique_ptr<HubState> open_hub(const shared::Args& a, int& exit_code);
// "a, b,c" -> {"a", "b", "c"}: items trimmed, empty ones dropped.
std::vector<std::string> split_list(const std::string& s);

}  // namespace irt::hub
