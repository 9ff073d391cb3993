// irt-hub with its tables in PostgreSQL (irt-hub init --db): what init
// records, what it refuses, and the hub's commands finding the database
// again without --db. The rest of the hub's behaviour on PostgreSQL is the
// whole integration suite run again (tests/CMakeLists.txt, "integration-postgresql").
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <set>

#include "hub/hub_state.h"
#include "tests/support/postgres_database.h"
#include "tests/support/test_support.h"

using namespace irt;
using test::CommandResult;

namespace {

const std::string kStudy = "packaging/examples/study-blocks.json";

CommandResult run_hub(std::vector<std::string> args, const std::string& stdin_text = "") {
  args.insert(args.begin(), IRT_HUB_BIN);
  return test::run(args, stdin_text);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

TEST_CASE("init --db keeps the tables in PostgreSQL, records the URL 0600, and later commands find it") {
  test::PostgresDatabase pg;
  test::TempDir dir;
  auto data = (dir / "hub").string();
  auto init = run_hub({"init", "--kdf-cost", "min", "--data", data, "--study", test::source_path(kStudy), "--db", pg.url()});
  REQUIRE_MESSAGE(init.exit_code == 0, init.err);
  CHECK_FALSE(std::filesystem::exists(dir / "hub" / "hub.db"));
  CHECK(trim(test::read_file(dir / "hub" / "database.url")) == pg.url());
  struct stat st {};
  REQUIRE(::stat((dir / "hub" / "database.url").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  const std::string pw = "admin password 12\n";
  REQUIRE(run_hub({"user", "add", "--data", data, "--name", "ada", "--role", "admin"}, pw).exit_code == 0);
  CHECK(run_hub({"invite", "--data", data, "--site", "101", "--user", "ada"}, pw).exit_code == 0);
  auto verify = run_hub({"verify", "--data", data});
  CHECK_MESSAGE(verify.exit_code == 0, (verify.out + verify.err));
  auto db = pg.open();
  auto tokens = db.prepare("SELECT count(*) FROM hub_enrollment_tokens");
  REQUIRE(tokens.step());
  CHECK(tokens.int64(0) == 1);
}

TEST_CASE("init --db refuses a database that already holds tables, and leaves no data directory") {
  test::PostgresDatabase pg;
  pg.open().exec("CREATE TABLE someone_elses (x INTEGER)");
  test::TempDir dir;
  auto data = (dir / "hub").string();
  auto init = run_hub({"init", "--kdf-cost", "min", "--data", data, "--study", test::source_path(kStudy), "--db", pg.url()});
  CHECK(init.exit_code == 2);
  CHECK(init.err.find("already holds tables") != std::string::npos);
  CHECK(init.err.find("createdb") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "hub"));
}

TEST_CASE("--db that is not a postgresql:// URL is refused before anything is created") {
  test::TempDir dir;
  auto data = (dir / "hub").string();
  auto init = run_hub({"init", "--kdf-cost", "min", "--data", data, "--study", test::source_path(kStudy), "--db", "/var/lib/hub.db"});
  CHECK(init.exit_code == 2);
  CHECK(init.err.find("postgresql://") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "hub"));
}

TEST_CASE("a PostgreSQL server that cannot be reached: init fails as unavailable and the message hides the password") {
  test::TempDir dir;
  auto data = (dir / "hub").string();
  auto init = run_hub({"init", "--kdf-cost", "min", "--data", data, "--study", test::source_path(kStudy), "--db",
                   "postgresql://irt:s3cret@127.0.0.1:1/hub?connect_timeout=2"});
  CHECK(init.exit_code != 0);
  CHECK(init.err.find("cannot connect to PostgreSQL") != std::string::npos);
  CHECK(init.err.find("s3cret") == std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "hub"));
}

TEST_CASE("init --db that fails after creating tables leaves the database as it found it, and a retry works") {
  test::PostgresDatabase pg;
  // Not a table, so init takes the database as empty; but its name is one the
  // ledger, init's last step, needs for a table: init fails after every hub table was made.
  pg.open().exec("CREATE SEQUENCE ledger_checkpoints");
  test::TempDir dir;
  auto data = (dir / "hub").string();
  std::vector<std::string> init = {"init", "--kdf-cost", "min", "--data", data, "--study", test::source_path(kStudy), "--db", pg.url()};
  auto failed = run_hub(init);
  CHECK(failed.exit_code != 0);
  CHECK_MESSAGE(failed.err.find("ledger_checkpoints") != std::string::npos, failed.err);
  CHECK_FALSE(std::filesystem::exists(dir / "hub"));
  {
    auto db = pg.open();
    CHECK(db.tables().empty());
    // What init did not create, it did not drop.
    auto sequence = db.prepare("SELECT count(*) FROM information_schema.sequences WHERE sequence_name = ?");
    sequence.bind(1, "ledger_checkpoints");
    REQUIRE(sequence.step());
    CHECK(sequence.int64(0) == 1);
    db.exec("DROP SEQUENCE ledger_checkpoints");
  }
  auto retry = run_hub(init);
  REQUIRE_MESSAGE(retry.exit_code == 0, retry.err);
  auto verify = run_hub({"verify", "--data", data});
  CHECK_MESSAGE(verify.exit_code == 0, (verify.out + verify.err));
}

TEST_CASE("the hub's commands take --db: the URL init recorded is accepted, another is refused naming database.url") {
  test::PostgresDatabase pg, other;
  test::TempDir dir;
  auto data = (dir / "hub").string();
  auto init = run_hub({"init", "--kdf-cost", "min", "--data", data, "--study", test::source_path(kStudy), "--db", pg.url()});
  REQUIRE_MESSAGE(init.exit_code == 0, init.err);
  auto verify = run_hub({"verify", "--data", data, "--db", pg.url()});
  CHECK_MESSAGE(verify.exit_code == 0, (verify.out + verify.err));
  auto nodes = run_hub({"nodes", "--data", data, "--db", other.url(), "--reader", "ada"});
  CHECK(nodes.exit_code == 2);
  CHECK(nodes.err.find("is not the database this hub was initialized with") != std::string::npos);
  CHECK(nodes.err.find("database.url") != std::string::npos);
  CHECK(other.open().tables().empty());

  // A hub kept in DATA/hub.db takes no --db.
  auto sqlite_data = (dir / "sqlite-hub").string();
  REQUIRE(run_hub({"init", "--kdf-cost", "min", "--data", sqlite_data, "--study", test::source_path(kStudy)}).exit_code == 0);
  auto refused = run_hub({"verify", "--data", sqlite_data, "--db", pg.url()});
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find("keeps its tables in") != std::string::npos);
}

TEST_CASE("the migrations make the same tables, columns and schema versions on both engines") {
  // Each column's name, and whether it may hold NULL, table by table.
  using Schema = std::map<std::string, std::set<std::pair<std::string, bool>>>;
  auto schema_of = [](storage::Database& db) {
    Schema out;
    for (const auto& table : db.tables()) {
      auto st = db.prepare(db.engine() == storage::Engine::postgresql
                               ? "SELECT column_name, is_nullable = 'YES' FROM information_schema.columns "
                                 "WHERE table_schema = current_schema() AND table_name = ?"
                               : "SELECT name, \"notnull\" = 0 AND pk = 0 FROM pragma_table_info(?)");
      st.bind(1, table);
      while (st.step()) out[table].insert({st.text(0), st.int64(1) != 0});
    }
    return out;
  };
  auto versions_of = [](storage::Database& db) {
    std::map<std::string, std::int64_t> out;
    auto st = db.prepare("SELECT component, version FROM schema_version");
    while (st.step()) out[st.text(0)] = st.int64(1);
    return out;
  };
  const auto study = test::read_file(test::source_path(kStudy));
  test::TempDir dir;
  test::PostgresSchema pg;
  auto sqlite_hub = hub::HubState::create(dir / "sqlite", study, "tester", 0, test::kHubPassphrase, crypto::kTest);
  auto pg_hub = hub::HubState::create(dir / "postgresql", study, "tester", 0, test::kHubPassphrase, crypto::kTest, pg.url());
  REQUIRE_MESSAGE(sqlite_hub.ok(), sqlite_hub.error().message);
  REQUIRE_MESSAGE(pg_hub.ok(), pg_hub.error().message);
  auto& lite = (*sqlite_hub)->db();
  auto& post = (*pg_hub)->db();
  CHECK(lite.engine() == storage::Engine::sqlite);
  CHECK(post.engine() == storage::Engine::postgresql);
  const auto expected = schema_of(lite);
  CHECK(expected.size() > 20);
  CHECK(schema_of(post) == expected);
  CHECK(versions_of(post) == versions_of(lite));
}
