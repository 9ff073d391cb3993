// Participant data never crosses a network in clear: the node talks plain HTTP
// only to a hub on loopback, and serves its web UI beyond this machine only
// when the operator says so.
#include <doctest/doctest.h>

#include "tests/support/node_api_client.h"
#include "tests/support/node_fixture.h"
#include "tests/support/test_support.h"

using namespace irt;

namespace {

test::CommandResult node_command(const std::vector<std::string>& args, const std::string& in = "") {
  std::vector<std::string> argv = {IRT_NODE_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run(argv, in, {std::string("IRT_PASSPHRASE=") + test::kFixturePassphrase});
}

}  // namespace

TEST_CASE("a node refuses plain http to a hub that is not on loopback, before sending anything") {
  test::TempDir tmp;
  for (const std::string url : {"http://10.1.2.3:8443", "http://hub.example.org", "http://[fe80::1]:9000"}) {
    auto r = node_command({"enroll", "--data", (tmp / "node").string(), "--hub", url, "--hub-fingerprint",
                           std::string(64, 'a'), "--kdf-cost", "min"},
                          "some-token\n");
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(r.err.find("is plain http:// to a host that is not loopback; use https://") != std::string::npos,
                  r.err);
    CHECK_FALSE(std::filesystem::exists(tmp / "node"));
  }
}

TEST_CASE("irt-node serve listens beyond loopback only with --insecure-http") {
  test::TempDir tmp;
  test::NodeFixture fixture(tmp / "node");
  const auto data = (tmp / "node").string();
  const int port = test::free_port();
  auto refused = node_command({"serve", "--data", data, "--listen", "0.0.0.0:" + std::to_string(port)});
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find("clear HTTP beyond this machine; listen on 127.0.0.1, or pass --insecure-http") !=
        std::string::npos);
  test::Process served({IRT_NODE_BIN, "serve", "--data", data, "--listen", "0.0.0.0:" + std::to_string(port),
                        "--insecure-http"},
                       {std::string("IRT_PASSPHRASE=") + test::kFixturePassphrase}, tmp / "serve.log");
  CHECK_MESSAGE(test::wait_for_port(port, 15000), test::read_file(tmp / "serve.log"));
}
