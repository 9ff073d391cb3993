// Runs `irt-hub randlist` and `irt-hub simulate randomization` on the example studies.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "nlohmann/json.hpp"
#include "shared/block_list.h"
#include "tests/support/test_support.h"

using irt::test::run;
using irt::test::source_path;

namespace {

std::string example(const std::string& name) { return source_path("packaging/examples/" + name); }
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
const std::string kSeed(64, 'a');

}  // namespace

TEST_CASE("randlist generate writes a list that randlist verify regenerates byte for byte") {
  irt::test::TempDir dir;
  const auto list = (dir / "list.csv").string();
  auto g = run({IRT_HUB_BIN, "randlist", "generate", "--study", example("study-blocks.json"), "--seed", kSeed, "--out",
                list, "--per-stratum", "30"});
  REQUIRE(g.exit_code == 0);
  CHECK(contains(g.out, "list hash (BLAKE2b-256, irt/randlist/v1): "));
  const std::string hash = g.out.substr(g.out.find("irt/randlist/v1): ") + 18, 64);
  auto v = run({IRT_HUB_BIN, "randlist", "verify", "--study", example("study-blocks.json"), "--seed", kSeed, "--list", list});
  CHECK(v.exit_code == 0);
  CHECK(contains(v.out, "list hash regenerated:        " + hash));
  CHECK(contains(v.out, "stratum 1 (site=101;diabetes=yes) block 1 size "));
  CHECK(contains(v.out, "stratum 6 (site=201;diabetes=no) total: A="));
  // Generating again from the same seed gives the same hash.
  auto again = run({IRT_HUB_BIN, "randlist", "generate", "--study", example("study-blocks.json"), "--seed", kSeed,
                    "--out", (dir / "again.csv").string(), "--per-stratum", "30"});
  CHECK(contains(again.out, hash));
}

TEST_CASE("randlist verify exits non-zero on a changed list or another seed") {
  irt::test::TempDir dir;
  const auto list = (dir / "list.csv").string();
  REQUIRE(run({IRT_HUB_BIN, "randlist", "generate", "--study", example("study-blocks.json"), "--seed", kSeed, "--out",
               list}).exit_code == 0);
  auto other = run({IRT_HUB_BIN, "randlist", "verify", "--study", example("study-blocks.json"), "--seed",
                    std::string(64, 'b'), "--list", list});
  CHECK(other.exit_code == 1);
  CHECK(contains(other.err, "differs from the list regenerated"));
  std::string text = irt::test::read_file(list);
  auto at = text.find(",A\n");
  REQUIRE(at != std::string::npos);
  text[at + 1] = 'B';
  irt::test::write_file(list, text);
  auto changed = run({IRT_HUB_BIN, "randlist", "verify", "--study", example("study-blocks.json"), "--seed", kSeed, "--list", list});
  CHECK(changed.exit_code == 1);
  auto bad_seed = run({IRT_HUB_BIN, "randlist", "verify", "--study", example("study-blocks.json"), "--seed", "12", "--list", list});
  CHECK(bad_seed.exit_code == 2);
  CHECK(contains(bad_seed.err, "64 hex digits"));
}

TEST_CASE("a ratio change's list segment generates after the list in use and randlist verify checks it") {
  irt::test::TempDir dir;
  const auto list = (dir / "list.csv").string();
  const auto segment = (dir / "segment.csv").string();
  REQUIRE(run({IRT_HUB_BIN, "randlist", "generate", "--study", example("study-blocks.json"), "--seed", kSeed, "--out",
               list, "--per-stratum", "12"}).exit_code == 0);
  // Version 2: 1:1 -> 2:1, in blocks of 3 and 6.
  auto doc = nlohmann::json::parse(irt::test::read_file(example("study-blocks.json")));
  doc["version"] = 2;
  doc["arms"][0]["ratio"] = 2;
  doc["randomization"]["block_sizes"] = {3, 6};
  const auto v2 = (dir / "v2.json").string();
  irt::test::write_file(v2, doc.dump(2));
  auto g = run({IRT_HUB_BIN, "randlist", "generate", "--study", v2, "--seed", kSeed, "--out", segment,
                "--per-stratum", "12", "--after", list});
  REQUIRE_MESSAGE(g.exit_code == 0, g.err);
  auto rows = irt::shared::parse_list_csv(irt::test::read_file(segment));
  REQUIRE(rows.ok());
  auto before = irt::shared::parse_list_csv(irt::test::read_file(list));
  REQUIRE(before.ok());
  std::uint32_t last_in_stratum_1 = 0;
  for (const auto& r : *before)
    if (r.stratum == 1) last_in_stratum_1 = std::max(last_in_stratum_1, r.slot);
  CHECK(rows->front().stratum == 1);
  CHECK(rows->front().slot == last_in_stratum_1 + 1);  // numbers continue after the list in use
  long a = 0, b = 0;
  for (const auto& r : *rows) (r.arm == "A" ? a : b) += 1;
  CHECK(a == 2 * b);

  auto v = run({IRT_HUB_BIN, "randlist", "verify", "--study", v2, "--seed", kSeed, "--list", segment, "--after", list});
  CHECK_MESSAGE(v.exit_code == 0, v.err);
  CHECK(contains(v.out, "the segment regenerates byte for byte from the seed and study version 2"));
  // Not the list's own seed: the segment does not verify as a list of its own.
  CHECK(run({IRT_HUB_BIN, "randlist", "verify", "--study", v2, "--seed", kSeed, "--list", segment}).exit_code == 1);
  // A changed slot is found.
  std::string text = irt::test::read_file(segment);
  auto at = text.find(",B\n");
  REQUIRE(at != std::string::npos);
  text[at + 1] = 'A';
  irt::test::write_file(segment, text);
  auto changed = run({IRT_HUB_BIN, "randlist", "verify", "--study", v2, "--seed", kSeed, "--list", segment, "--after",
                      list});
  CHECK(changed.exit_code == 1);
  CHECK(contains(changed.err, "differs from the list regenerated"));
  auto missing = run({IRT_HUB_BIN, "randlist", "verify", "--study", v2, "--seed", kSeed, "--list", segment, "--after",
                      (dir / "none.csv").string()});
  CHECK(missing.exit_code == 2);
  CHECK(contains(missing.err, "(--after); check the path"));
}

TEST_CASE("randlist generate refuses a minimization study with a clear message") {
  irt::test::TempDir dir;
  auto r = run({IRT_HUB_BIN, "randlist", "generate", "--study", example("study-minimization.json"), "--seed", kSeed,
                "--out", (dir / "x.csv").string()});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "minimization assigns each participant from the running totals"));
}

TEST_CASE("simulate randomization prints the comparison metrics, offline runs and JSON") {
  auto r = run({IRT_HUB_BIN, "simulate", "randomization", "--study", example("study-blocks.json"), "--participants",
                "100", "--runs", "200", "--method", "efron:p=0.667", "--seed", kSeed});
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.out, "efron:p=0.667\n  EB "));
  CHECK(contains(r.out, "simple\n  EB "));
  auto m = run({IRT_HUB_BIN, "simulate", "randomization", "--study", example("study-minimization.json"),
                "--participants", "120", "--runs", "50", "--nodes", "4", "--sync-every", "10", "--seed", kSeed, "--json"});
  REQUIRE(m.exit_code == 0);
  auto j = nlohmann::json::parse(m.out);
  REQUIRE(j["results"].size() == 4);
  CHECK(j["results"][1]["design"] == "minimization:p=0.8 offline share-weighted (4 nodes, sync every 10)");
  CHECK(j["results"][2]["design"] == "minimization:p=0.8 offline naive (4 nodes, sync every 10)");
  CHECK(j["seed"] == kSeed);
  auto bad = run({IRT_HUB_BIN, "simulate", "randomization", "--study", example("study-blocks.json"), "--participants",
                  "10", "--runs", "1", "--method", "coin"});
  CHECK(bad.exit_code == 2);
  CHECK(contains(bad.err, "unknown method"));
}

TEST_CASE("simulate randomization --change reports each design change per run and in all, and refuses a bad change") {
  auto r = run({IRT_HUB_BIN, "simulate", "randomization", "--study", example("study-blocks.json"), "--participants",
                "300", "--runs", "10", "--nodes", "3", "--sync-every", "50", "--seed", kSeed, "--change",
                "ratio A:B 2:1 blocks 6 at 120", "--change", "close B at 210", "--json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["changes"].size() == 2);
  const auto& ratio = j["changes"][0];
  CHECK(ratio["version"] == 2);
  CHECK(ratio["segment"] == true);
  REQUIRE(ratio["runs"].size() == 10);
  // Made at 120, learned at the sync at 150 at the latest: at most 30 per run.
  CHECK(ratio["old_design"]["max"].get<int>() <= 30);
  CHECK(ratio["old_design"]["total"].get<int>() > 0);
  const auto& close = j["changes"][1];
  CHECK(close["segment"] == false);
  for (const auto& run : close["runs"]) CHECK(run["allocations"] == 90);
  CHECK(close["to_closed_arm"]["max"].get<int>() <= 40);  // made at 210, every node synced by 250
  auto text = run({IRT_HUB_BIN, "simulate", "randomization", "--study", example("study-blocks.json"), "--participants",
                   "300", "--runs", "5", "--nodes", "3", "--sync-every", "50", "--seed", kSeed, "--change",
                   "close B at 120"});
  REQUIRE(text.exit_code == 0);
  CHECK(contains(text.out, "'close B at 120' (version 2, arm closed, no segment):\n"));
  CHECK(contains(text.out, "  allocations to an arm it closed: "));
  auto bad = run({IRT_HUB_BIN, "simulate", "randomization", "--study", example("study-blocks.json"), "--participants",
                  "300", "--runs", "5", "--change", "close Z at 120"});
  CHECK(bad.exit_code == 2);
  CHECK(contains(bad.err, "--change 'close Z at 120': no arm Z"));
}
