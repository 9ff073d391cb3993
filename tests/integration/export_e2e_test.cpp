// `irt-hub export` and /api/v1/exports against a real hub process with a real
// node's events: the CLI and the API give the same bytes; the blinded export
// as each blinded role that may export holds no arm or kit type in any
// format (the blinding crawl of every export); the unblinded one is signed,
// refused to blinded roles, and audited; the ODM file is well-formed for xmllint.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "hub/users.h"
#include "shared/study.h"
#include "tests/support/export_blinding.h"
#include "tests/support/cluster.h"
#include "tests/support/hub_api.h"
#include "tests/support/site_session.h"

using namespace irt;
using test::revealing;
using nlohmann::json;
using test::hub_call;
using test::hub_login;
using test::HubProcess;
using test::NodeDir;

namespace {

const std::string kPassword = "a long enough password";
const std::string kCoordinator = "coordinator.ana";
const std::vector<std::string> kKinds = {"participants", "randomizations", "dispensations", "inventory",
                                         "shipments",    "audit",          "deviations"};

// Receives the initial shipment and randomizes `n` participants at the node (a kit each at V1).
std::vector<std::string> randomize_at(NodeDir& dir, int n) {
  test::SiteSession site(dir, kCoordinator, kPassword);
  site.receive_all();
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    auto number = site.screen({{"diabetes", i % 2 ? "yes" : "no"}});
    auto done = site.ops->randomize(site.actor, number, site.password);
    REQUIRE_MESSAGE(done.ok(), done.error().message);
    out.push_back(number);
  }
  return out;
}


std::string read(const std::filesystem::path& p) { return test::read_file(p); }

}  // namespace

TEST_CASE("irt-hub export and the API give the same blinded exports, and no blinded role's export reveals the allocation") {
  HubProcess hub;
  hub.add_user(kCoordinator, "coordinator", "101", kPassword);
  hub.add_user("monitor.mo", "monitor", "", kPassword);  // no export_data
  NodeDir node(hub, "101");
  auto participants = randomize_at(node, 4);
  REQUIRE(node.sync().exit_code == 0);
  auto study = shared::load_study_file(test::source_path("packaging/examples/study-blocks.json")).study;
  REQUIRE(study);
  test::TempDir out;

  // The CLI, as the auditor (blinded, export_data).
  hub.add_user("auditor.al", "auditor", "", kPassword);
  auto file = out / "participants.csv";
  auto cli = hub.cli({"export", "--what", "participants", "--format", "csv", "--out", file.string(), "--reader",
                      "auditor.al"},
                     kPassword + "\n");
  REQUIRE_MESSAGE(cli.exit_code == 0, cli.err);
  CHECK(cli.err.find("exported participants (blinded, csv") != std::string::npos);
  auto csv = read(file);
  CHECK(csv.rfind("participant,site_id,node_id,status,", 0) == 0);
  for (const auto& p : participants) CHECK(csv.find(p + ",101,") != std::string::npos);
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // A reader without export_data is refused, and nothing is written.
  auto refused = hub.cli({"export", "--what", "participants", "--format", "csv", "--out", (out / "no.csv").string(),
                          "--reader", "monitor.mo"},
                         kPassword + "\n");
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("export_data") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out / "no.csv"));
  // Usage: ODM is for the clinical data; --user without --unblinded.
  auto odm_audit = hub.cli({"export", "--what", "audit", "--format", "odm", "--out", (out / "a.xml").string(),
                            "--reader", "auditor.al"},
                           kPassword + "\n");
  CHECK(odm_audit.exit_code == 2);
  CHECK(odm_audit.err.find("clinical data only") != std::string::npos);
  CHECK(hub.cli({"export", "--what", "participants", "--format", "csv", "--out", (out / "b.csv").string(), "--user",
                 "auditor.al"},
                kPassword + "\n")
            .exit_code == 2);

  // The crawl: every export in every format, as each blinded role that may export, by CLI and API alike.
  int crawled = 0, roles = 0;
  for (const auto& role : study->roles) {
    if (!hub::reads_blinded(*study, &role)) continue;
    const std::string name = "export." + role.id;
    hub.add_user(name, role.id, hub::is_site_role(role) ? "101" : "", kPassword);
    auto token = hub_login(hub.port(), name, kPassword);
    for (const auto& what : kKinds)
      for (const std::string format : {"csv", "json", "odm"}) {
        CAPTURE(role.id);
        CAPTURE(what);
        CAPTURE(format);
        auto r = hub_call(hub.port(), "GET", "/api/v1/exports/" + what + "?format=" + format, token);
        if (!role.can(shared::Permission::export_data)) {
          CHECK(r.status == 403);
          continue;
        }
        if (format == "odm" && what != "participants" && what != "randomizations" && what != "dispensations") {
          CHECK(r.status == 400);
          continue;
        }
        REQUIRE_MESSAGE(r.status == 200, r.text);
        CHECK_MESSAGE(revealing(*study, r.text).empty(), revealing(*study, r.text) << " in\n" << r.text);
        auto path = out / (role.id + "-" + what + "." + format);
        auto c = hub.cli({"export", "--what", what, "--format", format, "--out", path.string(), "--reader", name},
                         kPassword + "\n");
        REQUIRE_MESSAGE(c.exit_code == 0, c.err);
        auto text = read(path);
        if (format == "csv") CHECK(text == r.text);
        if (format == "json") {
          auto a = json::parse(text), b = json::parse(r.text);
          a.erase("created");
          b.erase("created");
          CHECK(a == b);
        }
        if (format == "odm") {
          auto lint = test::run({"/usr/bin/xmllint", "--noout", path.string()});
          CHECK_MESSAGE(lint.exit_code == 0, lint.err);
        }
        ++crawled;
      }
    ++roles;
  }
  CHECK(roles == 7);
  CHECK(crawled == 2 * (7 * 2 + 3));  // study-manager and auditor
}

TEST_CASE("an unblinded export is signed by a role that reads unblinded, with a reason, and audited, and blinded roles are refused") {
  HubProcess hub;
  hub.add_user(kCoordinator, "coordinator", "101", kPassword);
  hub.add_user("stat.sue", "unblinded-statistician", "", kPassword);
  hub.add_user("manager.max", "study-manager", "", kPassword);
  NodeDir node(hub, "101");
  auto participants = randomize_at(node, 2);
  REQUIRE(node.sync().exit_code == 0);
  test::TempDir out;

  auto refused = hub.cli({"export", "--what", "randomizations", "--format", "csv", "--out",
                          (out / "r.csv").string(), "--user", "manager.max", "--unblinded", "--reason", "curious"},
                         kPassword + "\n");
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("reads blinded") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out / "r.csv"));
  auto wrong = hub.cli({"export", "--what", "randomizations", "--format", "csv", "--out", (out / "r.csv").string(),
                        "--user", "stat.sue", "--unblinded", "--reason", "DSMB"},
                       "not the password\n");
  CHECK(wrong.exit_code == 1);
  CHECK_FALSE(std::filesystem::exists(out / "r.csv"));

  auto done = hub.cli({"export", "--what", "randomizations", "--format", "csv", "--out", (out / "r.csv").string(),
                       "--user", "stat.sue", "--unblinded", "--reason", "DSMB interim analysis"},
                      kPassword + "\n");
  REQUIRE_MESSAGE(done.exit_code == 0, done.err);
  auto csv = read(out / "r.csv");
  CHECK(csv.find(",arm,arm_name\r\n") != std::string::npos);
  for (const auto& p : participants) {
    auto line = csv.substr(csv.find(p + ","));
    line = line.substr(0, line.find("\r\n"));
    CHECK((line.find(",A,Velcardin") != std::string::npos || line.find(",B,Placebo") != std::string::npos));
  }

  // The API: POST with the signature and a reason; the same file.
  auto token = hub_login(hub.port(), "stat.sue", kPassword);
  auto no_signature = hub_call(hub.port(), "POST", "/api/v1/exports/randomizations", token,
                               json{{"format", "csv"}, {"reason", "DSMB"}});
  CHECK(no_signature.status == 400);
  auto r = hub_call(hub.port(), "POST", "/api/v1/exports/randomizations", token,
                    json{{"format", "csv"}, {"reason", "DSMB interim analysis"}, {"signature", {{"password", kPassword}}}});
  REQUIRE_MESSAGE(r.status == 200, r.text);
  CHECK(r.text == csv);
  auto blinded_token = hub_login(hub.port(), "manager.max", kPassword);
  auto blinded = hub_call(hub.port(), "POST", "/api/v1/exports/randomizations", blinded_token,
                          json{{"format", "csv"}, {"reason", "x"}, {"signature", {{"password", kPassword}}}});
  CHECK(blinded.status == 403);

  // Audited twice (CLI and API), by the signer, with the reason and what.
  auto audit = hub.read_as_admin({"audit", "--json"});
  REQUIRE(audit.exit_code == 0);
  int exports = 0;
  for (const auto& e : json::parse(audit.out))
    if (e["action"] == "export.unblinded") {
      ++exports;
      CHECK(e["user"] == "stat.sue");
      CHECK(e["reason"] == "DSMB interim analysis");
      CHECK(e["new_value"] == "randomizations as csv, unblinded");
    }
  CHECK(exports == 2);
}
