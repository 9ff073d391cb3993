// Runs the real irt-hub binary on the example studies and on broken copies.
#include <doctest/doctest.h>

#include <string>

#include "tests/support/test_support.h"

using irt::test::run;
using irt::test::source_path;

namespace {

std::string example(const std::string& name) { return source_path("packaging/examples/" + name); }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("check-study accepts each example and prints its summary") {
  for (const char* name : {"study-blocks.json", "study-blocks-v2.json", "study-minimization.json"}) {
    CAPTURE(name);
    auto r = run({IRT_HUB_BIN, "check-study", example(name)});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(contains(r.out, "valid"));
  }
  auto r = run({IRT_HUB_BIN, "check-study", example("study-minimization.json")});
  CHECK(contains(r.out, "study NRV-210 version 1"));
  CHECK(contains(r.out, "ratio 2:1:1"));
  CHECK(contains(r.out, "minimization over site x1, age_group x1, hoehn_yahr x2"));
  CHECK(contains(r.out, "sites: 4 (4 active, 1 with nurse tablets) in 2 countries; depots: 2"));
}

TEST_CASE("check-study on an invalid file prints every problem on stderr and exits 2") {
  irt::test::TempDir dir;
  std::string text = irt::test::read_file(example("study-blocks.json"));
  auto replace = [&](const std::string& from, const std::string& to) {
    auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
  };
  replace("\"ratio\": 1 }", "\"ratio\": 0 }");
  replace("\"trigger_level\": 3", "\"trigger_level\": 30");
  auto file = dir / "broken.json";
  irt::test::write_file(file, text);
  auto r = run({IRT_HUB_BIN, "check-study", file.string()});
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  CHECK(contains(r.err, file.string() + ": arms[0].ratio: must be a positive integer (got 0)"));
  CHECK(contains(r.err, file.string() + ": supply.trigger_level: must be below max_level"));
  CHECK(contains(r.err, "2 problems"));
}

TEST_CASE("check-study on a missing file names the path and exits 2") {
  irt::test::TempDir dir;
  auto missing = (dir / "nope.json").string();
  auto r = run({IRT_HUB_BIN, "check-study", missing});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, missing + ": no such file"));
}

TEST_CASE("diff-study lists the amendment's changes") {
  auto r = run({IRT_HUB_BIN, "diff-study", example("study-blocks.json"), example("study-blocks-v2.json")});
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(r.out ==
        "version: 1 -> 2\n"
        "sites: added 103 (Hôpital Nord, Marseille, FR)\n"
        "visits[V3].window_after: 3 -> 5\n");
}

TEST_CASE("diff-study warns when the new version is not greater") {
  auto r = run({IRT_HUB_BIN, "diff-study", example("study-blocks-v2.json"), example("study-blocks.json")});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.err, "warning:"));
  CHECK(contains(r.err, "not greater than 2"));
  CHECK(contains(r.out, "version: 2 -> 1"));
}

TEST_CASE("diff-study with an invalid file prints its problems and exits 2") {
  irt::test::TempDir dir;
  auto file = dir / "bad.json";
  irt::test::write_file(file, "{ \"id\": ");
  auto r = run({IRT_HUB_BIN, "diff-study", example("study-blocks.json"), file.string()});
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  CHECK(contains(r.err, file.string() + ": document: invalid JSON at line 1"));
}

TEST_CASE("the study commands have --help") {
  for (const char* cmd : {"check-study", "diff-study"}) {
    CAPTURE(cmd);
    auto r = run({IRT_HUB_BIN, cmd, "--help"});
    CHECK(r.exit_code == 0);
    CHECK(contains(r.out, std::string("Usage: irt-hub ") + cmd));
  }
}
