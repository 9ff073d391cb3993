#include "hub/exports.h"

#include <algorithm>
#include <map>

#include "hub/allocations.h"
#include "hub/audit.h"
#include "hub/audit_trail.h"
#include "hub/deviations.h"
#include "hub/kit_inventory.h"
#include "hub/odm.h"
#include "hub/randomization_store.h"
#include "hub/shipments.h"
#include "hub/tuning.h"
#include "shared/event_payloads.h"
#include "sync/event.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Errc;
using shared::make_error;

constexpr const char* kKindNames[] = {"participants", "randomizations", "dispensations", "inventory",
                                      "shipments",    "audit",          "deviations"};
constexpr const char* kFormatNames[] = {"csv", "json", "odm"};


json time_or_null(std::int64_t ms) { return ms ? json(utc_text(ms)) : json(nullptr); }
json text_or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

void report_progress(ExportProgress* p, std::string_view step, std::size_t done, std::size_t total) {
  if (p) p->advanced(step, done, total);
}

// Every event of every node, in ledger order per node, parsed.
template <class Visit>
void each_node_event(HubState& hub, ExportProgress* progress, Visit visit) {
  auto nodes = hub.ledger().nodes();
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    report_progress(progress, "reading node events", i, nodes.size());
    const auto& node = nodes[i];
    for (std::uint64_t after = 0;;) {
      auto records = hub.ledger().records_after(node.node_id, after, kConsumptionChunk);
      for (const auto& r : records) {
        auto e = sync::parse_event(r, sync::EventLimits::ignored);
        if (!e) break;  // the ledger verified what it holds; irt-hub verify reports otherwise
        after = e->body.seq;
        visit(node, *e);
      }
      if (records.size() < kConsumptionChunk) break;
    }
  }
  report_progress(progress, "reading node events", nodes.size(), nodes.size());
}

template <class T>
std::optional<T> parsed(shared::Result<T> r) {
  if (!r) return std::nullopt;  // an unreadable event is a deviation already (hub/consumption.h)
  return std::move(r).value();
}

ExportTable participants_table(const ClinicalRecords& c, bool unblinded) {
  ExportTable t{{"participant", "site_id", "node_id", "status", "screened_at", "screen_failure_reason", "factors",
                 "cohort", "randomization_number", "randomized_at", "stratum", "withdrawn_at", "withdrawal_reason",
                 "completed_at"},
                {}};
  if (unblinded) t.columns.push_back("arm");
  for (const auto& s : c.subjects) {
    json row{{"participant", s.participant},
             {"site_id", s.site_id},
             {"node_id", s.node_id},
             {"status", s.status},
             {"screened_at", time_or_null(s.screened_ms)},
             {"screen_failure_reason", text_or_null(s.screen_failure_reason)},
             {"factors", s.factors},
             {"cohort", text_or_null(s.cohort)},
             {"randomization_number", text_or_null(s.randomization_number)},
             {"randomized_at", time_or_null(s.randomized_ms)},
             {"stratum", text_or_null(s.stratum)},
             {"withdrawn_at", time_or_null(s.withdrawn_ms)},
             {"withdrawal_reason", text_or_null(s.withdrawal_reason)},
             {"completed_at", time_or_null(s.completed_ms)}};
    if (unblinded) row["arm"] = text_or_null(s.arm);
    t.rows.push_back(std::move(row));
  }
  return t;
}

ExportTable randomizations_table(const ClinicalRecords& c, bool unblinded, const shared::Study& study) {
  ExportTable t{{"participant", "randomization_number", "randomized_at", "visit", "stratum", "list_segment", "site_id",
                 "node_id", "seq", "randomized_by"},
                {}};
  if (unblinded) {
    t.columns.push_back("arm");
    t.columns.push_back("arm_name");
  }
  for (const auto& s : c.subjects) {
    if (s.randomization_number.empty()) continue;
    json row{{"participant", s.participant},
             {"randomization_number", s.randomization_number},
             {"randomized_at", time_or_null(s.randomized_ms)},
             {"visit", text_or_null(s.randomization_visit)},
             {"stratum", text_or_null(s.stratum)},
             {"list_segment", s.list_segment ? json(*s.list_segment) : json(nullptr)},
             {"site_id", s.site_id},
             {"node_id", s.node_id},
             {"seq", s.randomized_seq},
             {"randomized_by", text_or_null(s.randomized_by)}};
    if (unblinded) {
      const auto* arm = study.find_arm(s.arm);
      row["arm"] = text_or_null(s.arm);
      row["arm_name"] = arm ? json(arm->name) : json(nullptr);
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

ExportTable dispensations_table(const ClinicalRecords& c, bool unblinded) {
  ExportTable t{{"participant", "visit", "kit", "dispensed_at", "event", "replaced_kit", "site_id", "node_id", "seq"},
                {}};
  if (unblinded) t.columns.push_back("kit_type");
  for (const auto& d : c.dispensings) {
    json row{{"participant", d.participant},
             {"visit", text_or_null(d.visit)},
             {"kit", d.kit},
             {"dispensed_at", time_or_null(d.at_ms)},
             {"event", d.event},
             {"replaced_kit", text_or_null(d.replaced_kit)},
             {"site_id", d.site_id},
             {"node_id", d.node_id},
             {"seq", d.seq}};
    if (unblinded) row["kit_type"] = text_or_null(d.kit_type);
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::map<std::string, std::string> node_sites(HubState& hub) {
  std::map<std::string, std::string> out;
  for (const auto& n : hub.ledger().nodes()) out[n.node_id] = n.site_id;
  return out;
}

ExportTable inventory_table(HubState& hub, bool unblinded) {
  // A lot can hold one kit type (an imported list's lots are the vendor's), so a blinded reader gets no kit's lot.
  ExportTable t{{"kit", "expiry", "status", "custody_kind", "custody_id", "site_id", "shipment_id", "participant"},
                {}};
  if (unblinded) {
    t.columns.insert(t.columns.begin() + 1, "lot");
    t.columns.push_back("kit_type");
  }
  auto sites = node_sites(hub);
  for (const auto& k : all_kits(hub.db())) {
    json row{{"kit", k.number},
             {"expiry", k.expiry},
             {"status", shared::to_string(k.status)},
             {"custody_kind", k.custody_kind},
             {"custody_id", k.custody_id},
             {"site_id", k.custody_kind == "node" ? text_or_null(sites[k.custody_id]) : json(nullptr)},
             {"shipment_id", text_or_null(k.shipment_id)},
             {"participant", text_or_null(k.participant)}};
    if (unblinded) row["lot"] = k.lot, row["kit_type"] = k.kit_type;
    t.rows.push_back(std::move(row));
  }
  return t;
}

// A shipment's kit count is blind-safe (shared/resupply.h composes it so);
// its count per kit type is not.
ExportTable shipments_table(HubState& hub, bool unblinded) {
  ExportTable t{{"shipment_id", "kind", "status", "depot_id", "site_id", "node_id", "shipped_on", "kits", "created_at"},
                {}};
  if (unblinded) t.columns.push_back("kit_types");
  std::map<std::string, std::map<std::string, int>> per_type;
  if (unblinded)
    for (const auto& k : all_kits(hub.db()))
      if (!k.shipment_id.empty()) ++per_type[k.shipment_id][k.kit_type];
  for (const auto& s : list_shipments(hub.db())) {
    json row{{"shipment_id", s.shipment_id}, {"kind", s.kind},         {"status", s.status}, {"depot_id", s.depot_id},
             {"site_id", s.site_id},         {"node_id", s.node_id},   {"shipped_on", s.shipped_on},
             {"kits", s.kits},               {"created_at", time_or_null(s.created_ms)}};
    if (unblinded) row["kit_types"] = json(per_type[s.shipment_id]);
    t.rows.push_back(std::move(row));
  }
  return t;
}

ExportTable audit_table(HubState& hub, bool unblinded) {
  ExportTable t{{"at", "source", "user", "action", "object", "reason", "old_value", "new_value", "signature",
                 "node_id", "site_id", "seq", "details", "withheld"},
                {}};
  for (const auto& e : audit_trail(hub, {}, !unblinded)) {
    auto j = to_json(e);
    json row;
    for (const auto& c : t.columns) row[c] = j.contains(c) ? j[c] : json(nullptr);
    row["withheld"] = e.withheld;
    t.rows.push_back(std::move(row));
  }
  return t;
}

ExportTable deviations_table(HubState& hub, bool unblinded) {
  ExportTable t{{"id", "kind", "status", "raised_at", "site_id", "node_id", "seq", "subject", "event_type",
                 "summary", "acknowledged_by", "acknowledged_at", "comment"},
                {}};
  if (unblinded) t.columns.push_back("unblinded");
  for (const auto& d : deviations(hub, false, unblinded)) {
    json row{{"id", d.id},
             {"kind", d.kind},
             {"status", d.status},
             {"raised_at", time_or_null(d.raised_ms)},
             {"site_id", text_or_null(d.site_id)},
             {"node_id", text_or_null(d.node_id)},
             {"seq", d.seq},
             {"subject", text_or_null(d.subject)},
             {"event_type", text_or_null(d.event_type)},
             {"summary", d.summary},
             {"acknowledged_by", text_or_null(d.acknowledged_by)},
             {"acknowledged_at", d.acknowledged_ms ? time_or_null(*d.acknowledged_ms) : json(nullptr)},
             {"comment", text_or_null(d.comment)}};
    if (unblinded) row["unblinded"] = d.unblinded ? json(*d.unblinded) : json(nullptr);
    t.rows.push_back(std::move(row));
  }
  return t;
}

bool is_clinical(ExportKind k) {
  return k == ExportKind::participants || k == ExportKind::randomizations || k == ExportKind::dispensations;
}

std::string csv_field(const json& v) {
  std::string text;
  if (v.is_null()) return "";
  if (v.is_string()) {
    text = v.get<std::string>();
    if (!text.empty() && (text[0] == '=' || text[0] == '+' || text[0] == '-' || text[0] == '@')) text = "'" + text;
  } else if (v.is_boolean()) {
    text = v.get<bool>() ? "true" : "false";
  } else {
    text = v.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char ch : text) {
    if (ch == '"') quoted += '"';
    quoted += ch;
  }
  return quoted + "\"";
}

}  // namespace

std::optional<ExportKind> parse_export_kind(std::string_view text) {
  for (std::size_t i = 0; i < std::size(kKindNames); ++i)
    if (text == kKindNames[i]) return static_cast<ExportKind>(i);
  return std::nullopt;
}

std::optional<ExportFormat> parse_export_format(std::string_view text) {
  for (std::size_t i = 0; i < std::size(kFormatNames); ++i)
    if (text == kFormatNames[i]) return static_cast<ExportFormat>(i);
  return std::nullopt;
}

std::string to_string(ExportKind kind) { return kKindNames[static_cast<std::size_t>(kind)]; }
std::string to_string(ExportFormat format) { return kFormatNames[static_cast<std::size_t>(format)]; }

std::string export_kinds_text() {
  std::string out;
  for (const auto* k : kKindNames) out += (out.empty() ? "" : "|") + std::string(k);
  return out;
}

std::string content_type(ExportFormat format) {
  switch (format) {
    case ExportFormat::csv: return "text/csv; charset=utf-8";
    case ExportFormat::json: return "application/json";
    case ExportFormat::odm: return "application/xml";
  }
  return "application/octet-stream";
}

std::string file_extension(ExportFormat format) { return format == ExportFormat::odm ? "xml" : to_string(format); }

ClinicalRecords clinical_records(HubState& hub, bool unblinded, ExportProgress* progress) {
  std::map<std::string, SubjectRecord> subjects;
  ClinicalRecords out;
  auto subject = [&](const std::string& number, const sync::LedgerNode& node) -> SubjectRecord& {
    auto& s = subjects[number];
    if (s.participant.empty()) s = {number, node.site_id, node.node_id};
    return s;
  };
  auto dispensed = [&](const sync::LedgerNode& node, const sync::SignedEvent& e, const std::string& participant,
                       const std::string& visit, const std::string& kit, const std::string& replaced) {
    out.dispensings.push_back({participant, visit, kit, e.body.type, replaced, node.site_id, node.node_id, e.body.seq,
                               e.body.device_time_ms});
  };
  each_node_event(hub, progress, [&](const sync::LedgerNode& node, const sync::SignedEvent& e) {
    const auto& type = e.body.type;
    const std::string_view text(reinterpret_cast<const char*>(e.body.payload.data()), e.body.payload.size());
    const auto at = e.body.device_time_ms;
    if (type == shared::kScreenedEvent || type == shared::kScreenFailedEvent) {
      if (auto p = parsed(shared::parse_screened(text))) {
        auto& s = subject(p->participant, node);
        s.status = shared::to_string(p->status);
        s.screened_ms = at;
        s.screen_failure_reason = p->screen_failure_reason;
        s.factors = json(p->factors);
        s.cohort = p->cohort;
      }
    } else if (type == shared::kRandomizedEvent) {
      if (auto p = parsed(shared::parse_randomized(text))) {
        auto& s = subject(p->participant, node);
        if (s.randomization_number.empty()) {  // a second randomization is an alert, not a record
          s.status = shared::to_string(shared::ParticipantStatus::randomized);
          s.randomization_number = p->randomization_number;
          s.randomized_ms = at;
          s.randomized_seq = e.body.seq;
          s.randomization_visit = p->visit;
          s.stratum = p->stratum_label;
          s.randomized_by = p->esignature.signer;
          if (p->stratum && p->slot && hub.randomization())
            s.list_segment = hub.randomization()->segment_version(*p->stratum, *p->slot);
        }
        for (const auto& k : p->kits) dispensed(node, e, p->participant, p->visit, k, "");
      }
    } else if (type == shared::kDispensedEvent) {
      if (auto p = parsed(shared::parse_dispensed(text)))
        for (const auto& k : p->kits) dispensed(node, e, p->participant, p->visit, k, "");
    } else if (type == shared::kKitReplacedEvent) {
      if (auto p = parsed(shared::parse_kit_replaced(text)))
        dispensed(node, e, p->participant, p->visit, p->new_kit, p->old_kit);
    } else if (type == shared::kWithdrawnEvent) {
      if (auto p = parsed(shared::parse_withdrawn(text))) {
        auto& s = subject(p->participant, node);
        s.status = shared::to_string(shared::ParticipantStatus::withdrawn);
        s.withdrawn_ms = at;
        s.withdrawal_reason = p->reason;
      }
    } else if (type == shared::kCompletedEvent) {
      if (auto p = parsed(shared::parse_completed(text))) {
        auto& s = subject(p->participant, node);
        s.status = shared::to_string(shared::ParticipantStatus::completed);
        s.completed_ms = at;
      }
    }
  });
  if (unblinded) {
    // The arms as the hub recorded them from the sealed parts (hub/allocations.h).
    for (const auto& site : hub.study().sites)
      for (const auto& a : site_allocations(hub.db(), site.id))
        if (auto it = subjects.find(a.participant); it != subjects.end()) it->second.arm = a.arm;
    std::map<std::string, std::string> kit_types;
    for (const auto& k : all_kits(hub.db())) kit_types[k.number] = k.kit_type;
    for (auto& d : out.dispensings) d.kit_type = kit_types[d.kit];
  }
  for (auto& [number, s] : subjects) out.subjects.push_back(std::move(s));
  std::stable_sort(out.dispensings.begin(), out.dispensings.end(), [](const auto& a, const auto& b) {
    return std::tie(a.participant, a.at_ms) < std::tie(b.participant, b.at_ms);
  });
  return out;
}

ExportTable export_table(HubState& hub, ExportKind what, bool unblinded, ExportProgress* progress) {
  switch (what) {
    case ExportKind::participants: return participants_table(clinical_records(hub, unblinded, progress), unblinded);
    case ExportKind::randomizations:
      return randomizations_table(clinical_records(hub, unblinded, progress), unblinded, hub.study());
    case ExportKind::dispensations: return dispensations_table(clinical_records(hub, unblinded, progress), unblinded);
    case ExportKind::inventory: return inventory_table(hub, unblinded);
    case ExportKind::shipments: return shipments_table(hub, unblinded);
    case ExportKind::audit: return audit_table(hub, unblinded);
    case ExportKind::deviations: return deviations_table(hub, unblinded);
  }
  return {};
}

std::string to_csv(const ExportTable& table) {
  std::string out;
  for (std::size_t i = 0; i < table.columns.size(); ++i) out += (i ? "," : "") + csv_field(table.columns[i]);
  out += "\r\n";
  for (const auto& row : table.rows) {
    for (std::size_t i = 0; i < table.columns.size(); ++i) {
      auto it = row.find(table.columns[i]);
      out += (i ? "," : "") + csv_field(it == row.end() ? json(nullptr) : *it);
    }
    out += "\r\n";
  }
  return out;
}

json to_json(const ExportTable& table, const shared::Study& study, ExportKind what, bool unblinded,
             std::int64_t now_ms) {
  return json{{"study", study.id},           {"study_version", study.version}, {"what", to_string(what)},
              {"blinded", !unblinded},       {"created", utc_text(now_ms)},    {"columns", table.columns},
              {"rows", table.rows}};
}

shared::Result<std::string> export_text(HubState& hub, const ExportRequest& request, std::int64_t now_ms,
                                        ExportProgress* progress) {
  if (request.format == ExportFormat::odm && !is_clinical(request.what))
    return make_error(Errc::invalid_input, "--format odm carries clinical data only (participants, randomizations, "
                                           "dispensations); export " + to_string(request.what) +
                                               " as csv or json");
  storage::ReadSnapshot snapshot(hub.db());
  std::string text;
  if (request.format == ExportFormat::odm) {
    auto records = clinical_records(hub, request.unblinded, progress);
    text = odm_document(hub.study(), records, request.what, request.unblinded, now_ms);
  } else {
    auto table = export_table(hub, request.what, request.unblinded, progress);
    report_progress(progress, "writing rows", 0, table.rows.size());
    if (request.format == ExportFormat::csv)
      text = to_csv(table);
    else
      text = to_json(table, hub.study(), request.what, request.unblinded, now_ms).dump(1, ' ', false,
                                                                                        json::error_handler_t::replace);
    report_progress(progress, "writing rows", table.rows.size(), table.rows.size());
  }
  return text;
}

shared::Result<User> authorize_unblinded_export(HubState& hub, const Signature& signer, const ExportRequest& request,
                                                const std::string& reason, std::int64_t now_ms) {
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos)
    return make_error(Errc::invalid_input, "an unblinded export needs a reason (--reason TEXT): why the allocation "
                                           "must leave the hub, for the audit trail");
  auto user = check_signature(hub, signer, shared::Permission::export_data);
  if (!user) return user.error();
  if (reads_blinded(hub.study(), hub.study().find_role(user->role)))
    return make_error(Errc::forbidden, "role " + user->role +
                                           " reads blinded, so it may not export the allocation; export without "
                                           "--unblinded, or ask a user whose role reads unblinded (view_unblinded)");
  storage::Transaction tx(hub.db());
  record_audit(hub.db(), {now_ms, user->name, "export.unblinded", to_string(request.what), reason, "",
                          to_string(request.what) + " as " + to_string(request.format) + ", unblinded", "performed"});
  tx.commit();
  return user;
}

}  // namespace irt::hub
