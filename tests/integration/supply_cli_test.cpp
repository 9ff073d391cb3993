// The real irt-hub binary's supply commands: lot add, list, release and
// relabel (signed), kits import and generate, kit history, site activate, and
// init loading the lots and kit list beside a study file.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

using namespace irt;
using nlohmann::json;

namespace {

const std::string kStudy = "packaging/examples/study-blocks.json";
const std::string kPassword = "supply-password-123";
const std::string kAdmin = "admin-password-123";

test::CommandResult hub(std::vector<std::string> args, const std::string& stdin_text = "") {
  args.insert(args.begin(), IRT_HUB_BIN);
  return test::run(args, stdin_text);
}

struct Hub {
  test::TempDir dir;
  std::string data = (dir / "hub").string();
  explicit Hub(const std::string& study = test::source_path(kStudy)) {
    auto r = hub({"init", "--kdf-cost", "min", "--data", data, "--study", study});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    // The first user holds manage_users and adds the supply manager, who acts in the tests.
    auto admin = hub({"user", "add", "--data", data, "--name", "ada", "--role", "admin"}, kAdmin + "\n");
    REQUIRE_MESSAGE(admin.exit_code == 0, admin.err);
    auto u = hub({"user", "add", "--data", data, "--name", "sam", "--role", "supply-manager", "--user", "ada"},
                 kAdmin + "\n" + kPassword + "\n");
    REQUIRE_MESSAGE(u.exit_code == 0, u.err);
    auto m = hub({"user", "add", "--data", data, "--name", "mo", "--role", "monitor", "--user", "ada"},
                 kAdmin + "\n" + kPassword + "\n");
    REQUIRE_MESSAGE(m.exit_code == 0, m.err);
  }
  // Runs an irt-hub command acting or reading as `who` (--user or --reader) with the shared password.
  test::CommandResult as(const std::string& who, std::vector<std::string> args, const std::string& option = "--user") const {
    args.insert(args.end(), {"--data", data, option, who});
    return hub(std::move(args), kPassword + "\n");
  }
};

}  // namespace

TEST_CASE("lot add, release and relabel from the command line, signed, with lot list showing each step") {
  Hub h;
  auto added = h.as("sam", {"lot", "add", "--lot", "X-1", "--expiry", "2029-01-31"});
  REQUIRE_MESSAGE(added.exit_code == 0, added.err);
  auto bad = h.as("sam", {"lot", "add", "--lot", "X-2", "--expiry", "2029-02-30"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("expiry: use a date YYYY-MM-DD") != std::string::npos);

  auto wrong = hub({"lot", "release", "--data", h.data, "--lot", "X-1", "--countries", "FR", "--user", "sam",
                    "--reason", "QP release"},
                   "not the password\n");
  CHECK(wrong.exit_code != 0);
  auto released = hub({"lot", "release", "--data", h.data, "--lot", "X-1", "--countries", "FR,BE", "--user", "sam",
                       "--reason", "QP release"},
                      kPassword + "\n");
  REQUIRE_MESSAGE(released.exit_code == 0, released.err);
  CHECK(released.out.find("released in FR,BE, signed by sam") != std::string::npos);
  auto relabelled = hub({"lot", "relabel", "--data", h.data, "--lot", "X-1", "--expiry", "2029-06-30", "--user", "sam",
                         "--reason", "stability"},
                        kPassword + "\n");
  REQUIRE_MESSAGE(relabelled.exit_code == 0, relabelled.err);

  auto monitor = h.as("mo", {"lot", "list", "--json"}, "--reader");  // no manage_supply
  CHECK(monitor.exit_code == 1);
  CHECK(monitor.err.find("manage_supply") != std::string::npos);
  auto list = h.as("sam", {"lot", "list", "--json"}, "--reader");
  REQUIRE_MESSAGE(list.exit_code == 0, list.err);
  auto lots = json::parse(list.out);
  REQUIRE(lots.size() == 4);
  bool found = false;
  for (const auto& l : lots) {
    CHECK(l.contains("kit_types"));  // an unblinded reader
    if (l["lot"] == "X-1") {
      found = true;
      CHECK(l["expiry"] == "2029-06-30");
      CHECK(l["released_in"] == json::array({"BE", "FR"}));
    }
  }
  CHECK(found);
  auto unsigned_add = hub({"lot", "add", "--data", h.data, "--lot", "X-3", "--expiry", "2029-01-31"});
  CHECK(unsigned_add.exit_code == 2);  // --user is required
}

TEST_CASE("kits import refuses a bad file with line numbers and exit 2, then imports a good one, and kit history shows it") {
  Hub h;
  REQUIRE(h.as("sam", {"lot", "add", "--lot", "X-1", "--expiry", "2029-01-31"}).exit_code == 0);
  auto bad = h.dir / "bad.csv";
  test::write_file(bad, "kit_number,kit_type,lot,depot\n900001,VLC25,X-1,EU-01\n900001,PBO,X-1,EU-01\n900002,PBO,NOPE,EU-01\n");
  auto refused = h.as("sam", {"kits", "import", "--file", bad.string()});
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find("bad.csv line 3: kit 900001 appears twice") != std::string::npos);
  CHECK(refused.err.find("bad.csv line 4: unknown lot \"NOPE\"") != std::string::npos);
  CHECK(h.as("mo", {"kit", "history", "900001"}, "--reader").exit_code == 1);  // nothing imported

  auto good = h.dir / "good.csv";
  test::write_file(good, "kit_number,kit_type,lot,depot\n900001,VLC25,X-1,EU-01\n900002,PBO,X-1,EU-01\n");
  auto imported = h.as("sam", {"kits", "import", "--file", good.string()});
  REQUIRE_MESSAGE(imported.exit_code == 0, imported.err);
  CHECK(imported.out.find("2 kits imported") != std::string::npos);

  auto history = h.as("mo", {"kit", "history", "900001", "--json"}, "--reader");
  REQUIRE_MESSAGE(history.exit_code == 0, history.err);
  auto j = json::parse(history.out);
  CHECK(j["kit"]["status"] == "available");
  CHECK(j["kit"]["custody_id"] == "EU-01");
  CHECK_FALSE(j["kit"].contains("kit_type"));
  CHECK(history.out.find("VLC25") == std::string::npos);
  std::vector<std::string> actions;
  for (const auto& e : j["history"]) actions.push_back(e["action"]);
  CHECK(actions == std::vector<std::string>{"lot.added", "kits.imported"});

  CHECK(h.as("sam", {"kits", "generate"}).exit_code == 1);  // the hub holds kits: conflict
}

TEST_CASE("init loads the lots and kit list beside the study, and a manual-activation study needs site activate") {
  test::TempDir dir;
  auto study = json::parse(test::read_file(test::source_path(kStudy)));
  study["site_activation"] = "manual";
  test::write_file(dir / "trial.json", study.dump());
  test::write_file(dir / "trial.lots.csv", "lot,expiry,released_in\nA-1,2030-06-30,FR BE\n");
  test::write_file(dir / "trial.kits.csv", "kit_number,kit_type,lot,depot\n7001,VLC25,A-1,EU-01\n7002,PBO,A-1,EU-01\n");
  Hub h((dir / "trial.json").string());
  auto list = h.as("sam", {"lot", "list", "--json"}, "--reader");
  REQUIRE(list.exit_code == 0);
  auto lots = json::parse(list.out);
  REQUIRE(lots.size() == 1);
  CHECK(lots[0]["lot"] == "A-1");
  CHECK(lots[0]["kits"] == 2);

  auto activated = hub({"site", "activate", "--data", h.data, "--site", "101", "--user", "sam"}, kPassword + "\n");
  REQUIRE_MESSAGE(activated.exit_code == 0, activated.err);
  auto again = hub({"site", "activate", "--data", h.data, "--site", "101", "--user", "sam"}, kPassword + "\n");
  CHECK(again.exit_code == 1);
  CHECK(again.err.find("already active") != std::string::npos);

  test::write_file(dir / "lone.json", study.dump());
  test::write_file(dir / "lone.kits.csv", "kit_number,kit_type,lot,depot\n");
  auto r = hub({"init", "--kdf-cost", "min", "--data", (dir / "lone-hub").string(), "--study", (dir / "lone.json").string()});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("needs its lots file") != std::string::npos);
}
