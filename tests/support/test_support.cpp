#include "tests/support/test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace irt::test {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "irt-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (std::getenv("IRT_KEEP_TEST_DIRS")) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::filesystem::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + p.string());
  out << content;
}

std::string source_path(const std::string& relative) {
  if (!relative.empty() && relative.front() == '/') return relative;  // already absolute (a study written by a test)
  return std::string(IRT_SOURCE_DIR) + "/" + relative;
}

std::vector<std::vector<std::string>> markdown_table(const std::string& doc, const std::string& header) {
  auto trim = [](const std::string& s) {
    auto b = s.find_first_not_of(' ');
    return b == std::string::npos ? std::string() : s.substr(b, s.find_last_not_of(' ') - b + 1);
  };
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(doc);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside) {
      inside = line.rfind(header, 0) == 0;
      if (inside) std::getline(in, line);  // the |---| line
      continue;
    }
    if (line.empty() || line[0] != '|') break;
    std::vector<std::string> cells;
    std::istringstream cols(line.substr(1));
    std::string cell;
    while (std::getline(cols, cell, '|')) cells.push_back(trim(cell));
    rows.push_back(std::move(cells));
  }
  return rows;
}

void flip_byte(std::string& bytes, std::size_t at, std::uint8_t mask) {
  if (at >= bytes.size()) throw std::out_of_range("flip_byte past the end");
  bytes[at] = static_cast<char>(static_cast<std::uint8_t>(bytes[at]) ^ mask);
}

void flip_byte_in_file(const std::filesystem::path& p, std::size_t at, std::uint8_t mask) {
  std::string bytes = read_file(p);
  flip_byte(bytes, at, mask);
  write_file(p, bytes);
}

void flip_byte_after(const std::filesystem::path& p, const std::string& needle, std::size_t offset,
                     std::uint8_t mask) {
  auto bytes = read_file(p);
  auto at = bytes.find(needle);
  if (needle.empty() || at == std::string::npos || bytes.find(needle, at + 1) != std::string::npos)
    throw std::runtime_error("flip_byte_after: the needle does not occur exactly once in " + p.string());
  flip_byte(bytes, at + offset, mask);
  write_file(p, bytes);
}

void truncate_file(const std::filesystem::path& p, std::size_t size) {
  std::filesystem::resize_file(p, size);
}

namespace {

std::vector<char*> c_argv(const std::vector<std::string>& v) {
  std::vector<char*> out;
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

void apply_env(const std::vector<std::string>& extra_env) {
  for (const auto& kv : extra_env) {
    auto eq = kv.find('=');
    setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
  }
}

}  // namespace

CommandResult run(const std::vector<std::string>& argv, const std::string& stdin_text,
                  const std::vector<std::string>& extra_env) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe(in_pipe) || pipe(out_pipe) || pipe(err_pipe)) throw std::runtime_error("pipe failed");
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
    apply_env(extra_env);
    auto args = c_argv(argv);
    execv(args[0], args.data());
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  // Write stdin and read both outputs without deadlocking on full pipes.
  std::size_t written = 0;
  if (stdin_text.empty()) close(in_pipe[1]);
  CommandResult r;
  bool out_open = true, err_open = true, in_open = !stdin_text.empty();
  signal(SIGPIPE, SIG_IGN);
  while (out_open || err_open) {
    std::vector<pollfd> fds;
    if (out_open) fds.push_back({out_pipe[0], POLLIN, 0});
    if (err_open) fds.push_back({err_pipe[0], POLLIN, 0});
    if (in_open) fds.push_back({in_pipe[1], POLLOUT, 0});
    poll(fds.data(), fds.size(), -1);
    for (auto& f : fds) {
      if (!f.revents) continue;
      if (f.fd == in_pipe[1]) {
        ssize_t n = write(in_pipe[1], stdin_text.data() + written, stdin_text.size() - written);
        if (n > 0) written += static_cast<std::size_t>(n);
        if (n <= 0 || written == stdin_text.size()) {
          close(in_pipe[1]);
          in_open = false;
        }
        continue;
      }
      char buf[4096];
      ssize_t n = read(f.fd, buf, sizeof buf);
      std::string& dst = f.fd == out_pipe[0] ? r.out : r.err;
      if (n > 0) {
        dst.append(buf, static_cast<std::size_t>(n));
      } else {
        close(f.fd);
        (f.fd == out_pipe[0] ? out_open : err_open) = false;
      }
    }
  }
  if (in_open) close(in_pipe[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

Process::Process(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                 const std::filesystem::path& log_file) {
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = open(log_file.empty() ? "/dev/null" : log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    apply_env(extra_env);
    auto args = c_argv(argv);
    execv(args[0], args.data());
    _exit(127);
  }
}

Process::~Process() {
  if (pid_ > 0) kill_hard();
}

void Process::kill_hard() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

int Process::terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 200; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  kill_hard();
  return 137;
}

bool Process::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

bool wait_for_port(int port, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a port, not timing a test
  }
  return false;
}

}  // namespace irt::test
