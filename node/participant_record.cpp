#include "node/participant_record.h"

namespace irt::node {

using nlohmann::json;

const VisitRecord* ParticipantRecord::find_visit(const std::string& id) const {
  for (const auto& v : visits)
    if (v.visit == id) return &v;
  return nullptr;
}

void to_json(json& j, const ParticipantRecord& p) {
  json visits = json::array();
  for (const auto& v : p.visits)
    visits.push_back({{"visit", v.visit}, {"date", v.date}, {"kits", v.kits}, {"deviation", v.deviation}, {"by", v.by},
                      {"missed_reason", v.missed_reason}, {"order_reason", v.order_reason}});
  json repl = json::array();
  for (const auto& r : p.replacements)
    repl.push_back({{"visit", r.visit}, {"old_kit", r.old_kit}, {"new_kit", r.new_kit}, {"reason", r.reason},
                    {"date", r.date}, {"by", r.by}});
  j = json{{"number", p.number},
           {"status", p.status},
           {"factors", p.factors},
           {"eligibility", p.eligibility},
           {"cohort", p.cohort},
           {"screen_failure_reason", p.screen_failure_reason},
           {"screened_on", p.screened_on},
           {"screened_by", p.screened_by},
           {"randomization_number", p.randomization_number},
           {"randomized_on", p.randomized_on},
           {"randomized_by", p.randomized_by},
           {"arm", p.arm},
           {"stratum", p.stratum},
           {"slot", p.slot},
           {"stream_id", p.stream_id},
           {"decision", p.decision},
           {"visits", visits},
           {"replacements", repl},
           {"unblinded", p.unblinded},
           {"unblinded_on", p.unblinded_on},
           {"unblinded_by", p.unblinded_by},
           {"withdrawal_reason", p.withdrawal_reason},
           {"withdrawn_on", p.withdrawn_on},
           {"withdrawn_by", p.withdrawn_by},
           {"transfer_to", p.transfer_to},
           {"transfer_reason", p.transfer_reason},
           {"transfer_decision", p.transfer_decision},
           {"transferred_from", p.transferred_from},
           {"study_version", p.study_version}};
}

void from_json(const json& j, ParticipantRecord& p) {
  j.at("number").get_to(p.number);
  j.at("status").get_to(p.status);
  j.at("factors").get_to(p.factors);
  j.at("eligibility").get_to(p.eligibility);
  p.cohort = j.value("cohort", "");  // records written before cohorts were kept have none
  j.at("screen_failure_reason").get_to(p.screen_failure_reason);
  j.at("screened_on").get_to(p.screened_on);
  j.at("screened_by").get_to(p.screened_by);
  j.at("randomization_number").get_to(p.randomization_number);
  j.at("randomized_on").get_to(p.randomized_on);
  j.at("randomized_by").get_to(p.randomized_by);
  j.at("arm").get_to(p.arm);
  j.at("stratum").get_to(p.stratum);
  j.at("slot").get_to(p.slot);
  j.at("stream_id").get_to(p.stream_id);
  p.decision = j.at("decision");
  p.visits.clear();
  for (const auto& v : j.at("visits"))
    p.visits.push_back({v.at("visit"), v.at("date"), v.at("kits").get<std::vector<std::string>>(), v.at("deviation"),
                        v.at("by"), v.value("missed_reason", ""), v.value("order_reason", "")});
  p.replacements.clear();
  for (const auto& r : j.at("replacements"))
    p.replacements.push_back({r.at("visit"), r.at("old_kit"), r.at("new_kit"), r.at("reason"), r.at("date"), r.at("by")});
  j.at("unblinded").get_to(p.unblinded);
  j.at("unblinded_on").get_to(p.unblinded_on);
  p.unblinded_by = j.value("unblinded_by", "");  // records of code breaks before it was kept have none
  j.at("withdrawal_reason").get_to(p.withdrawal_reason);
  // Absent in records of withdrawals before their signer was kept.
  p.withdrawn_on = j.value("withdrawn_on", "");
  p.withdrawn_by = j.value("withdrawn_by", "");
  j.at("transfer_to").get_to(p.transfer_to);
  j.at("transfer_reason").get_to(p.transfer_reason);
  // Absent in records written before transfers were decided.
  p.transfer_decision = j.value("transfer_decision", "");
  p.transferred_from = j.value("transferred_from", "");
  p.study_version = j.value("study_version", 0);
}

}  // namespace irt::node
