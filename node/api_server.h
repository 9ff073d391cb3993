// The node's local HTTP server: the JSON API under /api/v1 (docs/openapi.yaml)
// and the tablet web UI at / (web_ui.h), both from the binary, with no asset
// from outside, so they work with no network at all.
//
// cpp-httplib's server is blocking with its own worker threads; every request
// that reads or changes node state takes the NodeState's mutex(), which the
// background sync round also takes around its own use of the state, so the
// node's single SQLite connection is used by one thread at a time. Passwords
// (login, e-signatures) are checked with Argon2id before the lock is taken, so
// a burst of logins never holds other requests. Each change is committed durably before the
// answer is sent; then the sync service is poked. Errors answer 4xx with
// {"error": {"code", "message"}} and change nothing; an exception answers 500.
// Thread-safety: listen() blocks its caller; stop() may come from any thread.
#pragma once

#include <memory>
#include <string>

#include "node/node_state.h"
#include "node/sync_service.h"
#include "node/tuning.h"
#include "shared/result.h"

namespace irt::node {

class ApiServer {
 public:
  // `sync` may be null (no background sync): status then reports offline.
  // A login session ends after `session_idle_ms` without a person's request.
  ApiServer(NodeState& state, SyncService* sync, std::int64_t session_idle_ms = kSessionIdleMs);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds HOST:PORT; invalid_input when the address cannot be bound.
  shared::Status bind(const std::string& host, int port);
  // Serves until stop(); call after bind().
  void run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace irt::node
