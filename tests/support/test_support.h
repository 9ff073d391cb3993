// Shared test utilities: temporary directories, files, running the real
// binaries, child processes on loopback, and the corruption helpers (flip a
// byte, truncate) that every tampering test uses.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace irt::test {

// The passphrase of every test hub's keys (docs/hub.md). Each test program
// sets IRT_HUB_PASSPHRASE to it at start (support/doctest_main.cpp), so every
// `irt-hub` it runs inherits it; tests of a missing or wrong one override it.
inline constexpr const char* kHubPassphrase = "test hub passphrase";

// A fresh directory under /tmp, removed with everything in it on destruction
// (kept when IRT_KEEP_TEST_DIRS is set, to read a failed test's hub and node logs).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

std::string read_file(const std::filesystem::path& p);
void write_file(const std::filesystem::path& p, const std::string& content);
std::string source_path(const std::string& relative);  // a file of the source tree; an absolute path as it is

// The body rows of the Markdown table in `doc` whose header line starts with
// `header`, each row's cells trimmed: how tests hold the code to a table of docs/.
std::vector<std::vector<std::string>> markdown_table(const std::string& doc, const std::string& header);

// Corruption helpers.
void flip_byte(std::string& bytes, std::size_t at, std::uint8_t mask = 0x01);
void flip_byte_in_file(const std::filesystem::path& p, std::size_t at, std::uint8_t mask = 0x01);
void truncate_file(const std::filesystem::path& p, std::size_t size);
// Flips the byte `offset` bytes after the start of `needle`, which must occur
// exactly once in the file (e.g. the nonce that opens a sealed row in a
// closed SQLite database): one byte of a stored record changed on disk.
void flip_byte_after(const std::filesystem::path& p, const std::string& needle, std::size_t offset,
                     std::uint8_t mask = 0x01);

struct CommandResult {
  int exit_code = -1;
  std::string out;  // standard output
  std::string err;  // standard error
};

// Runs a program to completion; stdin_text is written to its standard input.
CommandResult run(const std::vector<std::string>& argv, const std::string& stdin_text = "",
                  const std::vector<std::string>& extra_env = {});

// A child process that is killed (SIGKILL) on destruction unless already gone.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {},
          const std::filesystem::path& log_file = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  int pid() const { return pid_; }
  void kill_hard();       // SIGKILL and reap
  int terminate();        // SIGTERM, wait, return exit status
  bool running();

 private:
  int pid_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

// Polls until a TCP connect to 127.0.0.1:port succeeds (up to timeout_ms).
bool wait_for_port(int port, int timeout_ms = 10000);

}  // namespace irt::test
