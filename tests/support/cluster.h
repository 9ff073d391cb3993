// Real hub and node processes on loopback for integration tests and
// benchmarks: each in its own temporary data directory, started on a port
// chosen at run time, stopped (or killed) by the test.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "storage/database.h"
#include "tests/support/test_support.h"

namespace irt::test {

// The tables of the hub in data directory `data`, opened as irt-hub opens them
// (hub.db unsealed with the test passphrase, or its PostgreSQL database).
storage::Database open_hub_tables(const std::filesystem::path& data);

inline constexpr const char* kNodePassphrase = "correct horse battery staple";
// The hub's first user, added by HubProcess at init (role "admin": manage_users,
// manage_nodes, view_audit); invite() and add_user() act as this user.
inline constexpr const char* kHubAdmin = "hub.admin";
inline constexpr const char* kHubAdminPassword = "hub admin password 1";

class PostgresDatabase;

class HubProcess {
 public:
  // `study`: a path in the source tree, or an absolute path.
  // With IRT_TEST_HUB_ENGINE=postgresql in the environment, the hub keeps its
  // tables in a fresh database of the PostgreSQL test cluster (irt-hub init --db).
  explicit HubProcess(const std::string& study = "packaging/examples/study-blocks.json", bool tls = false);
  ~HubProcess();
  void start(const std::vector<std::string>& extra = {});  // extra: more `irt-hub serve` options
  void stop();       // SIGTERM and wait
  void kill_hard();  // SIGKILL
  bool running();

  // `irt-hub ARGS` with --data after the command (after its subcommand when ARGS[1] is not an option).
  CommandResult cli(std::vector<std::string> args, const std::string& stdin_text = "");
  // A read command (nodes, alerts, deviations, audit, user list) as kHubAdmin: --reader and its password.
  CommandResult read_as_admin(std::vector<std::string> args);
  std::string invite(const std::string& site, const std::string& kind = "site");
  void add_user(const std::string& name, const std::string& role, const std::string& sites,
                const std::string& password);

  std::string url() const;
  int port() const { return port_; }
  int pid() const;  // the running hub process, -1 when stopped
  const std::string& fingerprint() const { return fingerprint_; }
  std::filesystem::path data() const { return dir_ / "hub"; }
  // The hub's tables, on whichever engine it runs (for checks beside the hub process).
  storage::Database database() const;
  std::filesystem::path log_file() const { return dir_ / "hub.log"; }

 private:
  std::unique_ptr<PostgresDatabase> pg_;
  TempDir dir_;
  bool tls_;
  int port_;
  std::string fingerprint_;
  std::unique_ptr<Process> process_;
};

// One more `irt-hub serve` of a hub: the same data directory and database,
// its own port and log. On PostgreSQL, several serve processes on one database
// (docs/architecture.md, hub); the hub must stay initialised while it runs.
class HubPeer {
 public:
  explicit HubPeer(const HubProcess& hub);
  ~HubPeer();
  void start();
  void stop();       // SIGTERM and wait
  void kill_hard();  // SIGKILL
  bool running();
  std::string url() const;
  int port() const { return port_; }
  std::filesystem::path log_file() const { return dir_ / "hub.log"; }

 private:
  std::filesystem::path data_;
  TempDir dir_;
  int port_;
  std::unique_ptr<Process> process_;
};

class NodeDir {
 public:
  // Enrolls a node of `site` with the hub (the hub must be running), or with
  // `hub_url` when given (a proxy in front of the hub); `kind` "nurse" for a nurse's tablet.
  NodeDir(HubProcess& hub, const std::string& site, const std::string& hub_url = "", const std::string& kind = "site");
  // `irt-hub ARGS` with --data after the command (after its subcommand when ARGS[1] is not an option).
  CommandResult cli(std::vector<std::string> args, const std::string& stdin_text = "");
  // A read command (nodes, alerts, deviations, audit, user list) as kHubAdmin: --reader and its password.
  CommandResult read_as_admin(std::vector<std::string> args);
  CommandResult note(const std::string& user, const std::string& password, const std::string& text);
  CommandResult sync() { return cli({"sync"}); }
  CommandResult verify() { return cli({"verify"}); }
  std::filesystem::path data() const { return dir_ / "node"; }
  const CommandResult& enroll_result() const { return enrolled_; }

 private:
  TempDir dir_;
  CommandResult enrolled_;
};

// One number the hub's database answers (SELECT count(*) ...), read while it serves.
inline std::int64_t hub_count(HubProcess& hub, const std::string& sql) {
  auto db = hub.database();
  auto st = db.prepare(sql);
  REQUIRE(st.step());
  return st.int64(0);
}

// The hub's alerts other than supply shortages: a node that runs out of kits records a shortage, which
// the hub raises as an alert for the supply team, as it should; any other alert is an integrity problem.
inline std::int64_t integrity_alerts(HubProcess& hub) {
  return hub_count(hub, "SELECT count(*) FROM ledger_alerts WHERE kind <> 'supply.shortage'");
}

// The hub's ledger holds each event of node `node_id` once, and every one up to `last` (the node's last_seq
// when asked). A served node may record more meanwhile: it records each directive it applies (a top-up of
// participant numbers, say) and syncs that at once; those are not counted.
inline void check_ledger_holds([[maybe_unused]] HubProcess& hub, const std::string& node_id,
                               [[maybe_unused]] std::int64_t last) {
  const auto of_node = " FROM ledger_events WHERE node_id = '" + node_id + "'";
  CHECK(hub_count(hub, "SELECT count(*) - count(DISTINCT seq)" + of_node) == 0);
  CHECK(hub_count(hub, "SELECT count(*)" + of_node + " AND seq <= " + std::to_string(last)) == last);
}

// A sync of `n` that must succeed (a doctest REQUIRE, with the node's error).
// (The benchmarks, which share this header, build with DOCTEST_CONFIG_DISABLE.)
inline void sync_ok(NodeDir& n) {
  auto r = n.sync();
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
}

}  // namespace irt::test
