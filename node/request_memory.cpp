#include "node/request_memory.h"

#include <nlohmann/json.hpp>

namespace irt::node {

namespace {

const std::vector<storage::Migration> kRequestMemoryMigrations = {
    {1, R"(
      CREATE TABLE node_requests (id BLOB PRIMARY KEY, created_ms INTEGER NOT NULL, sealed BLOB NOT NULL);
      CREATE INDEX node_requests_by_age ON node_requests(created_ms);
    )"},
};

}  // namespace

bool RequestMemory::valid_key(const std::string& key) {
  if (key.empty() || key.size() > kMaxIdempotencyKeyLength) return false;
  for (char c : key)
    if (c < '!' || c > '~') return false;
  return true;
}

shared::Result<RequestMemory> RequestMemory::open(storage::Database& db, const crypto::AeadKey& data_key,
                                                  std::string node_id) {
  if (auto st = db.migrate("node_requests", kRequestMemoryMigrations); !st) return st.error();
  return RequestMemory(db, data_key, std::move(node_id));
}

crypto::Hash RequestMemory::row_id(const std::string& user, const std::string& key) const {
  // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
  auto size = static_cast<std::uint32_t>(user.size());
  std::uint8_t prefix[4] = {static_cast<std::uint8_t>(size >> 24), static_cast<std::uint8_t>(size >> 16),
                            static_cast<std::uint8_t>(size >> 8), static_cast<std::uint8_t>(size)};
  return crypto::Blake2b("irt/node/request/v1")
      .update(crypto::ByteView(prefix, 4))
      .update(crypto::as_bytes(user))
      .update(crypto::as_bytes(key))
      .finish();
}

std::string RequestMemory::ad(const crypto::Hash& id) const { return "irt/node/" + node_id_ + "/request/" + id.hex(); }

shared::Result<std::optional<RequestMemory::Remembered>> RequestMemory::find(const std::string& user,
                                                                            const std::string& key,
                                                                            std::int64_t now_ms) {
  auto id = row_id(user, key);
  auto st = db_->prepare("SELECT sealed FROM node_requests WHERE id = ? AND created_ms > ?");
  st.bind_all(storage::BlobView(id.view()), now_ms - kIdempotencyKeepMs);
  if (!st.step()) return std::optional<Remembered>();
  auto damaged = shared::make_error(shared::Errc::integrity,
                                    "the node's memory of this Idempotency-Key does not authenticate (edited or "
                                    "corrupted); nothing was changed; run 'irt-node verify' and report it");
  auto opened = crypto::aead_open(*key_, st.blob(0), crypto::as_bytes(ad(id)));
  if (!opened) return damaged;
  auto j = nlohmann::json::parse(crypto::to_string(*opened), nullptr, false);
  if (!j.is_object() || !j["route"].is_string() || !j["body_hash"].is_string() || !j["answer"].is_string())
    return damaged;
  auto body_hash = crypto::Hash::from_hex(j["body_hash"].get<std::string>());
  if (!body_hash) return damaged;
  return std::optional<Remembered>(Remembered{j["route"].get<std::string>(), *body_hash, j["answer"].get<std::string>()});
}

void RequestMemory::remember(const RequestIdentity& r, const std::string& answer, std::int64_t now_ms) {
  auto id = row_id(r.user, r.key);
  std::string plain = nlohmann::json{{"route", r.route}, {"body_hash", r.body_hash.hex()}, {"answer", answer}}.dump();
  auto sealed = crypto::aead_seal(*key_, crypto::as_bytes(plain), crypto::as_bytes(ad(id)));
  db_->prepare("DELETE FROM node_requests WHERE created_ms <= ?").bind_all(now_ms - kIdempotencyKeepMs).run();
  // Replaces a row of the same user and key that has just been forgotten.
  db_->prepare("INSERT OR REPLACE INTO node_requests(id, created_ms, sealed) VALUES(?, ?, ?)")
      .bind_all(storage::BlobView(id.view()), now_ms, sealed)
      .run();
}

}  // namespace irt::node
