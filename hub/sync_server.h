// The hub's HTTP server for the /sync/v1 protocol (sync/protocol.h,
// docs/sync-protocol.md): enroll, push, pull, checkpoint, proof, and /healthz.
//
// HTTPS with the hub's self-signed certificate (nodes pin its fingerprint), or
// plain HTTP, which the caller allows only on a loopback address. cpp-httplib
// runs handlers on its own thread pool; every handler takes one mutex around
// the HubState (one database connection), and a push is answered only after
// its transaction committed. Signature checks inside a push run in parallel
// on the ledger's VerifyPool.
//
// Stateless between requests: several `irt-hub serve` processes on one
// PostgreSQL database serve at once behind any load balancer. What a request
// needs from earlier ones is in the database (nodes, outboxes, pushes in
// progress: hub/push_order.h), and writers are serialized by the database's
// writer lock (storage::Transaction), not by the mutex, so a node may push to
// one process and pull from another (docs/architecture.md, hub).
//
// Every refusal is JSON {"error":{"code","message",...}} with the status of its
// wire_error code; an unexpected exception is logged to stderr and answered
// 500 "internal" without detail, and acknowledges nothing.
// Only this file's .cpp includes httplib.h (slow to compile).
#pragma once

#include <memory>
#include <string>

#include "hub/hub_state.h"
#include "shared/result.h"

namespace httplib {
class Server;
}

namespace irt::hub {

class SyncServer {
 public:
  // tls: serve HTTPS with DATA/tls/hub.key and hub.crt.
  SyncServer(HubState& hub, bool tls);
  ~SyncServer();
  SyncServer(const SyncServer&) = delete;
  SyncServer& operator=(const SyncServer&) = delete;

  shared::Status bind(const std::string& host, int port);
  void run();   // serves until stop(); call after bind()
  void stop();  // from any thread
  // The listener itself, for the hub's API to mount its routes on before run()
  // (hub/api_server.h); a path neither serves is refused by the sync protocol's rules.
  httplib::Server& http();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(const std::string& host);

}  // namespace irt::hub
