// Subcommand dispatch and option parsing for irt-hub and irt-node.
//
// Each command declares its options; `--help` on any command prints its usage,
// an unknown or missing option is a usage error (exit 2) whose message names the
// option and points at --help. Commands nest (`irt-hub user add`).
// Thread-safety: used from main() only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "shared/result.h"

namespace irt::shared {

struct Option {
  std::string name;         // without the leading dashes: "data"
  std::string value_name;   // "DIR"; empty for a flag
  std::string help;
  bool required = false;
};

// Thrown for a command line that does not fit the command; caught by run_commands.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  const std::string& get(const std::string& name) const;  // a required option's value
  std::optional<std::string> find(const std::string& name) const;
  std::string get_or(const std::string& name, const std::string& fallback) const;
  bool flag(const std::string& name) const;
  // Every value of an option given more than once (`--kit A --kit B`), in
  // order; get() and find() answer the last.
  std::vector<std::string> all(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }
  const std::string& command_path() const { return path_; }  // "irt-hub user add"

 private:
  friend struct ArgsParser;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<std::string>> every_;
  std::vector<std::string> positional_;
  std::string path_;
};

struct Command {
  std::string name;
  std::string summary;                 // one line, shown in the parent's list
  std::vector<Option> options;
  std::string positional;              // e.g. "FILE" or "OLD NEW"; empty for none
  std::size_t min_positional = 0;
  std::size_t max_positional = 0;
  std::function<int(const Args&)> run; // run, subcommands, or both: then the command runs
  std::vector<Command> subcommands;    // when its first argument is an option (or there is none)
};

// What an exception escaping a command means to the person who ran it (a full
// disk: storage::storage_refusal), or nullopt for a bug.
using ExplainException = std::function<std::optional<Error>(const std::exception&)>;

// Runs the command named by argv[1..] and returns the process exit code.
// An exception escaping a command is printed as `explain` words it, with its
// code's exit code; any other is reported as an internal error (exit 1).
int run_commands(const Command& root, int argc, char** argv, const ExplainException& explain = {});

// A whole unsigned decimal number ("12"), or nullopt for anything else ("", "-1", "12x", too large).
std::optional<std::uint64_t> parse_u64(std::string_view text);

}  // namespace irt::shared
