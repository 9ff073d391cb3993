// What leaves the hub as a file: the participants, randomizations,
// dispensations, inventory, shipments, audit trail and deviations, as CSV,
// JSON or (the clinical data) CDISC ODM 1.3.2 XML (hub/odm.h). The formats,
// columns and the ODM mapping are in docs/exports.md.
//
// Who calls it: `irt-hub export` (hub/export_commands.cpp) and the API's
// /api/v1/exports routes (hub/api_exports.cpp); both call export_text, so a
// script and the dashboard get the same bytes for the same reader.
//
// Blinding: an export is blinded unless the caller asks for the unblinded one
// and was allowed it (authorize_unblinded_export). A blinded export holds no
// arm and no kit type, in any column or format: the columns that would are
// left out, the audit trail and the deviations come from the functions that
// blind them for every other reader (hub/audit_trail.h, hub/deviations.h).
//
// Reads: the whole export is read in one storage::ReadSnapshot, so it is
// consistent as of one moment and never holds the hub's writer lock: nodes'
// pushes and decisions commit while a long export runs.
// The unblinded export is audited ("export.unblinded": who, when, why, what)
// and that entry is committed before anything is read.
// Thread-safety: as HubState.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hub/hub_state.h"
#include "hub/users.h"
#include "shared/result.h"

namespace irt::hub {

enum class ExportKind { participants, randomizations, dispensations, inventory, shipments, audit, deviations };
enum class ExportFormat { csv, json, odm };

// "participants" ... ; nullopt for anything else.
std::optional<ExportKind> parse_export_kind(std::string_view text);
std::optional<ExportFormat> parse_export_format(std::string_view text);
std::string to_string(ExportKind kind);
std::string to_string(ExportFormat format);
// "participants|randomizations|...", for usage lines and messages.
std::string export_kinds_text();
// The MIME type of a format ("text/csv; charset=utf-8", ...) and its file extension.
std::string content_type(ExportFormat format);
std::string file_extension(ExportFormat format);

struct ExportRequest {
  ExportKind what = ExportKind::participants;
  ExportFormat format = ExportFormat::csv;
  bool unblinded = false;  // only after authorize_unblinded_export
};

// What a long export reports as it goes: `done` of `total` in `step`
// ("reading node events", "writing rows"). Called from the exporting thread.
class ExportProgress {
 public:
  virtual ~ExportProgress() = default;
  virtual void advanced(std::string_view step, std::size_t done, std::size_t total) = 0;
};

// One export as a table: the column names in order and one JSON object per
// row holding those keys (a string, a number, null, or for a nested value an
// object). CSV and JSON are written from it.
struct ExportTable {
  std::vector<std::string> columns;
  std::vector<nlohmann::json> rows;
};

// The clinical data the nodes reported, from every node's events in the
// ledger (the source of truth; hub/consumption.h derives its tables from the
// same events). Arms and kit types are filled only when `unblinded`.
struct SubjectRecord {
  std::string participant;
  std::string site_id, node_id;
  std::string status;  // shared::ParticipantStatus by name: the latest event's
  std::int64_t screened_ms = 0;
  std::string screen_failure_reason;
  nlohmann::json factors = nlohmann::json::object();
  std::string cohort;
  std::string randomization_number;  // empty until randomized
  std::int64_t randomized_ms = 0;
  std::uint64_t randomized_seq = 0;
  std::string randomization_visit;
  std::string stratum;  // the list stratum's label; empty for minimization
  std::string randomized_by;  // the e-signature's signer
  std::optional<int> list_segment;  // the study version of the list segment its slot came from (list designs)
  std::string arm;            // unblinded only
  std::int64_t withdrawn_ms = 0, completed_ms = 0;
  std::string withdrawal_reason;
};
struct DispensingRecord {
  std::string participant;
  std::string visit;
  std::string kit;
  std::string event;  // participant.randomized, kit.dispensed or kit.replaced
  std::string replaced_kit;  // kit.replaced: the kit this one replaces
  std::string site_id, node_id;
  std::uint64_t seq = 0;
  std::int64_t at_ms = 0;  // the node's clock when recorded
  std::string kit_type;    // unblinded only
};
struct ClinicalRecords {
  std::vector<SubjectRecord> subjects;         // by participant number
  std::vector<DispensingRecord> dispensings;   // by participant, then time
};
ClinicalRecords clinical_records(HubState& hub, bool unblinded, ExportProgress* progress = nullptr);

// The table of `what`, read inside the caller's snapshot (or transaction).
ExportTable export_table(HubState& hub, ExportKind what, bool unblinded, ExportProgress* progress = nullptr);

// The export's bytes: the table as CSV or JSON, or the ODM document
// (participants, randomizations and dispensations only: the other exports are
// not clinical data, invalid_input). Reads in one ReadSnapshot of its own.
shared::Result<std::string> export_text(HubState& hub, const ExportRequest& request, std::int64_t now_ms,
                                        ExportProgress* progress = nullptr);

// The table as CSV (RFC 4180: a header line, CRLF line ends, fields quoted
// when they hold a comma, quote or line end; a text field starting with = + -
// or @ is prefixed with ' so a spreadsheet never runs it as a formula).
std::string to_csv(const ExportTable& table);
// {"study", "what", "blinded", "created", "columns", "rows"}.
nlohmann::json to_json(const ExportTable& table, const shared::Study& study, ExportKind what, bool unblinded,
                       std::int64_t now_ms);

// The unblinded export's permission, signature and audit: `signer` (the
// reader, re-entering their password) must hold export_data and read
// unblinded (hub/users.h reads_blinded), and give a reason. Records
// "export.unblinded" (the signer, the reason, what and in which format,
// "performed") and commits it. Refused: unauthenticated for a wrong password,
// forbidden for a role that may not, invalid_input for no reason; nothing is
// recorded then.
shared::Result<User> authorize_unblinded_export(HubState& hub, const Signature& signer, const ExportRequest& request,
                                                const std::string& reason, std::int64_t now_ms);

}  // namespace irt::hub
