#include "sync/agent.h"

#include <deque>
#include <future>
#include <nlohmann/json.hpp>
#include <vector>

#include "sync/batch.h"
#include "sync/checkpoint.h"
#include "sync/merkle.h"
#include "sync/refusal.h"

namespace irt::sync {

namespace {

std::string as_string(const Bytes& b) { return crypto::to_string(b); }

shared::Status check_receipt(const Receipt& r, const Bytes& record, const crypto::PublicKey& hub_key) {
  auto cp = open_checkpoint(r.checkpoint, kCheckpointKeyName, hub_key);
  if (!cp)
    return shared::make_error(shared::Errc::integrity,
                              "the hub's checkpoint is not signed by the hub key pinned at enrollment; "
                              "events stay unacknowledged; report this to the central team");
  if (cp->size != r.tree_size ||
      !verify_inclusion(merkle_leaf_hash(record), r.leaf_index, r.tree_size, r.proof, cp->root))
    return shared::make_error(shared::Errc::integrity,
                              "the hub's receipt for event " + std::to_string(r.seq) +
                                  " does not prove it is in the ledger; events stay unacknowledged; "
                                  "report this to the central team");
  return {};
}

}  // namespace

shared::Error refusal_error(const HttpResponse& r) {
  auto body = nlohmann::json::parse(r.body, nullptr, false);
  std::string code;
  if (body.is_object() && body["error"].is_object() && body["error"]["code"].is_string())
    code = body["error"]["code"].get<std::string>();
  return shared::make_error(refusal_family(code, r.status), "the hub refused: " + describe_refusal(r));
}

std::string SyncRefusal::text() const {
  return "sync refused by the hub: " + message + " [" + code + ", HTTP " + std::to_string(http_status) + "]; " +
         refusal_advice(code);
}

std::string sync_refusal_to_json(const SyncRefusal& r) {
  return nlohmann::json{{"code", r.code}, {"http_status", r.http_status}, {"message", r.message}, {"at_ms", r.at_ms}}
      .dump();
}

shared::Result<SyncRefusal> sync_refusal_from_json(const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  auto field = [&j](const char* key) { return j.is_object() ? j.value(key, nlohmann::json()) : nlohmann::json(); };
  if (!field("code").is_string() || !field("message").is_string() || !field("http_status").is_number_integer() ||
      !field("at_ms").is_number_integer())
    return shared::make_error(shared::Errc::invalid_input, "malformed sync refusal: needs code and message (strings), "
                                                           "http_status and at_ms (integers)");
  return SyncRefusal{j["code"].get<std::string>(), j["http_status"].get<int>(), j["message"].get<std::string>(),
                     j["at_ms"].get<std::int64_t>()};
}

shared::Error SyncAgent::refused(const HttpResponse& r) {
  std::string code, message;
  try {
    auto body = nlohmann::json::parse(r.body);
    const auto& e = body.at("error");
    code = e.value("code", "");
    message = e.value("message", "");
  } catch (const std::exception&) {
  }
  clock_refused_ = code == wire_error::kClockSkew;
  if (!retry_can_fix(code, r.status)) {
    refusal_ = SyncRefusal{code, r.status, message.empty() ? describe_refusal(r) : message, system_millis()};
    return shared::make_error(refusal_error(r).code, refusal_->text());
  }
  return refusal_error(r);
}

// Up to two batches are in flight, one per transport, so the hub checks the
// signatures of the next batch while it commits the previous one. Answers are
// taken in order; the cursor moves only on an acknowledgement whose receipt
// proves the acknowledged event is in the ledger. The log is read and its
// cursor moved under the host's lock; requests and receipt checks run without.
shared::Status SyncAgent::push(RoundReport& report) {
  struct InFlight {
    std::uint64_t first = 0;
    std::size_t count = 0;
    Transport* via = nullptr;
    std::future<shared::Result<HttpResponse>> answer;
  };
  // Each batch is signed with the node key and the node's clock (a push
  // proves possession of the key, as a pull does).
  auto signed_headers = [this](const std::string& body) {
    const auto now = hub_now();
    auto sig = key_.sign(crypto::as_bytes(request_signing_text(kPushDomain, now, body)));
    return std::map<std::string, std::string>{{kCertificateHeader, crypto::to_base64(id_.certificate)},
                                              {kTimeHeader, std::to_string(now)},
                                              {kSignatureHeader, crypto::to_base64(sig.view())}};
  };
  std::vector<Transport*> idle = {&transport_};
  if (second_) idle.push_back(second_);
  // No request outlives this call: a std::async future waits for its task
  // when destroyed, so on every return (and on clear()) the answers still due
  // are awaited, unread; what they acknowledged is acknowledged again at the
  // next push. Declared after what the requests use, and before any lock, so
  // that lock is released before the answers are awaited.
  std::deque<InFlight> flight;
  std::uint64_t next = 0;  // the first seq not yet sent
  {
    auto lock = hold();
    next = log_.acked_seq() + 1;
  }
  for (int guard = 0; guard < 100000; ++guard) {
    while (!idle.empty()) {
      std::vector<Bytes> records;
      {
        auto lock = hold();
        records = log_.records_after(next - 1, limits_.batch_events, limits_.batch_bytes);
      }
      if (records.empty()) break;
      InFlight f{next, records.size(), idle.back(), {}};
      idle.pop_back();
      auto body = as_string(encode_batch(records));
      auto headers = signed_headers(body);
      f.answer = std::async(std::launch::async, [via = f.via, headers = std::move(headers), body = std::move(body)] {
        return via->post(kPushPath, "application/octet-stream", body, headers);
      });
      next += records.size();
      flight.push_back(std::move(f));
    }
    if (flight.empty()) {
      auto lock = hold();
      if (next > log_.last_seq()) return {};
      auto unreadable = log_.record(next);  // records_after stopped at a row that does not authenticate
      return unreadable ? shared::Status{} : shared::Status(unreadable.error());
    }
    InFlight f = std::move(flight.front());
    flight.pop_front();
    auto response = f.answer.get();
    idle.push_back(f.via);
    if (!response) return response.error();
    learn_hub_clock(*response);
    if (response->status == 409) {
      // A gap: the hub expects another sequence (its acknowledgement was lost,
      // it was restored from a backup, or this batch overtook the one before
      // it and that one failed). Resend from where it says.
      std::uint64_t expected = 0;
      try {
        expected = nlohmann::json::parse(response->body).at("error").at("expected_seq").get<std::uint64_t>();
      } catch (const std::exception&) {
      }
      flight.clear();
      std::uint64_t last = 0, acked = 0;
      {
        auto lock = hold();
        last = log_.last_seq();
        acked = log_.acked_seq();
      }
      if (expected == 0 || expected == f.first || expected > last + 1) return refused(*response);
      if (expected <= acked && (report.resent_from == 0 || expected < report.resent_from)) {
        report.resent_from = expected;
        report.acked_before_resend = acked;
      }
      next = expected;
      continue;
    }
    if (response->status != 200) return refused(*response);
    auto malformed = [](const std::string& what) {
      return shared::make_error(shared::Errc::unavailable, "the hub's acknowledgement was malformed (" + what +
                                                               "); events stay unacknowledged and will be resent");
    };
    auto j = nlohmann::json::parse(response->body, nullptr, false);
    if (!j.is_object() || !j.contains("acked_seq") || !j["acked_seq"].is_number_unsigned())
      return malformed("acked_seq: must be an unsigned integer");
    if (!j.contains("receipt")) return malformed("receipt: missing");
    auto parsed = receipt_from_json(j["receipt"].dump());
    if (!parsed) return malformed(parsed.error().message);
    std::uint64_t acked = j["acked_seq"].get<std::uint64_t>();
    if (auto already = j.value("already_recorded", nlohmann::json()); already.is_number_unsigned())
      report.already_recorded += already.get<std::uint64_t>();
    const Receipt& receipt = *parsed;
    // Sent events never change, so the record read here is still the one
    // acknowledged when the lock is taken again to move the cursor.
    shared::Result<Bytes> acked_record = Bytes{};
    {
      auto lock = hold();
      if (acked < f.first || acked > log_.last_seq() || receipt.seq != acked || receipt.node_id != id_.node_id)
        return shared::make_error(shared::Errc::integrity, "the hub acknowledged sequence " + std::to_string(acked) +
                                                               ", which this node did not send; report this");
      acked_record = log_.record(acked);
    }
    if (!acked_record) return acked_record.error();
    if (auto st = check_receipt(receipt, *acked_record, id_.hub_key); !st) return st;
    {
      // Losing this cursor in a power cut only makes the node resend what the
      // hub already holds, which it acknowledges again: no fsync needed.
      auto lock = hold();
      storage::Transaction tx(log_.database(), storage::Durability::deferred);
      if (acked > log_.acked_seq()) log_.set_acked(acked, receipt);
      tx.commit();
    }
    report.events_sent += f.count;
    report.acked_seq = std::max(report.acked_seq, acked);
  }
  return {};
}

// One directive, under the host's lock: applied exactly once with its cursor,
// or rolled back with the host's state restored before the lock is released.
shared::Status SyncAgent::apply(const SignedDirective& d, RoundReport& report) {
  auto lock = hold();
  std::uint64_t before = log_.applied_directive_seq();
  shared::Status st;
  try {
    st = log_.apply_directive(d, key_, [this](const SignedDirective& x) { return host_.apply(x); });
  } catch (...) {
    (void)host_.rolled_back();
    throw;
  }
  if (!st) {
    if (auto restored = host_.rolled_back(); !restored) return restored;
    return st;
  }
  if (log_.applied_directive_seq() > before) ++report.directives_applied;
  return {};
}

shared::Status SyncAgent::pull(RoundReport& report) {
  for (;;) {
    std::uint64_t after = 0;
    {
      auto lock = hold();
      after = log_.applied_directive_seq();
    }
    nlohmann::json req = {{"node_id", id_.node_id},
                          {"after", after},
                          {"time_ms", hub_now()},
                          {"clock_ms", system_millis()},
                          {"limit", limits_.pull_limit}};
    std::string body = req.dump();
    std::string signed_bytes = std::string(kPullDomain) + body;
    auto sig = key_.sign(crypto::as_bytes(signed_bytes));
    std::map<std::string, std::string> headers = {{kCertificateHeader, crypto::to_base64(id_.certificate)},
                                                  {kSignatureHeader, crypto::to_base64(sig.view())}};
    auto response = transport_.post(kPullPath, "application/json", body, headers);
    if (!response) return response.error();
    learn_hub_clock(*response);
    if (response->status != 200) return refused(*response);
    auto records = decode_batch(crypto::as_bytes(response->body));
    if (!records)
      return shared::make_error(shared::Errc::unavailable,
                                "the hub's directives arrived damaged (" + records.error().message + "); retrying later");
    for (const auto& rec : *records) {
      auto d = parse_directive(rec);
      if (!d) return shared::make_error(shared::Errc::integrity, "a hub directive is malformed: " + d.error().message);
      if (!verify_directive(*d, id_.hub_key))
        return shared::make_error(shared::Errc::integrity,
                                  "hub directive " + std::to_string(d->body.seq) +
                                      " is not signed by the hub key pinned at enrollment; it was not applied");
      if (auto st = apply(*d, report); !st) return st;
    }
    if (records->size() < limits_.pull_limit) return {};
  }
}

std::int64_t SyncAgent::hub_now() {
  auto lock = hold();
  return system_millis() + log_.hub_clock_offset_ms();
}

void SyncAgent::learn_hub_clock(const HttpResponse& r) {
  if (r.hub_time_ms <= 0) return;
  const auto offset = r.hub_time_ms - system_millis();
  auto lock = hold();
  // Written only when it moved: the network's delay is noise, and a write per answer would cost a sync to disk.
  if (std::llabs(offset - log_.hub_clock_offset_ms()) > kHubClockOffsetSlackMs) log_.set_hub_clock_offset_ms(offset);
}

shared::Result<RoundReport> SyncAgent::run_round() {
  // A request timed days away from the hub's clock is refused with the hub's
  // clock: the round runs once more, timed by it.
  auto report = round();
  if (!report && clock_refused_) report = round();
  return report;
}

shared::Result<RoundReport> SyncAgent::round() {
  refusal_.reset();
  clock_refused_ = false;
  RoundReport report;
  if (auto st = push(report); !st) return st.error();
  if (auto st = pull(report); !st) return st.error();
  if (report.directives_applied > 0) {
    if (auto st = push(report); !st) return st.error();
  }
  auto lock = hold();
  report.acked_seq = log_.acked_seq();
  return report;
}

}  // namespace irt::sync
