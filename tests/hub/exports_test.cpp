// Tests for hub/exports.h and hub/odm.h: every export from real node events
// in the ledger, blinded unless signed; the unblinded export's permission,
// signature and audit; CSV quoting; the ODM document element by element with
// every OID reference resolved; and an export that reads in a snapshot while
// a node's push commits beside it.
#include <doctest/doctest.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "hub/allocations.h"
#include "hub/audit.h"
#include "hub/exports.h"
#include "hub/kit_inventory.h"
#include "hub/odm.h"
#include "hub/users.h"
#include "shared/directive_payloads.h"
#include "shared/event_payloads.h"
#include "tests/hub/hub_fixture.h"
#include "tests/support/export_blinding.h"
#include "tests/hub/test_node.h"

using namespace irt;
using test::revealing;
using nlohmann::json;
using test::HubFixture;
using test::kHubNow;
using test::TestNode;
using test::consume;
using test::directives;
using test::enroll;
using test::from_slot;
using test::screened;
using test::seal;

namespace {

constexpr hub::ExportKind kExportKinds[] = {hub::ExportKind::participants, hub::ExportKind::randomizations,
                                         hub::ExportKind::dispensations, hub::ExportKind::inventory,
                                         hub::ExportKind::shipments,     hub::ExportKind::audit,
                                         hub::ExportKind::deviations};

// A kit of the node's stock that treats `arm` (the example study: A takes VLC25, B PBO).
std::string kit_for(HubFixture& f, const std::string& node, const std::string& arm, std::set<std::string>& used) {
  const std::string type = arm == "A" ? "VLC25" : "PBO";
  for (const auto& k : hub::kits_held_by(f.hub->db(), "node", node))
    if (k.kit_type == type && used.insert(k.number).second) return k.number;
  FAIL("no kit of type " << type << " left at node " << node);
  return "";
}

// Site 101's node: two participants randomized with a kit each at V1, the
// first dispensed another at V2 then completed, the second withdrawn, and a
// third screened only.
struct Trial {
  HubFixture f;
  TestNode node = enroll(f, "101");
  shared::SlotGrant grant;
  std::set<std::string> used;
  std::map<std::string, std::string> arms;  // participant -> arm
  std::map<std::string, std::vector<std::string>> kits;  // participant -> kits, in order

  Trial() {
    auto g = shared::parse_grant_slots(directives(f, node.id, shared::kGrantSlotsDirective).at(0).dump());
    REQUIRE(g.ok());
    grant = g->grants[0];
    for (std::size_t i = 0; i < 2; ++i) {
      const std::string number = "101-00" + std::to_string(i + 1);
      const auto& arm = grant.slots[i].arm;
      arms[number] = arm;
      node.push(f, shared::kScreenedEvent, screened(number, {{"site", "101"}, {"diabetes", "yes"}}));
      auto kit = kit_for(f, node.id, arm, used);
      kits[number].push_back(kit);
      node.push(f, shared::kRandomizedEvent,
                from_slot(number, grant, i, {kit}, seal(f, shared::RandomizedSealed{arm, {{kit, arm == "A" ? "VLC25" : "PBO"}}, {}})));
    }
    shared::Dispensed d;
    d.participant = "101-001";
    d.visit = "V2";
    d.kits = {kit_for(f, node.id, arms["101-001"], used)};
    d.day = 28;
    d.window_from = 25;
    d.window_to = 31;
    kits["101-001"].push_back(d.kits[0]);
    node.push(f, shared::kDispensedEvent, d);
    node.push(f, shared::kCompletedEvent, shared::Completed{"101-001", "coordinator"});
    node.push(f, shared::kWithdrawnEvent, shared::Withdrawn{"101-002", "moved abroad", "coordinator"});
    node.push(f, shared::kScreenedEvent, screened("101-003", {{"site", "101"}, {"diabetes", "no"}}));
    consume(f, node.id);
  }

  std::string text(hub::ExportKind what, hub::ExportFormat format, bool unblinded = false) {
    auto t = hub::export_text(*f.hub, {what, format, unblinded}, kHubNow);
    REQUIRE_MESSAGE(t.ok(), t.error().message);
    return *t;
  }
  json rows(hub::ExportKind what, bool unblinded = false) {
    return json::parse(text(what, hub::ExportFormat::json, unblinded))["rows"];
  }
};


// ---- ODM, read back with libxml2

using Doc = std::unique_ptr<xmlDoc, void (*)(xmlDocPtr)>;

Doc parse_xml(const std::string& text) {
  Doc doc(xmlReadMemory(text.data(), static_cast<int>(text.size()), "odm.xml", nullptr, XML_PARSE_NONET),
          xmlFreeDoc);
  REQUIRE_MESSAGE(doc, "the ODM document is not well-formed XML");
  return doc;
}

std::string name_of(xmlNodePtr n) { return reinterpret_cast<const char*>(n->name); }
std::string attr(xmlNodePtr n, const char* name) {
  auto* v = xmlGetProp(n, reinterpret_cast<const xmlChar*>(name));
  std::string out = v ? reinterpret_cast<const char*>(v) : "";
  xmlFree(v);
  return out;
}
bool has_attr(xmlNodePtr n, const char* name) { return xmlHasProp(n, reinterpret_cast<const xmlChar*>(name)); }
std::vector<xmlNodePtr> children(xmlNodePtr n, const std::string& name = "") {
  std::vector<xmlNodePtr> out;
  for (auto* c = n->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && (name.empty() || name_of(c) == name)) out.push_back(c);
  return out;
}
std::vector<std::string> child_names(xmlNodePtr n) {
  std::vector<std::string> out;
  for (auto* c : children(n))
    if (out.empty() || out.back() != name_of(c)) out.push_back(name_of(c));
  return out;
}
std::string content(xmlNodePtr n) {
  auto* v = xmlNodeGetContent(n);
  std::string out = v ? reinterpret_cast<const char*>(v) : "";
  xmlFree(v);
  return out;
}
void each_element(xmlNodePtr n, const std::function<void(xmlNodePtr)>& f) {
  for (auto* c : children(n)) {
    f(c);
    each_element(c, f);
  }
}

// Every definition's OID (by element), and every reference (attribute
// *OID of a non-definition element) resolves to a definition of its kind.
void check_oids_resolve(xmlNodePtr root) {
  std::map<std::string, std::set<std::string>> defined;  // kind -> OIDs
  const std::map<std::string, std::string> kind_of_def = {
      {"Study", "Study"},         {"MetaDataVersion", "MetaDataVersion"}, {"StudyEventDef", "StudyEvent"},
      {"FormDef", "Form"},        {"ItemGroupDef", "ItemGroup"},          {"ItemDef", "Item"},
      {"CodeList", "CodeList"},   {"Location", "Location"}};
  each_element(root, [&](xmlNodePtr e) {
    auto it = kind_of_def.find(name_of(e));
    if (it != kind_of_def.end()) CHECK_MESSAGE(defined[it->second].insert(attr(e, "OID")).second, attr(e, "OID"));
  });
  const std::map<std::string, std::string> kind_of_ref = {
      {"StudyOID", "Study"},          {"MetaDataVersionOID", "MetaDataVersion"}, {"StudyEventOID", "StudyEvent"},
      {"FormOID", "Form"},            {"ItemGroupOID", "ItemGroup"},             {"ItemOID", "Item"},
      {"CodeListOID", "CodeList"},    {"LocationOID", "Location"}};
  int refs = 0;
  each_element(root, [&](xmlNodePtr e) {
    // Not a structured binding: the message is built in a lambda, and clang 14 cannot capture one.
    for (const auto& ref : kind_of_ref) {
      const auto& attribute = ref.first;
      if (has_attr(e, attribute.c_str())) {
        ++refs;
        CHECK_MESSAGE(defined[ref.second].count(attr(e, attribute.c_str())),
                      name_of(e) << " " << attribute << "=" << attr(e, attribute.c_str()) << " is not defined");
      }
    }
  });
  CHECK(refs > 20);
}

}  // namespace

TEST_CASE("the clinical exports hold every participant, randomization and kit dispensed, from the nodes' events") {
  Trial t;
  auto participants = t.rows(hub::ExportKind::participants);
  REQUIRE(participants.size() == 3);
  CHECK(participants[0]["participant"] == "101-001");
  CHECK(participants[0]["status"] == "completed");
  CHECK(participants[0]["site_id"] == "101");
  CHECK(participants[0]["completed_at"] == "2026-01-01T00:00:00Z");
  CHECK(participants[1]["status"] == "withdrawn");
  CHECK(participants[1]["withdrawal_reason"] == "moved abroad");
  CHECK(participants[2]["status"] == "screened");
  CHECK(participants[2]["randomization_number"].is_null());
  CHECK(participants[2]["factors"]["diabetes"] == "no");

  auto randomizations = t.rows(hub::ExportKind::randomizations);
  REQUIRE(randomizations.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(randomizations[i]["randomization_number"] ==
          shared::list_randomization_number(t.grant.stratum, t.grant.slots[i].slot));
    CHECK(randomizations[i]["visit"] == "V1");
    CHECK(randomizations[i]["randomized_by"] == "ana");
    CHECK(randomizations[i]["node_id"] == t.node.id);
  }

  auto dispensations = t.rows(hub::ExportKind::dispensations);
  REQUIRE(dispensations.size() == 3);
  CHECK(dispensations[0]["participant"] == "101-001");
  CHECK(dispensations[0]["visit"] == "V1");
  CHECK(dispensations[0]["kit"] == t.kits["101-001"][0]);
  CHECK(dispensations[0]["event"] == "participant.randomized");
  CHECK(dispensations[1]["visit"] == "V2");
  CHECK(dispensations[1]["kit"] == t.kits["101-001"][1]);
  CHECK(dispensations[1]["event"] == "kit.dispensed");
  CHECK(dispensations[2]["kit"] == t.kits["101-002"][0]);

  auto inventory = t.rows(hub::ExportKind::inventory);
  CHECK(inventory.size() == hub::all_kits(t.f.hub->db()).size());
  int dispensed = 0;
  for (const auto& k : inventory)
    if (k["status"] == "dispensed") {
      ++dispensed;
      CHECK(k["site_id"] == "101");
    }
  CHECK(dispensed == 3);
  // A lot can hold one kit type: only an unblinded reader gets each kit's lot, as its type.
  CHECK_FALSE(inventory.at(0).contains("lot"));
  CHECK(t.text(hub::ExportKind::inventory, hub::ExportFormat::csv).rfind("kit,expiry,status,", 0) == 0);
  auto unblinded_inventory = t.rows(hub::ExportKind::inventory, true);
  CHECK(unblinded_inventory.at(0)["lot"] == hub::all_kits(t.f.hub->db()).at(0).lot);
  CHECK(t.text(hub::ExportKind::inventory, hub::ExportFormat::csv, true).rfind("kit,lot,expiry,", 0) == 0);
  auto shipments = t.rows(hub::ExportKind::shipments);
  REQUIRE(shipments.size() == 1);
  CHECK(shipments[0]["node_id"] == t.node.id);
  CHECK(shipments[0]["kind"] == "initial");
}

TEST_CASE("every blinded export, in each format, holds no arm and no kit type, and the unblinded one holds both") {
  Trial t;
  // A code break raises a deviation whose arm is sealed for unblinded readers.
  t.node.push(t.f, shared::kUnblindedEvent,
              shared::Unblinded{"101-002", "anaphylaxis", {"dr.lee", "investigator", kHubNow, "I confirm the code break"},
                                seal(t.f, shared::ArmSealed{t.arms["101-002"]})});
  consume(t.f, t.node.id);
  const auto& study = t.f.hub->study();
  int checked = 0;
  for (auto what : kExportKinds)
    for (auto format : {hub::ExportFormat::csv, hub::ExportFormat::json, hub::ExportFormat::odm}) {
      CAPTURE(hub::to_string(what));
      CAPTURE(hub::to_string(format));
      auto blinded = hub::export_text(*t.f.hub, {what, format, false}, kHubNow);
      if (format == hub::ExportFormat::odm && what != hub::ExportKind::participants &&
          what != hub::ExportKind::randomizations && what != hub::ExportKind::dispensations) {
        REQUIRE_FALSE(blinded.ok());
        CHECK(blinded.error().code == shared::Errc::invalid_input);
        continue;
      }
      REQUIRE_MESSAGE(blinded.ok(), blinded.error().message);
      CHECK_MESSAGE(revealing(study, *blinded).empty(), revealing(study, *blinded) << " in\n" << *blinded);
      ++checked;
    }
  CHECK(checked == 7 * 2 + 3);

  // The unblinded exports carry the arm of every randomized participant and each kit's type.
  for (const auto& r : t.rows(hub::ExportKind::randomizations, true)) {
    CHECK(r["arm"] == t.arms[r["participant"].get<std::string>()]);
    CHECK(r["arm_name"] == study.find_arm(r["arm"].get<std::string>())->name);
  }
  for (const auto& d : t.rows(hub::ExportKind::dispensations, true))
    CHECK(d["kit_type"] == (t.arms[d["participant"].get<std::string>()] == "A" ? "VLC25" : "PBO"));
  CHECK_FALSE(revealing(study, t.text(hub::ExportKind::randomizations, hub::ExportFormat::csv, true)).empty());
  int code_breaks = 0;
  for (const auto& d : t.rows(hub::ExportKind::deviations, true))
    if (d["kind"] == "code_break") {
      ++code_breaks;
      CHECK(d["unblinded"].get<std::string>().find("arm " + t.arms["101-002"]) != std::string::npos);
    }
  CHECK(code_breaks == 1);
}

TEST_CASE("an unblinded export needs the signature of a role that reads unblinded, a reason, and is audited first") {
  Trial t;
  t.f.add_user("stat.sue", "unblinded-statistician");
  t.f.add_user("manager.max", "study-manager");  // export_data, but blinded
  t.f.add_user("monitor.mo", "monitor");         // no export_data
  const hub::ExportRequest request{hub::ExportKind::randomizations, hub::ExportFormat::csv, true};
  auto audited = [&] {
    std::size_t n = 0;
    for (const auto& e : hub::audit_entries(t.f.hub->db()))
      if (e.action == "export.unblinded") ++n;
    return n;
  };

  auto blinded_role = hub::authorize_unblinded_export(*t.f.hub, {"manager.max", test::kUserPassword}, request, "DSMB", kHubNow);
  REQUIRE_FALSE(blinded_role.ok());
  CHECK(blinded_role.error().code == shared::Errc::forbidden);
  CHECK(blinded_role.error().message.find("reads blinded") != std::string::npos);
  auto no_permission = hub::authorize_unblinded_export(*t.f.hub, {"monitor.mo", test::kUserPassword}, request, "DSMB", kHubNow);
  REQUIRE_FALSE(no_permission.ok());
  CHECK(no_permission.error().code == shared::Errc::forbidden);
  auto wrong = hub::authorize_unblinded_export(*t.f.hub, {"stat.sue", "not the password"}, request, "DSMB", kHubNow);
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().code == shared::Errc::unauthenticated);
  auto no_reason = hub::authorize_unblinded_export(*t.f.hub, {"stat.sue", test::kUserPassword}, request, "  ", kHubNow);
  REQUIRE_FALSE(no_reason.ok());
  CHECK(no_reason.error().code == shared::Errc::invalid_input);
  CHECK(audited() == 0);

  auto ok = hub::authorize_unblinded_export(*t.f.hub, {"stat.sue", test::kUserPassword}, request,
                                            "DSMB interim analysis 1", kHubNow + 1000);
  REQUIRE_MESSAGE(ok.ok(), ok.error().message);
  REQUIRE(audited() == 1);
  auto entries = hub::audit_entries(t.f.hub->db(), {std::nullopt, "stat.sue", ""});
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].action == "export.unblinded");
  CHECK(entries[0].at_ms == kHubNow + 1000);
  CHECK(entries[0].subject == "randomizations");
  CHECK(entries[0].reason == "DSMB interim analysis 1");
  CHECK(entries[0].new_value == "randomizations as csv, unblinded");
  CHECK(entries[0].signature == "performed");
}

TEST_CASE("CSV quotes fields with commas, quotes and line ends, and defuses spreadsheet formulas") {
  hub::ExportTable table{{"a", "b", "c"}, {}};
  table.rows.push_back(json{{"a", "plain"}, {"b", "with, comma"}, {"c", "say \"hi\"\nbye"}});
  table.rows.push_back(json{{"a", "=HYPERLINK(\"x\")"}, {"b", 42}, {"c", nullptr}});
  table.rows.push_back(json{{"a", json{{"k", "v"}}}, {"b", true}});
  CHECK(hub::to_csv(table) ==
        "a,b,c\r\n"
        "plain,\"with, comma\",\"say \"\"hi\"\"\nbye\"\r\n"
        "\"'=HYPERLINK(\"\"x\"\")\",42,\r\n"
        "\"{\"\"k\"\":\"\"v\"\"}\",true,\r\n");
}

TEST_CASE("the ODM export is ODM 1.3.2 element by element, with every OID reference defined") {
  Trial t;
  const auto& study = t.f.hub->study();
  auto text = t.text(hub::ExportKind::participants, hub::ExportFormat::odm);
  auto doc = parse_xml(text);
  auto* root = xmlDocGetRootElement(doc.get());
  REQUIRE(root);
  CHECK(name_of(root) == "ODM");
  REQUIRE(root->ns);
  CHECK(std::string(reinterpret_cast<const char*>(root->ns->href)) == "http://www.cdisc.org/ns/odm/v1.3");
  CHECK(attr(root, "ODMVersion") == "1.3.2");
  CHECK(attr(root, "FileType") == "Snapshot");
  CHECK_FALSE(attr(root, "FileOID").empty());
  CHECK(attr(root, "CreationDateTime") == "2026-01-01T00:00:00Z");
  CHECK(child_names(root) == std::vector<std::string>{"Study", "AdminData", "ClinicalData"});

  auto* s = children(root, "Study").at(0);
  CHECK(attr(s, "OID") == "ST." + study.id);
  CHECK(child_names(s) == std::vector<std::string>{"GlobalVariables", "MetaDataVersion"});
  auto* globals = children(s, "GlobalVariables").at(0);
  CHECK(child_names(globals) == std::vector<std::string>{"StudyName", "StudyDescription", "ProtocolName"});
  CHECK(content(children(globals, "StudyName").at(0)) == study.name);
  CHECK(content(children(globals, "ProtocolName").at(0)) == study.id);

  auto* mdv = children(s, "MetaDataVersion").at(0);
  CHECK(attr(mdv, "OID") == "MDV." + std::to_string(study.version));
  CHECK(child_names(mdv) ==
        std::vector<std::string>{"Protocol", "StudyEventDef", "FormDef", "ItemGroupDef", "ItemDef"});  // no CodeList
  auto refs = children(children(mdv, "Protocol").at(0), "StudyEventRef");
  auto defs = children(mdv, "StudyEventDef");
  REQUIRE(defs.size() == study.visits.size());
  for (std::size_t i = 0; i < study.visits.size(); ++i) {
    CHECK(attr(defs[i], "OID") == "SE." + study.visits[i].id);
    CHECK(attr(defs[i], "Name") == study.visits[i].name);
    CHECK(attr(defs[i], "Type") == "Scheduled");
    CHECK(attr(refs[i], "StudyEventOID") == "SE." + study.visits[i].id);
    CHECK(attr(refs[i], "OrderNumber") == std::to_string(i + 1));
    std::vector<std::string> forms;
    for (auto* fr : children(defs[i], "FormRef")) forms.push_back(attr(fr, "FormOID"));
    if (study.visits[i].randomization) CHECK(forms == std::vector<std::string>{"F.RAND", "F.DISP"});
    else if (!study.visits[i].dispense.empty()) CHECK(forms == std::vector<std::string>{"F.DISP"});
    else CHECK(forms.empty());
  }
  std::map<std::string, std::vector<std::string>> group_items;
  for (auto* g : children(mdv, "ItemGroupDef"))
    for (auto* r : children(g, "ItemRef")) group_items[attr(g, "OID")].push_back(attr(r, "ItemOID"));
  CHECK(group_items["IG.RAND"] == std::vector<std::string>{"IT.RANDNO", "IT.RANDDT"});
  CHECK(group_items["IG.DISP"] == std::vector<std::string>{"IT.KITNO", "IT.DISPDT"});

  auto* admin = children(root, "AdminData").at(0);
  CHECK(children(admin, "Location").size() == study.sites.size());

  auto* clinical = children(root, "ClinicalData").at(0);
  CHECK(attr(clinical, "StudyOID") == "ST." + study.id);
  auto subjects = children(clinical, "SubjectData");
  REQUIRE(subjects.size() == 3);
  // 101-001: randomized and a kit at V1, another at V2.
  CHECK(attr(subjects[0], "SubjectKey") == "101-001");
  CHECK(attr(children(subjects[0], "SiteRef").at(0), "LocationOID") == "LOC.101");
  auto events = children(subjects[0], "StudyEventData");
  REQUIRE(events.size() == 2);
  CHECK(attr(events[0], "StudyEventOID") == "SE.V1");
  CHECK(attr(events[1], "StudyEventOID") == "SE.V2");
  std::map<std::string, std::string> v1;
  for (auto* form : children(events[0], "FormData"))
    for (auto* g : children(form, "ItemGroupData"))
      for (auto* item : children(g, "ItemData")) v1[attr(item, "ItemOID")] = attr(item, "Value");
  CHECK(v1["IT.RANDNO"] == shared::list_randomization_number(t.grant.stratum, t.grant.slots[0].slot));
  CHECK(v1["IT.RANDDT"] == "2026-01-01T00:00:00Z");
  CHECK(v1["IT.KITNO"] == t.kits["101-001"][0]);
  auto v2_groups = children(children(events[1], "FormData").at(0), "ItemGroupData");
  REQUIRE(v2_groups.size() == 1);
  CHECK(attr(v2_groups[0], "ItemGroupRepeatKey") == "1");
  CHECK(attr(children(v2_groups[0], "ItemData").at(0), "Value") == t.kits["101-001"][1]);
  // 101-003 was screened only: a subject with no event.
  CHECK(attr(subjects[2], "SubjectKey") == "101-003");
  CHECK(children(subjects[2], "StudyEventData").empty());
  check_oids_resolve(root);
  CHECK(revealing(study, text).empty());

  // Unblinded: the arm and the kit type, with their code lists.
  auto unblinded = t.text(hub::ExportKind::participants, hub::ExportFormat::odm, true);
  auto udoc = parse_xml(unblinded);
  auto* uroot = xmlDocGetRootElement(udoc.get());
  check_oids_resolve(uroot);
  std::map<std::string, std::string> arms;  // subject -> IT.ARM
  std::set<std::string> code_lists;
  each_element(uroot, [&](xmlNodePtr e) {
    if (name_of(e) == "CodeList") code_lists.insert(attr(e, "OID"));
    if (name_of(e) == "ItemData" && attr(e, "ItemOID") == "IT.ARM")
      arms[attr(e->parent->parent->parent->parent, "SubjectKey")] = attr(e, "Value");
  });
  CHECK(code_lists == std::set<std::string>{"CL.ARM", "CL.KITTYPE"});
  CHECK(arms == std::map<std::string, std::string>{{"101-001", t.arms["101-001"]}, {"101-002", t.arms["101-002"]}});

  // Only the randomizations, or only the kits.
  auto only = [&](hub::ExportKind what) {
    std::set<std::string> forms;
    auto d = parse_xml(t.text(what, hub::ExportFormat::odm));
    each_element(xmlDocGetRootElement(d.get()), [&](xmlNodePtr e) {
      if (name_of(e) == "FormData") forms.insert(attr(e, "FormOID"));
    });
    return forms;
  };
  CHECK(only(hub::ExportKind::randomizations) == std::set<std::string>{"F.RAND"});
  CHECK(only(hub::ExportKind::dispensations) == std::set<std::string>{"F.DISP"});
}

namespace {
// Part way through an export, a node pushes a new participant through another
// connection to the hub's database, as `irt-hub serve` would while the
// export runs.
struct PushDuringExport : hub::ExportProgress {
  HubFixture& f;
  TestNode& node;
  std::unique_ptr<hub::HubState> other;
  bool pushed = false;
  PushDuringExport(HubFixture& fixture, TestNode& n) : f(fixture), node(n) {
    auto opened = hub::HubState::open(f.dir / "hub", test::kHubPassphrase, f.pg ? f.pg->url() : "");
    REQUIRE_MESSAGE(opened.ok(), opened.error().message);
    other = std::move(opened).value();
  }
  void advanced(std::string_view, std::size_t, std::size_t) override {
    if (pushed) return;
    pushed = true;
    // The push takes the writer lock and commits at once: the export holds none.
    node.push(*other, shared::kScreenedEvent, screened("101-009", {{"site", "101"}, {"diabetes", "yes"}}));
  }
};
}  // namespace

TEST_CASE("an export reads one snapshot and holds no writer lock: a node's push commits while it runs") {
  Trial t;
  PushDuringExport during(t.f, t.node);
  auto text = hub::export_text(*t.f.hub, {hub::ExportKind::participants, hub::ExportFormat::json, false}, kHubNow,
                               &during);
  REQUIRE_MESSAGE(text.ok(), text.error().message);
  REQUIRE(during.pushed);
  // The export is the hub as it was when it began; the push is in the ledger.
  CHECK(json::parse(*text)["rows"].size() == 3);
  CHECK(text->find("101-009") == std::string::npos);
  CHECK(t.rows(hub::ExportKind::participants).size() == 4);
}
