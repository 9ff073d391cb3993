// A record of the node's store that no longer authenticates is reported by
// `irt-node status` and `irt-node serve` as damage, naming the record and what
// to do, never read as absent ("no study yet", "unknown user").
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "storage/database.h"
#include "tests/support/node_fixture.h"
#include "tests/support/test_support.h"

using namespace irt;

namespace {

// One byte of the sealed value under `key` flipped in the closed database file.
void flip_sealed_value(const std::filesystem::path& dir, const std::string& key) {
  crypto::Bytes sealed;
  {
    auto db = storage::Database::open(dir / "node.db", {.create = false});
    REQUIRE(db.ok());
    auto st = db->prepare("SELECT sealed FROM node_sealed WHERE key = ?");
    st.bind(1, key);
    REQUIRE(st.step());
    sealed = st.blob(0);
  }
  REQUIRE(sealed.size() > 40);
  test::flip_byte_after(dir / "node.db", std::string(sealed.begin(), sealed.begin() + 24), 30);
}

test::CommandResult node_command(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {IRT_NODE_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run(argv, "", {std::string("IRT_PASSPHRASE=") + test::kFixturePassphrase});
}

std::string damage(const std::string& key) {
  return "node data is damaged (the sealed record '" + key +
         "' does not authenticate: edited, moved or corrupted); restore the data directory from backup and report "
         "it to the central team";
}

}  // namespace

TEST_CASE("irt-node status and serve report a damaged study configuration instead of no study") {
  test::TempDir tmp;
  test::NodeFixture fixture(tmp / "node");
  auto data = (tmp / "node").string();
  REQUIRE(nlohmann::json::parse(node_command({"status", "--data", data}).out)["has_study"] == true);
  flip_sealed_value(tmp / "node", "study");
  auto status = node_command({"status", "--data", data});
  CHECK(status.exit_code == 1);
  CHECK(status.out.find("has_study") == std::string::npos);
  CHECK(status.err == "irt-node status: " + damage("study") + "\n");
  // The node does not serve on a study it cannot trust: the API never says "no study yet".
  auto serve = node_command({"serve", "--data", data, "--listen", "127.0.0.1:" + std::to_string(test::free_port())});
  CHECK(serve.exit_code == 1);
  CHECK(serve.err == "irt-node serve: " + damage("study") + "\n");
}

TEST_CASE("irt-node status reports a damaged roster instead of no users") {
  test::TempDir tmp;
  test::NodeFixture fixture(tmp / "node");
  auto data = (tmp / "node").string();
  flip_sealed_value(tmp / "node", "roster");
  auto status = node_command({"status", "--data", data});
  CHECK(status.exit_code == 1);
  auto j = nlohmann::json::parse(status.out);
  CHECK(j["damage"] == damage("roster"));
  CHECK(j["has_study"] == true);
  CHECK(status.err == "irt-node status: FAILED: " + damage("roster") + "\n");
}
