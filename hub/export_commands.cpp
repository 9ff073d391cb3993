// `irt-hub export` (hub/exports.h): the participants, randomizations,
// dispensations, inventory, shipments, audit trail or deviations to a file as
// CSV, JSON or CDISC ODM. Blinded, read by --reader (export_data); the
// unblinded export is signed by --user (export_data, a role that reads
// unblinded) with --unblinded and a --reason, and audited before it is read.
// The password is the first line of standard input either way.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "crypto/bytes.h"
#include "hub/commands.h"
#include "hub/exports.h"
#include "sync/hlc.h"

namespace irt::hub {

namespace {

using shared::Args;
using shared::Command;

int usage(const Args& a, const std::string& message) {
  std::cerr << a.command_path() << ": " << message << "; see " << a.command_path() << " --help\n";
  return 2;
}

// Progress on standard error, only when it is a terminal: one line redrawn.
class TerminalProgress : public ExportProgress {
 public:
  TerminalProgress() : tty_(isatty(STDERR_FILENO) == 1) {}
  ~TerminalProgress() override {
    if (tty_ && drawn_) std::cerr << "\n";
  }
  void advanced(std::string_view step, std::size_t done, std::size_t total) override {
    if (!tty_) return;
    std::cerr << "\r\033[K" << step << ": " << done << " of " << total << std::flush;
    drawn_ = true;
  }

 private:
  bool tty_;
  bool drawn_ = false;
};

// Writes `text` to `path` whole or not at all: a temporary file beside it
// (0600: it holds clinical data), synced, then renamed over it.
shared::Status write_file(const std::filesystem::path& path, const std::string& text) {
  auto tmp = path;
  tmp += ".partial";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  auto failed = [&](const std::string& what) {
    auto message = "cannot " + what + " " + path.string() + " (" + std::strerror(errno) +
                   "); nothing was written; choose a writable --out";
    if (fd >= 0) ::close(fd);
    std::filesystem::remove(tmp);
    return shared::make_error(shared::Errc::invalid_input, message);
  };
  if (fd < 0) return failed("create");
  for (std::size_t at = 0; at < text.size();) {
    auto n = ::write(fd, text.data() + at, text.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failed("write");
    at += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return failed("sync");
  ::close(fd);
  fd = -1;
  if (::rename(tmp.c_str(), path.c_str()) != 0) return failed("rename onto");
  return {};
}

int export_cmd(const Args& a) {
  auto what = parse_export_kind(a.get("what"));
  if (!what) return usage(a, "--what must be one of " + export_kinds_text() + " (got '" + a.get("what") + "')");
  auto format = parse_export_format(a.get("format"));
  if (!format) return usage(a, "--format must be csv, json or odm (got '" + a.get("format") + "')");
  const bool unblinded = a.flag("unblinded");
  if (a.find("reader") && a.find("user")) return usage(a, "give --reader (blinded) or --user (unblinded), not both");
  if (unblinded && (!a.find("user") || !a.find("reason")))
    return usage(a, "an unblinded export is signed: give --user NAME and --reason TEXT with --unblinded");
  if (!unblinded && !a.find("reader"))
    return usage(a, a.find("user") ? "--user signs an unblinded export: add --unblinded and --reason, or read "
                                     "blinded with --reader"
                                   : "give --reader NAME (blinded export) or --user NAME --unblinded --reason TEXT");
  if (!unblinded && a.find("reason")) return usage(a, "--reason goes with --unblinded");
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  ExportRequest request{*what, *format, unblinded};
  auto now = sync::system_millis();
  if (unblinded) {
    Signature signer{a.get("user"), read_secret_line("password of hub user " + a.get("user") +
                                                     " (signature: unblinded export, performed): ")};
    auto who = authorize_unblinded_export(*hub, signer, request, a.get("reason"), now);
    crypto::secure_zero(signer.password.data(), signer.password.size());
    if (!who) return report(a, who.error());
  } else if (!command_line_user(a, *hub, "reader", shared::Permission::export_data, rc)) {
    return rc;
  }
  std::string text;
  {
    TerminalProgress progress;
    auto done = export_text(*hub, request, now, &progress);
    if (!done) return report(a, done.error());
    text = std::move(done).value();
  }
  if (auto st = write_file(a.get("out"), text); !st) return report(a, st.error());
  std::cerr << "exported " << to_string(*what) << " (" << (unblinded ? "unblinded" : "blinded") << ", "
            << to_string(*format) << ", " << text.size() << " bytes) to " << a.get("out") << "\n";
  return 0;
}

}  // namespace

std::vector<Command> export_commands() {
  return {{.name = "export",
           .summary = "Export participants, randomizations, dispensations, inventory, shipments, the audit trail or "
                      "deviations as CSV, JSON or CDISC ODM 1.3.2; blinded unless signed --unblinded",
           .options = {kData,
                       kDb,
                       kPassphraseFile,
                       {"what", export_kinds_text(), "what to export", true},
                       {"format", "csv|json|odm", "the file format (odm: participants, randomizations, dispensations)",
                        true},
                       {"out", "FILE", "the file to write (replaced whole, mode 0600)", true},
                       {"reader", "NAME",
                        "the hub user exporting blinded (export_data); the password is the first line of standard "
                        "input",
                        false},
                       {"user", "NAME",
                        "the hub user signing an unblinded export (export_data, a role that reads unblinded); the "
                        "password is the first line of standard input",
                        false},
                       {"unblinded", "", "include arms and kit types (with --user and --reason; audited)", false},
                       {"reason", "TEXT", "why the unblinded export is needed, for the audit trail", false}},
           .run = export_cmd}};
}

}  // namespace irt::hub
