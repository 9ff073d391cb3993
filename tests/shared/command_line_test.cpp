#include "shared/command_line.h"

#include <doctest/doctest.h>

#include <vector>

using irt::shared::Args;
using irt::shared::Command;

namespace {

int run(const Command& root, std::vector<std::string> words) {
  std::vector<char*> argv;
  std::string prog = root.name;
  argv.push_back(prog.data());
  for (auto& w : words) argv.push_back(w.data());
  return irt::shared::run_commands(root, static_cast<int>(argv.size()), argv.data());
}

Command sample(std::string* seen) {
  Command leaf{.name = "add", .summary = "add a thing",
               .options = {{"data", "DIR", "data directory", true}, {"force", "", "overwrite", false}},
               .run = [seen](const Args& a) {
                 *seen = a.get("data") + (a.flag("force") ? "+force" : "");
                 return 0;
               }};
  Command group{.name = "user", .summary = "users", .subcommands = {leaf}};
  return Command{.name = "tool", .summary = "a tool", .subcommands = {group}};
}

}  // namespace

TEST_CASE("a nested command receives its options") {
  std::string seen;
  CHECK(run(sample(&seen), {"user", "add", "--data", "/x", "--force"}) == 0);
  CHECK(seen == "/x+force");
  CHECK(run(sample(&seen), {"user", "add", "--data=/y"}) == 0);
  CHECK(seen == "/y");
}

TEST_CASE("a missing required option is a usage error with exit 2") {
  std::string seen;
  CHECK(run(sample(&seen), {"user", "add"}) == 2);
  CHECK(seen.empty());
}

TEST_CASE("an unknown option or command is a usage error with exit 2") {
  std::string seen;
  CHECK(run(sample(&seen), {"user", "add", "--data", "/x", "--bogus"}) == 2);
  CHECK(run(sample(&seen), {"user", "remove"}) == 2);
  CHECK(seen.empty());
}

TEST_CASE("--help on any command exits 0 without running it") {
  std::string seen;
  CHECK(run(sample(&seen), {"--help"}) == 0);
  CHECK(run(sample(&seen), {"user", "--help"}) == 0);
  CHECK(run(sample(&seen), {"user", "add", "--help"}) == 0);
  CHECK(seen.empty());
}

TEST_CASE("an option given several times keeps every value in order, the last for get") {
  std::vector<std::string> kits;
  std::string last;
  Command cmd{.name = "release", .summary = "release kits",
              .options = {{"kit", "K", "a kit", true}},
              .run = [&](const Args& a) {
                kits = a.all("kit");
                last = a.get("kit");
                return 0;
              }};
  Command root{.name = "tool", .summary = "a tool", .subcommands = {cmd}};
  CHECK(run(root, {"release", "--kit", "100001", "--kit=100002", "--kit", "100003"}) == 0);
  CHECK(kits == std::vector<std::string>{"100001", "100002", "100003"});
  CHECK(last == "100003");
}
