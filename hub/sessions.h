// Login sessions of the hub's API (hub/api_server.h): a random 32-byte bearer
// token, of which the table hub_sessions keeps only the SHA-256, with its user,
// when it was opened and when it was last used. Being rows, sessions hold
// across every `irt-hub serve` process of one database and across restarts.
//
// A session ends when it has been unused for the study's
// session_idle_minutes (docs/study-config.md, 15 by default), a working day
// (kSessionLifetimeMs, shared/sign_in_guard.h) after its login however busy, at its
// kMaxWrongSignatures-th wrong e-signature, at logout, when
// its user is disabled or loses its role (checked at each request by the API),
// and when its user's password changes (every other session of the user:
// hub/users.h). Ending is deleting the row; an ended session never comes back.
// Tokens never reach a log, an error message or the audit trail.
// Thread-safety: as storage::Database (one thread at a time per connection).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "shared/sign_in_guard.h"
#include "shared/study.h"
#include "storage/database.h"

namespace irt::hub {

shared::Status migrate_sessions(storage::Database& db);

// How long a session may stay unused under `study`.
std::int64_t session_idle_ms(const shared::Study& study);

struct NewSession {
  std::string token;  // 64 hex characters; given to the client once, never stored
  std::string id;     // SHA-256 of the token, hex: what the table keeps
};
NewSession open_session(storage::Database& db, const std::string& user, std::int64_t now_ms);

// The SHA-256 of a token as the table keeps it.
std::string session_id(const std::string& token);

struct Session {
  std::string id;
  std::string user;
  std::int64_t created_ms = 0;
  std::int64_t last_used_ms = 0;
};

// The session of `token` with its idle timer restarted, or nullopt when it is
// unknown, has been unused for longer than `idle_ms` or has lived
// kSessionLifetimeMs (it is then ended).
std::optional<Session> touch_session(storage::Database& db, const std::string& token, std::int64_t idle_ms,
                                     std::int64_t now_ms);
void end_session(storage::Database& db, const std::string& id);
// Counts a wrong e-signature given in session `id`; true when that ended it.
bool wrong_signature(storage::Database& db, const std::string& id);
// Ends every session of `user` but the one whose id is `keep` (none when
// empty); returns how many ended. Callers inside a transaction end them with
// the change that requires it.
std::size_t end_sessions_of(storage::Database& db, const std::string& user, const std::string& keep = "");

}  // namespace irt::hub
