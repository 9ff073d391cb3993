#include "hub/sessions.h"

#include "crypto/bytes.h"
#include "crypto/hash.h"
#include "hub/tuning.h"

namespace irt::hub {

namespace {
const std::vector<storage::Migration> kSessionsMigrations = {
    {1, R"sql(
CREATE TABLE hub_sessions (
  id TEXT PRIMARY KEY,
  user_name TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  last_used_ms INTEGER NOT NULL
);
CREATE INDEX hub_sessions_by_user ON hub_sessions(user_name);
)sql"},
    {2, "ALTER TABLE hub_sessions ADD COLUMN wrong_signatures INTEGER NOT NULL DEFAULT 0;"},
};
}  // namespace

shared::Status migrate_sessions(storage::Database& db) { return db.migrate("hub.sessions", kSessionsMigrations); }

std::int64_t session_idle_ms(const shared::Study& study) {
  return static_cast<std::int64_t>(study.session_idle_minutes) * 60 * 1000;
}

std::string session_id(const std::string& token) { return crypto::sha256(crypto::as_bytes(token)).hex(); }

NewSession open_session(storage::Database& db, const std::string& user, std::int64_t now_ms) {
  auto random = crypto::random_bytes(32);
  NewSession s{crypto::to_hex(random), ""};
  crypto::secure_zero(random.data(), random.size());
  s.id = session_id(s.token);
  db.prepare("INSERT INTO hub_sessions(id, user_name, created_ms, last_used_ms) VALUES (?, ?, ?, ?)")
      .bind_all(s.id, user, now_ms, now_ms)
      .run();
  return s;
}

std::optional<Session> touch_session(storage::Database& db, const std::string& token, std::int64_t idle_ms,
                                     std::int64_t now_ms) {
  Session s;
  s.id = session_id(token);
  {
    auto st = db.prepare("SELECT user_name, created_ms, last_used_ms FROM hub_sessions WHERE id = ?");
    st.bind(1, s.id);
    if (!st.step()) return std::nullopt;
    s.user = st.text(0);
    s.created_ms = st.int64(1);
    s.last_used_ms = st.int64(2);
  }
  if (now_ms - s.last_used_ms > idle_ms || now_ms - s.created_ms > shared::kSessionLifetimeMs) {
    end_session(db, s.id);
    return std::nullopt;
  }
  // A write per request would put every read of the API behind the
  // database's writer; a timer moved at most every kSessionTouchMs is as good.
  if (now_ms - s.last_used_ms >= kSessionTouchMs) {
    db.prepare("UPDATE hub_sessions SET last_used_ms = ? WHERE id = ? AND last_used_ms < ?")
        .bind_all(now_ms, s.id, now_ms)
        .run();
    s.last_used_ms = now_ms;
  }
  return s;
}

bool wrong_signature(storage::Database& db, const std::string& id) {
  db.prepare("UPDATE hub_sessions SET wrong_signatures = wrong_signatures + 1 WHERE id = ?").bind(1, id).run();
  auto st = db.prepare("SELECT wrong_signatures FROM hub_sessions WHERE id = ?");
  st.bind(1, id);
  if (!st.step() || st.int64(0) < shared::kMaxWrongSignatures) return false;
  end_session(db, id);
  return true;
}

void end_session(storage::Database& db, const std::string& id) {
  db.prepare("DELETE FROM hub_sessions WHERE id = ?").bind(1, id).run();
}

std::size_t end_sessions_of(storage::Database& db, const std::string& user, const std::string& keep) {
  std::size_t n = 0;
  {
    auto st = db.prepare("SELECT COUNT(*) FROM hub_sessions WHERE user_name = ? AND id <> ?");
    st.bind_all(user, keep);
    if (st.step()) n = static_cast<std::size_t>(st.int64(0));
  }
  db.prepare("DELETE FROM hub_sessions WHERE user_name = ? AND id <> ?").bind_all(user, keep).run();
  return n;
}

}  // namespace irt::hub
