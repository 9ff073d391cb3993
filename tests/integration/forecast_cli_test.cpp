// The real irt-hub binary's `forecast`: readers holding view_inventory, kit
// types for an unblinded reader only, the completion interval with the study's
// target, and --weeks checked.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

using namespace irt;
using nlohmann::json;

namespace {

const std::string kPassword = "forecast-password-123";
const std::string kAdmin = "admin-password-123";

test::CommandResult hub(std::vector<std::string> args, const std::string& stdin_text = "") {
  args.insert(args.begin(), IRT_HUB_BIN);
  return test::run(args, stdin_text);
}

// A hub of the blocks example with a target of 40 participants, and three
// readers: a supply manager (unblinded), a monitor (blinded) and an admin
// (no view_inventory).
struct Hub {
  test::TempDir dir;
  std::string data = (dir / "hub").string();
  Hub() {
    auto study = json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
    study["enrollment"] = {{"target_participants", 40}, {"expected_rate_per_day", 0.1}};
    const auto file = dir / "study.json";
    test::write_file(file, study.dump(2));
    auto r = hub({"init", "--kdf-cost", "min", "--data", data, "--study", file.string()});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    auto admin = hub({"user", "add", "--data", data, "--name", "ada", "--role", "admin"}, kAdmin + "\n");
    REQUIRE_MESSAGE(admin.exit_code == 0, admin.err);
    for (const auto& [name, role] : {std::pair{"sam", "supply-manager"}, {"mo", "monitor"}, {"al", "admin"}}) {
      auto u = hub({"user", "add", "--data", data, "--name", name, "--role", role, "--user", "ada"},
                   kAdmin + "\n" + kPassword + "\n");
      REQUIRE_MESSAGE(u.exit_code == 0, u.err);
    }
  }
  test::CommandResult forecast(const std::string& reader, std::vector<std::string> args) const {
    args.insert(args.begin(), "forecast");
    args.insert(args.end(), {"--data", data, "--reader", reader});
    return hub(std::move(args), kPassword + "\n");
  }
};

}  // namespace

TEST_CASE("irt-hub forecast: kits per week, completion and expiry risk, kit types for unblinded readers only") {
  Hub h;
  auto sam = h.forecast("sam", {"--weeks", "6", "--json"});
  REQUIRE_MESSAGE(sam.exit_code == 0, sam.err);
  auto j = json::parse(sam.out);
  CHECK(j["weeks"] == 6);
  CHECK(j["target_participants"] == 40);
  // Three sites not yet activated, each expected from today at 0.1 per day: 40 in about 134 days.
  REQUIRE(j["sites"].size() == 3);
  CHECK(j["sites"][0]["rate_per_day"] == 0.1);
  CHECK(j["sites"][0]["weeks"].size() == 6);
  CHECK(j["sites"][0]["weeks"][0]["per_kit_type"].contains("VLC25"));
  CHECK(j["completion"].contains("p10"));
  CHECK(j["completion"]["p10"].get<std::string>() < j["completion"]["p90"].get<std::string>());
  CHECK(j["depots"][0]["depot"] == "EU-01");
  CHECK(j["depots"][0]["stock"]["kits"].get<int>() > 0);

  auto mo = h.forecast("mo", {"--weeks", "6", "--json"});
  REQUIRE_MESSAGE(mo.exit_code == 0, mo.err);
  for (const auto& word : {"VLC25", "PBO", "per_kit_type"}) CHECK(mo.out.find(word) == std::string::npos);
  CHECK(json::parse(mo.out)["completion"] == j["completion"]);  // the same fixed seed, the same day
  auto text = h.forecast("mo", {"--weeks", "2"});
  REQUIRE_MESSAGE(text.exit_code == 0, text.err);
  CHECK(text.out.find("enrollment completion: expected") != std::string::npos);
  CHECK(text.out.find("site 101") != std::string::npos);
  for (const auto& word : {"VLC25", "PBO"}) CHECK(text.out.find(word) == std::string::npos);
  auto sam_text = h.forecast("sam", {"--weeks", "2"});
  CHECK(sam_text.out.find("VLC25") != std::string::npos);

  auto al = h.forecast("al", {"--weeks", "6"});
  CHECK(al.exit_code == 1);
  CHECK(al.err.find("view_inventory") != std::string::npos);
  auto zero = h.forecast("sam", {"--weeks", "0"});
  CHECK(zero.exit_code == 2);
  CHECK(zero.err.find("--weeks must be a whole number from 1 to 104") != std::string::npos);
}
