#include "shared/command_line.h"

#include <charconv>
#include <iostream>

namespace irt::shared {

const std::string& Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end())
    throw UsageError("missing --" + name + "; see '" + path_ + " --help'");
  return it->second;
}

std::optional<std::string> Args::find(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::get_or(const std::string& name, const std::string& fallback) const {
  auto v = find(name);
  return v ? *v : fallback;
}

bool Args::flag(const std::string& name) const { return values_.count(name) != 0; }

std::vector<std::string> Args::all(const std::string& name) const {
  auto it = every_.find(name);
  return it == every_.end() ? std::vector<std::string>{} : it->second;
}

namespace {

void print_usage(const Command& cmd, const std::string& path, std::ostream& out) {
  out << "Usage: " << path;
  if (!cmd.subcommands.empty()) out << " COMMAND [OPTIONS]";
  for (const auto& o : cmd.options) {
    std::string part = "--" + o.name + (o.value_name.empty() ? "" : " " + o.value_name);
    out << ' ' << (o.required ? part : "[" + part + "]");
  }
  if (!cmd.positional.empty()) out << ' ' << cmd.positional;
  out << "\n\n" << cmd.summary << "\n";
  if (!cmd.subcommands.empty()) {
    out << "\nCommands:\n";
    for (const auto& sub : cmd.subcommands) {
      out << "  " << sub.name << std::string(sub.name.size() < 18 ? 18 - sub.name.size() : 1, ' ')
          << sub.summary << "\n";
    }
    out << "\nRun '" << path << " COMMAND --help' for a command's options.\n";
  }
  if (!cmd.options.empty()) {
    out << "\nOptions:\n";
    for (const auto& o : cmd.options) {
      std::string part = "--" + o.name + (o.value_name.empty() ? "" : " " + o.value_name);
      out << "  " << part << std::string(part.size() < 26 ? 26 - part.size() : 1, ' ') << o.help
          << (o.required ? " (required)" : "") << "\n";
    }
  }
  out << "  --help" << std::string(20, ' ') << "show this help\n";
}

}  // namespace

struct ArgsParser {
  static Args parse(const Command& cmd, const std::string& path, std::span<char*> argv) {
    Args args;
    args.path_ = path;
    for (std::size_t i = 0; i < argv.size(); ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) == 0 && a.size() > 2) {
        std::string name = a.substr(2);
        std::optional<std::string> inline_value;
        if (auto eq = name.find('='); eq != std::string::npos) {
          inline_value = name.substr(eq + 1);
          name = name.substr(0, eq);
        }
        const Option* opt = nullptr;
        for (const auto& o : cmd.options)
          if (o.name == name) opt = &o;
        if (!opt) throw UsageError("unknown option --" + name + "; see '" + path + " --help'");
        if (opt->value_name.empty()) {
          args.values_[name] = "";
        } else if (inline_value) {
          args.values_[name] = *inline_value;
          args.every_[name].push_back(*inline_value);
        } else {
          if (i + 1 >= argv.size())
            throw UsageError("--" + name + " needs a value (" + opt->value_name + ")");
          args.values_[name] = argv[++i];
          args.every_[name].push_back(argv[i]);
        }
      } else {
        args.positional_.push_back(a);
      }
    }
    for (const auto& o : cmd.options)
      if (o.required && !args.values_.count(o.name))
        throw UsageError("missing --" + o.name + " " + o.value_name + "; see '" + path + " --help'");
    if (args.positional_.size() < cmd.min_positional || args.positional_.size() > cmd.max_positional)
      throw UsageError(cmd.positional.empty()
                           ? "unexpected argument '" + args.positional_.front() + "'; see '" + path + " --help'"
                           : "expected " + cmd.positional + "; see '" + path + " --help'");
    return args;
  }
};

int run_commands(const Command& root, int argc, char** argv, const ExplainException& explain) {
  std::span<char*> rest(argv + 1, static_cast<std::size_t>(argc > 0 ? argc - 1 : 0));
  const Command* cmd = &root;
  std::string path = root.name;
  if (rest.size() == 1 && std::string(rest[0]) == "--version") {
    std::cout << root.name << " " << IRT_VERSION << "\n";
    return 0;
  }
  try {
    while (!cmd->subcommands.empty()) {
      // A command that runs itself as well takes options where a subcommand's name would be.
      if (cmd->run && (rest.empty() || (rest[0][0] == '-' && std::string(rest[0]) != "--help" &&
                                         std::string(rest[0]) != "-h")))
        break;
      if (rest.empty() || std::string(rest[0]) == "--help" || std::string(rest[0]) == "-h") {
        print_usage(*cmd, path, std::cout);
        if (cmd == &root) std::cout << "\n'" << path << " --version' shows the version.\n";
        return rest.empty() ? 2 : 0;
      }
      std::string name = rest[0];
      const Command* next = nullptr;
      for (const auto& sub : cmd->subcommands)
        if (sub.name == name) next = &sub;
      if (!next) throw UsageError("unknown command '" + name + "'; see '" + path + " --help'");
      cmd = next;
      path += " " + name;
      rest = rest.subspan(1);
    }
    for (char* a : rest) {
      std::string s = a;
      if (s == "--help" || s == "-h") {
        print_usage(*cmd, path, std::cout);
        return 0;
      }
    }
    Args args = ArgsParser::parse(*cmd, path, rest);
    return cmd->run(args);
  } catch (const UsageError& e) {
    std::cerr << path << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    if (auto error = explain ? explain(e) : std::nullopt) {
      std::cerr << path << ": " << error->message << "\n";
      return exit_code(error->code);
    }
    std::cerr << path << ": internal error: " << e.what()
              << "\nNothing acknowledged was lost; report this with the command line that caused it.\n";
    return 1;
  }
}

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace irt::shared
