#include "tests/support/cluster.h"

#include "hub/hub_state.h"
#include "tests/support/postgres_database.h"

#include <regex>
#include <stdexcept>

namespace irt::test {

namespace {
std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}
std::string describe(const CommandResult& r) { return "exit " + std::to_string(r.exit_code) + ": " + r.out + r.err; }
}  // namespace

HubProcess::HubProcess(const std::string& study, bool tls) : tls_(tls), port_(free_port()) {
  std::vector<std::string> init = {"init", "--kdf-cost", "min", "--study",
                                   std::filesystem::path(study).is_absolute() ? study : source_path(study)};
  if (const char* engine = std::getenv("IRT_TEST_HUB_ENGINE"); engine && std::string(engine) == "postgresql") {
    pg_ = std::make_unique<PostgresDatabase>();
    init.insert(init.end(), {"--db", pg_->url()});
  }
  auto r = cli(init);
  if (r.exit_code != 0) throw std::runtime_error("irt-hub init failed, " + describe(r));
  auto admin = cli({"user", "add", "--name", kHubAdmin, "--role", "admin"}, std::string(kHubAdminPassword) + "\n");
  if (admin.exit_code != 0) throw std::runtime_error("adding the hub's first user failed, " + describe(admin));
  auto fp = cli({"fingerprint"});
  if (fp.exit_code != 0) throw std::runtime_error("irt-hub fingerprint failed, " + describe(fp));
  fingerprint_ = trim(fp.out);
  start();
}

HubProcess::~HubProcess() { stop(); }

storage::Database open_hub_tables(const std::filesystem::path& data) {
  auto db = hub::HubState::open_database(data, kHubPassphrase);
  if (!db) throw std::runtime_error("cannot open the hub's database: " + db.error().message);
  return std::move(db).value();
}

storage::Database HubProcess::database() const { return open_hub_tables(data()); }

void HubProcess::start(const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {IRT_HUB_BIN, "serve", "--data", data().string(), "--listen",
                                   "127.0.0.1:" + std::to_string(port_)};
  if (!tls_) argv.push_back("--http");
  argv.insert(argv.end(), extra.begin(), extra.end());
  process_ = std::make_unique<Process>(argv, std::vector<std::string>{}, log_file());
  if (!wait_for_port(port_, 15000)) throw std::runtime_error("irt-hub serve did not start; see " + log_file().string());
}

void HubProcess::stop() {
  if (process_) process_->terminate();
  process_.reset();
}

void HubProcess::kill_hard() {
  if (process_) process_->kill_hard();
  process_.reset();
}

bool HubProcess::running() { return process_ && process_->running(); }

int HubProcess::pid() const { return process_ ? process_->pid() : -1; }

std::string HubProcess::url() const {
  return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
}

HubPeer::HubPeer(const HubProcess& hub) : data_(hub.data()), port_(free_port()) { start(); }

HubPeer::~HubPeer() { stop(); }

void HubPeer::start() {
  process_ = std::make_unique<Process>(std::vector<std::string>{IRT_HUB_BIN, "serve", "--data", data_.string(),
                                                                "--listen", "127.0.0.1:" + std::to_string(port_),
                                                                "--http"},
                                       std::vector<std::string>{}, log_file());
  if (!wait_for_port(port_, 15000)) throw std::runtime_error("irt-hub serve did not start; see " + log_file().string());
}

void HubPeer::stop() {
  if (process_) process_->terminate();
  process_.reset();
}

void HubPeer::kill_hard() {
  if (process_) process_->kill_hard();
  process_.reset();
}

bool HubPeer::running() { return process_ && process_->running(); }

std::string HubPeer::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

CommandResult HubProcess::cli(std::vector<std::string> args, const std::string& stdin_text) {
  std::vector<std::string> argv = {IRT_HUB_BIN};
  argv.push_back(args.at(0));
  std::size_t first_option = 1;
  // A second word that is not an option names a subcommand ("user add", "lease shorten", "kit history").
  if (args.size() > 1 && !args[1].empty() && args[1][0] != '-') {
    argv.push_back(args.at(1));
    first_option = 2;
  }
  argv.push_back("--data");
  argv.push_back(data().string());
  argv.insert(argv.end(), args.begin() + static_cast<std::ptrdiff_t>(first_option), args.end());
  return run(argv, stdin_text);
}

CommandResult HubProcess::read_as_admin(std::vector<std::string> args) {
  args.insert(args.end(), {"--reader", kHubAdmin});
  return cli(std::move(args), std::string(kHubAdminPassword) + "\n");
}

std::string HubProcess::invite(const std::string& site, const std::string& kind) {
  auto r = cli({"invite", "--site", site, "--kind", kind, "--user", kHubAdmin}, std::string(kHubAdminPassword) + "\n");
  if (r.exit_code != 0) throw std::runtime_error("irt-hub invite failed, " + describe(r));
  static const std::regex token(R"(\b([A-Za-z0-9]{26,})\b)");
  std::smatch m;
  if (!std::regex_search(r.out, m, token)) throw std::runtime_error("no token in: " + r.out);
  return m[1];
}

void HubProcess::add_user(const std::string& name, const std::string& role, const std::string& sites,
                          const std::string& password) {
  auto r = cli({"user", "add", "--user", kHubAdmin, "--name", name, "--role", role, "--sites", sites},
               std::string(kHubAdminPassword) + "\n" + password + "\n");
  if (r.exit_code != 0) throw std::runtime_error("irt-hub user add failed, " + describe(r));
}

NodeDir::NodeDir(HubProcess& hub, const std::string& site, const std::string& hub_url, const std::string& kind) {
  std::string token = hub.invite(site, kind);
  enrolled_ = cli({"enroll", "--hub", hub_url.empty() ? hub.url() : hub_url, "--hub-fingerprint", hub.fingerprint(),
                   "--kdf-cost", "min"},
                  token + "\n");
  if (enrolled_.exit_code != 0) throw std::runtime_error("irt-node enroll failed, " + describe(enrolled_));
}

CommandResult NodeDir::cli(std::vector<std::string> args, const std::string& stdin_text) {
  std::vector<std::string> argv = {IRT_NODE_BIN, args.at(0), "--data", data().string()};
  argv.insert(argv.end(), args.begin() + 1, args.end());
  return run(argv, stdin_text, {std::string("IRT_PASSPHRASE=") + kNodePassphrase});
}

CommandResult NodeDir::note(const std::string& user, const std::string& password, const std::string& text) {
  return cli({"note", "--user", user, "--text", text}, password + "\n");
}

}  // namespace irt::test
