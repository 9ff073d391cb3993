#include "sync/agent.h"

#include <doctest/doctest.h>

#include <future>
#include <utility>
#include <vector>

#include "sync/batch.h"
#include "tests/support/test_support.h"

using namespace irt;

namespace {

// Whether `m` is free, asked from another thread (try_lock by its owner would be undefined).
bool is_free(std::mutex& m) {
  return std::async(std::launch::async, [&m] {
           if (!m.try_lock()) return false;
           m.unlock();
           return true;
         })
      .get();
}

// The node's side: its lock, and what it saw when the agent called it.
struct Host final : sync::AgentHost {
  std::mutex mutex;
  shared::Status verdict;  // what apply() answers
  std::vector<bool> held_in_apply, held_in_rolled_back;
  std::mutex& state_mutex() override { return mutex; }
  shared::Status apply(const sync::SignedDirective&) override {
    held_in_apply.push_back(!is_free(mutex));
    return verdict;
  }
  shared::Status rolled_back() override {
    held_in_rolled_back.push_back(!is_free(mutex));
    return {};
  }
};

// A hub that serves `directives` to a pull and is unavailable for a push;
// notes for each request whether the host's lock was free while it was sent.
struct Hub final : sync::Transport {
  std::mutex& lock;
  std::vector<crypto::Bytes> directives;
  std::vector<std::pair<std::string, bool>> requests;  // path, lock free
  explicit Hub(std::mutex& m) : lock(m) {}
  shared::Result<sync::HttpResponse> post(const std::string& path, const std::string&, const std::string&,
                                          const std::map<std::string, std::string>&) override {
    requests.emplace_back(path, is_free(lock));
    if (path == sync::kPullPath) {
      auto batch = sync::encode_batch(std::exchange(directives, {}));
      return sync::HttpResponse{200, std::string(batch.begin(), batch.end()), "application/octet-stream"};
    }
    return sync::HttpResponse{503, R"({"error":{"code":"internal","message":"down"}})", "application/json"};
  }
  shared::Result<sync::HttpResponse> get(const std::string&) override { return sync::HttpResponse{404, "", ""}; }
};

struct AgentFixture {
  test::TempDir dir;
  storage::Database db = std::move(storage::Database::open(dir / "node.db").value());
  crypto::AeadKey data_key = crypto::AeadKey::generate();
  crypto::SigningKey key = crypto::SigningKey::generate();
  crypto::SigningKey hub_key = crypto::SigningKey::generate();
  sync::NodeLog log = std::move(sync::NodeLog::open(db, data_key, "101-N1").value());
  Host host;
  Hub hub{host.mutex};
  sync::SyncAgent agent{log, key, {"101-N1", {}, hub_key.public_key()}, host, hub};

  void serve_directive(std::uint64_t seq) {
    hub.directives.push_back(sync::sign_directive({.node_id = "101-N1", .seq = seq, .hlc = 1,
                                                   .issued_ms = sync::system_millis(), .type = "roster",
                                                   .payload = {'{', '}'}},
                                                  hub_key)
                                 .record);
  }
};

}  // namespace

TEST_CASE("a round holds the host's lock while it applies a directive and never while a request is on the wire") {
  AgentFixture f;
  f.serve_directive(1);
  auto round = f.agent.run_round();  // pull, apply, push the "directive.applied" event: refused
  REQUIRE_FALSE(round.ok());
  CHECK(round.error().code == shared::Errc::unavailable);
  REQUIRE(f.hub.requests.size() == 2);
  CHECK(f.hub.requests[0].first == sync::kPullPath);
  CHECK(f.hub.requests[1].first == sync::kPushPath);
  for (const auto& request : f.hub.requests) CHECK_MESSAGE(request.second, request.first << " was sent holding the lock");
  CHECK(f.host.held_in_apply == std::vector<bool>{true});
  CHECK(f.log.applied_directive_seq() == 1);
}

TEST_CASE("a directive that fails to apply is rolled back and the host restores its state before the lock is released") {
  AgentFixture f;
  f.host.verdict = shared::make_error(shared::Errc::invalid_input, "cannot apply");
  f.serve_directive(1);
  auto round = f.agent.run_round();
  REQUIRE_FALSE(round.ok());
  CHECK(round.error().message == "cannot apply");
  CHECK(f.host.held_in_rolled_back == std::vector<bool>{true});
  CHECK(f.log.applied_directive_seq() == 0);
  CHECK(f.log.last_seq() == 0);
}
