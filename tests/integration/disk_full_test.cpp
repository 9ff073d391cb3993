// A full disk and a read-only database under a real `irt-node serve` and a
// real `irt-hub serve`: each data directory is moved onto a small tmpfs, which
// the test fills with a file beside the database (or remounts read-only).
// Every write is then refused with a clear error (503 naming "disk full" and
// the fix; a node's push to the full hub 503 as well; the CLI exits 3 with
// the same words), nothing is half-written (the node's chain
// and the hub's ledger verify, counts unchanged), reads go on, and once the
// filler is removed the same operations succeed without a restart.
//
// Mounting needs a mount namespace of the test's own: as root (CI runs the
// suite as root) it unshares one; otherwise it unshares a user namespace too,
// where it is root. If neither works the test fails saying why.
// The hub on PostgreSQL keeps its tables on PostgreSQL's disk, not in its data
// directory: under IRT_TEST_HUB_ENGINE=postgresql only the node side runs.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/hub_api.h"
#include "tests/support/postgres_database.h"
#include "tests/support/served_node.h"

using namespace irt;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kDiskPassword = test::kServedNodePassword;

bool write_text_file(const char* path, const std::string& text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// Enters a mount namespace of this process's own (its children, the node and
// the hub, inherit it); "" when done, else why it could not. A user namespace
// can only be entered before the process starts a thread: call it first.
std::string enter_private_mount_namespace() {
  static std::string entered = [] {
    const uid_t uid = ::geteuid();
    const gid_t gid = ::getegid();
    if (::unshare(CLONE_NEWNS) != 0) {
      const std::string as_root = std::strerror(errno);
      if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        return "cannot mount a tmpfs: unshare(CLONE_NEWNS) failed (" + as_root +
               ") and a user namespace is not allowed either (" + std::strerror(errno) +
               "); run the test as root, or allow unprivileged user namespaces "
               "(sysctl kernel.unprivileged_userns_clone=1)";
      if (!write_text_file("/proc/self/setgroups", "deny") ||
          !write_text_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1") ||
          !write_text_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1"))
        return std::string("cannot map this user to root in a new user namespace: ") + std::strerror(errno);
    }
    // Mounts made here stay here (an error is harmless where / is not a mount point).
    ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
    return std::string();
  }();
  return entered;
}

std::uintmax_t bytes_under(const fs::path& dir) {
  std::uintmax_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) total += e.file_size();
  return total;
}

void require_mount_namespace() {
  auto why = enter_private_mount_namespace();
  REQUIRE_MESSAGE(why.empty(), why);
}

// A data directory moved onto a tmpfs with `spare` bytes free beyond what it
// holds. Its process must be stopped while it is moved.
class SmallDisk {
 public:
  SmallDisk(const fs::path& dir, std::uintmax_t spare) : dir_(dir) {
    const auto size = (bytes_under(dir) + spare + (1u << 20)) / 4096 * 4096;
    const fs::path held = dir.string() + ".held";
    fs::rename(dir, held);
    fs::create_directory(dir);
    const std::string options = "size=" + std::to_string(size) + ",mode=0700";
    REQUIRE_MESSAGE(::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) == 0,
                    "cannot mount a tmpfs on ", dir.string(), ": ", std::strerror(errno));
    fs::copy(held, dir, fs::copy_options::recursive);
    fs::remove_all(held);
  }
  ~SmallDisk() {
    // The directory's files go back where they were, so that the test's
    // temporary directory is removed as usual.
    const fs::path held = dir_.string() + ".held";
    std::error_code ec;
    ::mount(nullptr, dir_.c_str(), nullptr, MS_REMOUNT, nullptr);
    fs::remove(dir_ / "filler", ec);
    fs::copy(dir_, held, fs::copy_options::recursive, ec);
    ::umount2(dir_.c_str(), MNT_DETACH);
    fs::remove(dir_, ec);
    fs::rename(held, dir_, ec);
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;

  // A file beside the database, grown until the disk refuses one byte more.
  void fill() {
    int fd = ::open((dir_ / "filler").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    std::vector<char> block(4096, 'x');
    while (::write(fd, block.data(), block.size()) > 0) {
    }
    const int full = errno;
    while (::write(fd, block.data(), 1) > 0) {
    }
    ::close(fd);
    REQUIRE_MESSAGE(full == ENOSPC, "filling the disk stopped at ", std::strerror(full), ", not ENOSPC");
  }
  void free_space() { fs::remove(dir_ / "filler"); }

  // The whole disk read-only (true) or writable again; no process may hold a
  // file of it open for writing (Linux refuses the remount: EBUSY).
  void remount(bool read_only) {
    REQUIRE_MESSAGE(::mount(nullptr, dir_.c_str(), nullptr, MS_REMOUNT | (read_only ? MS_RDONLY : 0), nullptr) == 0,
                    "cannot remount ", dir_.string(), ": ", std::strerror(errno));
  }

 private:
  fs::path dir_;
};

// A write refused for a full disk or a read-only database: 503, the shared
// error body, naming the fault and saying nothing was recorded.
void check_storage_refusal(const test::ServedReply& r, const std::string& fault) {
  INFO(r.status, " ", r.body.dump());
  CHECK(r.status == 503);
  CHECK(r.body["error"].value("code", "") == "unavailable");
  auto message = r.body["error"].value("message", "");
  CHECK(message.find(fault) != std::string::npos);
  CHECK(message.find("nothing was recorded") != std::string::npos);
}

json screen_body() {
  return {{"factors", {{"diabetes", "no"}}}, {"eligibility", std::vector<std::string>(5, "yes")}};
}

std::string screen(test::ServedNode& n) {
  auto r = n.call("POST", "/api/v1/participants", screen_body());
  REQUIRE_MESSAGE(r.status == 200, r.body.dump());
  return r.body["participant"].value("participant", "");
}

test::ServedReply randomize(test::ServedNode& n, const std::string& participant) {
  return n.call("POST", "/api/v1/participants/" + participant + "/randomize",
                {{"signature_password", kDiskPassword}});
}

test::ServedReply dispense(test::ServedNode& n, const std::string& participant) {
  return n.call("POST", "/api/v1/participants/" + participant + "/dispense",
                {{"visit", "V2"}, {"override_reason", "seen early"}, {"signature_password", kDiskPassword}});
}

std::size_t participants(test::ServedNode& n) {
  auto r = n.call("GET", "/api/v1/participants");
  REQUIRE(r.status == 200);
  return r.body["participants"].size();
}

json node_status(test::ServedNode& n) {
  auto r = n.call("GET", "/api/v1/status");
  REQUIRE(r.status == 200);
  return r.body;
}

std::int64_t pending_events(test::ServedNode& n) { return node_status(n).value("pending_events", std::int64_t{-1}); }

}  // namespace

TEST_CASE("disk full at a node: site work is refused with a clear error, nothing half-written, and resumes") {
  require_mount_namespace();
  test::HubProcess hub;
  hub.add_user("coordinator.101", "coordinator", "101", kDiskPassword);
  test::ServedNode node(hub, "101");
  const auto randomized = screen(node);
  REQUIRE(randomize(node, randomized).status == 200);
  const auto screened = screen(node);
  REQUIRE(node.wait_synced());

  node.stop();
  SmallDisk disk(node.dir().data(), 1u << 20);
  node.start();
  disk.fill();

  // What already had room in the write-ahead log may still be written; the
  // first refusal comes within a few requests, and every answered one is kept.
  auto before = participants(node);
  std::size_t accepted = 0;
  test::ServedReply refused;
  for (int i = 0; i < 50; ++i) {
    refused = node.call("POST", "/api/v1/participants", screen_body());
    if (refused.status != 200) break;
    ++accepted;
  }
  check_storage_refusal(refused, "disk full");
  const auto held = before + accepted;
  CHECK(participants(node) == held);  // reads go on
  const auto pending = pending_events(node);
  check_storage_refusal(randomize(node, screened), "disk full");
  check_storage_refusal(dispense(node, randomized), "disk full");
  check_storage_refusal(node.call("POST", "/api/v1/participants", screen_body()), "disk full");
  CHECK(participants(node) == held);
  CHECK(pending_events(node) == pending);
  auto list = node.call("GET", "/api/v1/participants");
  REQUIRE(list.status == 200);
  for (const auto& p : list.body["participants"])
    if (p.value("participant", "") == screened) CHECK(p.value("randomization_number", "").empty());

  // Space back: the same operations succeed, the node was not restarted.
  disk.free_space();
  CHECK(randomize(node, screened).status == 200);
  CHECK(dispense(node, randomized).status == 200);
  screen(node);
  CHECK(participants(node) == held + 1);
  CHECK(node.wait_synced());
  node.stop();
  auto v = node.dir().verify();
  CHECK_MESSAGE(v.exit_code == 0, v.out, v.err);
}

TEST_CASE("read-only node database: the node refuses to serve with a clear error and serves once writable") {
  require_mount_namespace();
  test::HubProcess hub;
  hub.add_user("coordinator.102", "coordinator", "102", kDiskPassword);
  test::ServedNode node(hub, "102");
  const auto screened = screen(node);
  node.stop();
  SmallDisk disk(node.dir().data(), 1u << 20);
  disk.remount(true);

  // `irt-node` cannot write its data directory: a write command exits non-zero naming the fix.
  auto r = node.dir().cli({"sync"});
  CHECK(r.exit_code != 0);
  INFO(r.out, r.err);
  CHECK(r.err.find("the database is read-only") != std::string::npos);
  CHECK(r.err.find("make the data directory and its files writable") != std::string::npos);

  disk.remount(false);
  node.start();
  CHECK(randomize(node, screened).status == 200);
  node.stop();
  auto v = node.dir().verify();
  CHECK_MESSAGE(v.exit_code == 0, v.out, v.err);
}

TEST_CASE("disk full at the hub: pushes and decisions are refused, the ledger is unchanged, and sync resumes") {
  require_mount_namespace();
  if (test::hub_engine_is_postgresql()) {
    MESSAGE("the hub on PostgreSQL keeps its tables on PostgreSQL's disk: only the SQLite hub is filled here");
    return;
  }
  test::HubProcess hub;
  hub.add_user("coordinator.102", "coordinator", "102", kDiskPassword);
  test::ServedNode node(hub, "102");
  REQUIRE(node.wait_synced());
  hub.stop();
  SmallDisk disk(hub.data(), 1u << 20);
  hub.start();
  const auto admin = test::hub_login(hub.port(), test::kHubAdmin, test::kHubAdminPassword);
  disk.fill();

  const auto events = test::hub_count(hub, "SELECT count(*) FROM ledger_events");
  const auto users = test::hub_count(hub, "SELECT count(*) FROM hub_users");
  // Site work goes on offline at the node; its pushes are refused and kept.
  const auto p = screen(node);
  REQUIRE(randomize(node, p).status == 200);
  std::this_thread::sleep_for(std::chrono::seconds(3));  // three sync rounds, each refused
  CHECK(pending_events(node) > 0);
  CHECK(test::hub_count(hub, "SELECT count(*) FROM ledger_events") == events);
  CHECK(test::read_file(hub.log_file()).find("disk is full") != std::string::npos);  // SQLite's words, in the log
  // The push was answered 503 `unavailable` naming the disk (not a 500): the
  // node reads it as "try again later", keeps its events and goes on retrying.
  const auto refused_push = node_status(node);
  const std::string sync_error = refused_push.value("sync_error", "");
  INFO(refused_push.dump());
  CHECK(sync_error.find("disk full: the disk holding irt-hub's database has no space left") != std::string::npos);
  CHECK(sync_error.find("[unavailable, HTTP 503]") != std::string::npos);
  CHECK(refused_push.value("sync_state", "") == "offline");
  CHECK(refused_push.value("sync_failures", 0) >= 1);

  // A decision at the hub (a new user) is refused as the API refuses it:
  // exit 3 (unavailable), the fault and the fix, not an internal error.
  auto add = hub.cli({"user", "add", "--user", test::kHubAdmin, "--name", "monitor.102", "--role", "monitor",
                      "--sites", "102"},
                     std::string(test::kHubAdminPassword) + "\n" + kDiskPassword + "\n");
  INFO(add.out, add.err);
  CHECK(add.exit_code == 3);
  CHECK(add.err.find("irt-hub user add: disk full: the disk holding irt-hub's database has no space left") !=
        std::string::npos);
  CHECK(add.err.find("nothing was recorded") != std::string::npos);
  CHECK(add.err.find("free space on that disk") != std::string::npos);
  CHECK(add.err.find("internal error") == std::string::npos);
  // The hub's API: reads go on; a decision (a new user) is refused naming the disk.
  CHECK(test::hub_call(hub.port(), "GET", "/api/v1/users", admin).status == 200);
  const json pharmacist = {
      {"name", "pharmacist.102"}, {"role", "pharmacist"}, {"sites", {"102"}}, {"password", kDiskPassword}};
  auto refused = test::hub_call(hub.port(), "POST", "/api/v1/users", admin, pharmacist);
  CHECK(refused.status == 503);
  CHECK(refused.body["error"].value("message", "").find("disk full") != std::string::npos);
  CHECK(test::hub_count(hub, "SELECT count(*) FROM hub_users") == users);
  CHECK(hub.running());

  disk.free_space();
  CHECK(node.wait_synced());
  CHECK(test::hub_count(hub, "SELECT count(*) FROM ledger_events") > events);
  // Every event of the node in the ledger exactly once, none lost or taken twice.
  const auto synced = node_status(node);
  const std::string node_id = synced.value("node_id", "");
  const auto last = synced.value("last_seq", std::int64_t{-1});
  CHECK(synced.value("pending_events", std::int64_t{-1}) == 0);
  test::check_ledger_holds(hub, node_id, last);
  hub.add_user("monitor.102", "monitor", "102", kDiskPassword);
  CHECK(test::hub_call(hub.port(), "POST", "/api/v1/users", admin, pharmacist).status == 200);
  node.stop();
  hub.stop();
  auto v = hub.cli({"verify"});
  CHECK_MESSAGE(v.exit_code == 0, v.out, v.err);
}

// The hub on PostgreSQL whose database refuses writes (SQLSTATE 25006, as on a
// hot standby; here the database's default_transaction_read_only, which every
// new session takes): a write command is refused as read-only with the fix,
// exit 3, nothing of it written; once writable, the same command succeeds.
// (A full PostgreSQL disk is not made here: the test cluster's server runs
// outside this test's mount namespace, so a tmpfs mounted here is not its disk;
// SQLSTATE 53100 goes through the same mapping, storage/postgresql_connection.cpp.)
TEST_CASE("read-only PostgreSQL hub database: a hub write is refused as read-only, nothing written, and resumes") {
  if (!test::hub_engine_is_postgresql()) {
    MESSAGE("the hub runs on SQLite here: its read-only case is the node's above; this one runs as "
            "integration-postgresql:");
    return;
  }
  test::HubProcess hub;
  hub.add_user("coordinator.101", "coordinator", "101", kDiskPassword);
  hub.stop();
  auto db = hub.database();
  std::string name;
  {
    auto st = db.prepare("SELECT current_database()");
    REQUIRE(st.step());
    name = st.text(0);
  }
  const auto users = test::hub_count(hub, "SELECT count(*) FROM hub_users");
  const auto audit = test::hub_count(hub, "SELECT count(*) FROM hub_audit");
  db.exec("ALTER DATABASE " + name + " SET default_transaction_read_only = on");

  auto add_monitor = [&hub] {
    return hub.cli({"user", "add", "--user", test::kHubAdmin, "--name", "monitor.101", "--role", "monitor",
                    "--sites", "101"},
                   std::string(test::kHubAdminPassword) + "\n" + kDiskPassword + "\n");
  };
  auto refused = add_monitor();
  INFO(refused.out, refused.err);
  CHECK(refused.exit_code == 3);
  CHECK(refused.err.find("the database is read-only: irt-hub cannot write its data directory") != std::string::npos);
  CHECK(refused.err.find("nothing was recorded") != std::string::npos);
  CHECK(refused.err.find("internal error") == std::string::npos);
  db.exec("ALTER DATABASE " + name + " RESET default_transaction_read_only");
  CHECK(test::hub_count(hub, "SELECT count(*) FROM hub_users") == users);
  CHECK(test::hub_count(hub, "SELECT count(*) FROM hub_audit") == audit);

  auto added = add_monitor();
  CHECK_MESSAGE(added.exit_code == 0, added.out, added.err);
  CHECK(test::hub_count(hub, "SELECT count(*) FROM hub_users") == users + 1);
  auto v = hub.cli({"verify"});
  CHECK_MESSAGE(v.exit_code == 0, v.out, v.err);
}
