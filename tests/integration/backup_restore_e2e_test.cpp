// End to end: a hub backed up while it serves, restored into a new data
// directory after its node pushed and pulled more, served again; the node
// re-pushes what the restored hub lacks and the hub continues its directives
// above those the node applied (docs/operations.md). Real processes.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/cluster.h"
#include "tests/support/postgres_database.h"

using namespace irt;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kRestoreSitePassword = "site-101-password";

nlohmann::json restore_test_node_status(NodeDir& node) {
  auto r = node.cli({"status"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return nlohmann::json::parse(r.out);
}

void restore_test_note(NodeDir& node, const std::string& text) {
  auto r = node.note("coordinator.ana", kRestoreSitePassword, text);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
}

// The restored hub's data directory takes the old one's place (same port, the
// same TLS identity the node pinned); the old one is kept aside.
test::CommandResult restore_in_place_of(HubProcess& hub, const std::filesystem::path& backup,
                                 const std::filesystem::path& old_aside) {
  hub.stop();
  std::filesystem::rename(hub.data(), old_aside);
  return test::run({IRT_HUB_BIN, "restore", "--from", backup.string(), "--data", hub.data().string()});
}

}  // namespace

TEST_CASE("a hub restored from a backup taken while it served gets every event back from its node once, and continues its directives above those the node applied") {
  HubProcess hub;
  test::TempDir keep;
  const auto backup = keep / "hub.backup";
  if (test::hub_engine_is_postgresql()) {
    auto r = hub.cli({"backup", "--out", backup.string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("pg_dump") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(backup));
    return;
  }
  hub.add_user("coordinator.ana", "coordinator", "101", kRestoreSitePassword);
  NodeDir node(hub, "101");
  test::sync_ok(node);
  for (int i = 0; i < 3; ++i) restore_test_note(node, "before the backup " + std::to_string(i));
  test::sync_ok(node);
  const std::string node_id = restore_test_node_status(node)["node_id"];
  const auto at_backup = restore_test_node_status(node);

  auto b = hub.cli({"backup", "--out", backup.string()});  // the hub is serving
  REQUIRE_MESSAGE(b.exit_code == 0, b.err);
  CHECK(hub.running());
  // The hub's tables travel sealed: neither the backup nor hub.db names one.
  for (const auto& f : {backup, hub.data() / "hub.db"})
    for (const char* table : {"hub_allocations", "hub_randomization_lists", "hub_kits"})
      CHECK_MESSAGE(test::read_file(f).find(table) == std::string::npos, (f.string() + " names " + table));
  auto again = hub.cli({"backup", "--out", backup.string()});
  CHECK(again.exit_code == 2);
  CHECK(again.err.find("already exists") != std::string::npos);

  // After the backup: more events pushed, and a directive (a roster) pulled.
  for (int i = 0; i < 2; ++i) restore_test_note(node, "after the backup " + std::to_string(i));
  hub.add_user("coordinator.cat", "coordinator", "101", kRestoreSitePassword);
  test::sync_ok(node);
  const auto before_restore = restore_test_node_status(node);
  const std::uint64_t applied = before_restore["applied_directive_seq"];
  REQUIRE(applied > at_backup["applied_directive_seq"].get<std::uint64_t>());
  REQUIRE(before_restore["acked_seq"] == before_restore["last_seq"]);

  auto r = restore_in_place_of(hub, backup, keep / "hub-before-restore");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.find("ledger verified") != std::string::npos);
  // A second restore never writes over a hub.
  auto over = test::run({IRT_HUB_BIN, "restore", "--from", backup.string(), "--data", hub.data().string()});
  CHECK(over.exit_code == 2);
  CHECK(over.err.find("not empty") != std::string::npos);

  hub.start();
  const std::string events_of_node = "FROM ledger_events WHERE node_id = '" + node_id + "'";
  const std::string directives_of_node = "FROM hub_directives WHERE node_id = '" + node_id + "'";
  CHECK(test::hub_count(hub, "SELECT count(*) " + events_of_node) == at_backup["last_seq"].get<std::int64_t>());
  const std::int64_t held = test::hub_count(hub, "SELECT max(seq) " + directives_of_node);
  REQUIRE(held < static_cast<std::int64_t>(applied));

  restore_test_note(node, "after the restore");
  auto s = node.sync();
  REQUIRE_MESSAGE(s.exit_code == 0, s.err);
  CHECK(s.err.find("restored from an older backup") != std::string::npos);
  const auto after = restore_test_node_status(node);
  CHECK(after["acked_seq"] == after["last_seq"]);
  const std::int64_t last = after["last_seq"];
  CHECK(test::hub_count(hub, "SELECT count(*) " + events_of_node) == last);
  CHECK(test::hub_count(hub, "SELECT count(DISTINCT seq) " + events_of_node) == last);
  CHECK(test::hub_count(hub, "SELECT max(seq) " + events_of_node) == last);

  // The directive lost with the restore: one alert, and the next directive
  // is numbered above the one the node applied.
  CHECK(test::hub_count(hub, "SELECT count(*) FROM ledger_alerts WHERE kind = 'directives.lost' AND node_id = '" +
                                 node_id + "'") == 1);
  hub.add_user("coordinator.dan", "coordinator", "101", kRestoreSitePassword);
  test::sync_ok(node);
  const std::string above_held = directives_of_node + " AND seq > " + std::to_string(held);
  CHECK(test::hub_count(hub, "SELECT count(*) " + above_held + " AND seq <= " + std::to_string(applied)) == 0);
  CHECK(test::hub_count(hub, "SELECT min(seq) " + above_held) == static_cast<std::int64_t>(applied + 1));
  CHECK(test::hub_count(hub, "SELECT count(*) " + above_held + " AND type = 'roster'") >= 1);
  CHECK(restore_test_node_status(node)["applied_directive_seq"].get<std::int64_t>() ==
        test::hub_count(hub, "SELECT max(seq) " + directives_of_node));

  auto v = hub.cli({"verify"});
  CHECK_MESSAGE(v.exit_code == 0, v.err);
  CHECK(node.verify().exit_code == 0);
}

TEST_CASE("restore refuses a wrong passphrase and a file that is not a backup, and leaves no directory behind") {
  HubProcess hub;
  if (test::hub_engine_is_postgresql()) return;  // backup refuses PostgreSQL (the case above)
  test::TempDir keep;
  const auto backup = keep / "hub.backup";
  REQUIRE(hub.cli({"backup", "--out", backup.string()}).exit_code == 0);
  test::write_file(keep / "wrong.pass", "not the hub passphrase\n");
  auto wrong = test::run({IRT_HUB_BIN, "restore", "--from", backup.string(), "--data", (keep / "a").string(),
                          "--passphrase-file", (keep / "wrong.pass").string()});
  CHECK(wrong.exit_code == 1);
  CHECK(wrong.err.find("wrong passphrase") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(keep / "a"));
  auto not_backup = test::run(
      {IRT_HUB_BIN, "restore", "--from", (hub.data() / "hub.db").string(), "--data", (keep / "b").string()});
  CHECK(not_backup.exit_code == 2);
  CHECK(not_backup.err.find("not a hub backup") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(keep / "b"));
  auto ok = test::run({IRT_HUB_BIN, "restore", "--from", backup.string(), "--data", (keep / "c").string()});
  CHECK_MESSAGE(ok.exit_code == 0, ok.err);
  CHECK((std::filesystem::status(keep / "c" / "keys" / "hub-signing.key").permissions() &
         (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) == std::filesystem::perms::none);
}
