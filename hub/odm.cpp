#include "hub/odm.h"

#include <libxml/xmlwriter.h>

#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <vector>

#include "shared/civil_date.h"

namespace irt::hub {

namespace {

// xmlTextWriter over a memory buffer; a failing call (only out of memory)
// throws: it is exceptional, and nothing has left the hub.
class XmlWriter {
 public:
  XmlWriter() : buffer_(xmlBufferCreate(), xmlBufferFree) {
    if (!buffer_) throw std::runtime_error("libxml2 could not allocate a buffer");
    writer_ = xmlNewTextWriterMemory(buffer_.get(), 0);
    if (!writer_) throw std::runtime_error("libxml2 could not make a writer");
    check(xmlTextWriterSetIndent(writer_, 1));
    check(xmlTextWriterSetIndentString(writer_, x("  ")));
    check(xmlTextWriterStartDocument(writer_, nullptr, "UTF-8", nullptr));
  }
  ~XmlWriter() {
    if (writer_) xmlFreeTextWriter(writer_);
  }
  XmlWriter(const XmlWriter&) = delete;
  XmlWriter& operator=(const XmlWriter&) = delete;

  XmlWriter& open(const char* name) {
    check(xmlTextWriterStartElement(writer_, x(name)));
    return *this;
  }
  XmlWriter& attr(const char* name, const std::string& value) {
    check(xmlTextWriterWriteAttribute(writer_, x(name), x(value.c_str())));
    return *this;
  }
  XmlWriter& text(const std::string& value) {
    check(xmlTextWriterWriteString(writer_, x(value.c_str())));
    return *this;
  }
  XmlWriter& close() {
    check(xmlTextWriterEndElement(writer_));
    return *this;
  }
  // <name>value</name>
  XmlWriter& element(const char* name, const std::string& value) { return open(name).text(value).close(); }

  std::string finish() {
    check(xmlTextWriterEndDocument(writer_));
    xmlFreeTextWriter(writer_);  // flushes into the buffer
    writer_ = nullptr;
    return std::string(reinterpret_cast<const char*>(xmlBufferContent(buffer_.get())),
                       static_cast<std::size_t>(xmlBufferLength(buffer_.get())));
  }

 private:
  static const xmlChar* x(const char* s) { return reinterpret_cast<const xmlChar*>(s); }
  static void check(int rc) {
    if (rc < 0) throw std::runtime_error("libxml2 failed while writing the ODM document");
  }
  std::unique_ptr<xmlBuffer, void (*)(xmlBufferPtr)> buffer_;
  xmlTextWriterPtr writer_ = nullptr;
};

// ODM datetime: ISO 8601 with the UTC designator.
std::string odm_time(std::int64_t ms) { return shared::utc_text(ms); }

struct VisitDef {
  std::string id, name;
  bool randomization = false, dispensing = false, scheduled = true;
};

// The study's visits in schedule order, then any visit the records name that
// the current study does not (an earlier version's), unscheduled, so every
// StudyEventData names a StudyEventDef.
std::vector<VisitDef> visit_defs(const shared::Study& study, const ClinicalRecords& records) {
  std::vector<VisitDef> out;
  std::set<std::string> known;
  for (const auto& v : study.visits) {
    out.push_back({v.id, v.name, v.randomization, !v.dispense.empty() || v.randomization, true});
    known.insert(v.id);
  }
  auto extra = [&](const std::string& id, bool randomization) {
    if (known.insert(id).second) out.push_back({id, id, randomization, true, false});
    for (auto& v : out)
      if (v.id == id) {
        v.dispensing = true;
        v.randomization = v.randomization || randomization;
      }
  };
  for (const auto& s : records.subjects)
    if (!s.randomization_number.empty()) extra(s.randomization_visit, true);
  for (const auto& d : records.dispensings) extra(d.visit, false);
  return out;
}

// A visit id as recorded; "" (a schedule without visits) is its own event.
std::string visit_key(const std::string& id) { return id.empty() ? "UNSCHEDULED" : id; }

}  // namespace

std::string odm_document(const shared::Study& study, const ClinicalRecords& records, ExportKind what, bool unblinded,
                         std::int64_t now_ms) {
  const std::string study_oid = "ST." + study.id;
  const std::string mdv_oid = "MDV." + std::to_string(study.version);
  const bool with_randomization = what != ExportKind::dispensations;
  const bool with_dispensing = what != ExportKind::randomizations;
  auto visits = visit_defs(study, records);

  XmlWriter w;
  w.open("ODM")
      .attr("xmlns", kOdmNamespace)
      .attr("FileOID", "IRT." + study.id + "." + std::to_string(now_ms))
      .attr("FileType", "Snapshot")
      .attr("Granularity", "All")
      .attr("ODMVersion", "1.3.2")
      .attr("CreationDateTime", odm_time(now_ms))
      .attr("Originator", "irt-hub")
      .attr("SourceSystem", "irt-hub");

  w.open("Study").attr("OID", study_oid);
  w.open("GlobalVariables")
      .element("StudyName", study.name)
      .element("StudyDescription", study.name + (unblinded ? " (unblinded export)" : " (blinded export)"))
      .element("ProtocolName", study.id)
      .close();
  w.open("MetaDataVersion").attr("OID", mdv_oid).attr("Name", "Study version " + std::to_string(study.version));
  w.open("Protocol");
  int order = 0;
  for (const auto& v : visits)
    w.open("StudyEventRef")
        .attr("StudyEventOID", "SE." + visit_key(v.id))
        .attr("OrderNumber", std::to_string(++order))
        .attr("Mandatory", v.scheduled ? "Yes" : "No")
        .close();
  w.close();
  for (const auto& v : visits) {
    w.open("StudyEventDef")
        .attr("OID", "SE." + visit_key(v.id))
        .attr("Name", v.name.empty() ? visit_key(v.id) : v.name)
        .attr("Repeating", "No")
        .attr("Type", v.scheduled ? "Scheduled" : "Unscheduled");
    if (v.randomization) w.open("FormRef").attr("FormOID", "F.RAND").attr("Mandatory", "Yes").close();
    if (v.dispensing) w.open("FormRef").attr("FormOID", "F.DISP").attr("Mandatory", "No").close();
    w.close();
  }
  w.open("FormDef").attr("OID", "F.RAND").attr("Name", "Randomization").attr("Repeating", "No");
  w.open("ItemGroupRef").attr("ItemGroupOID", "IG.RAND").attr("Mandatory", "Yes").close().close();
  w.open("FormDef").attr("OID", "F.DISP").attr("Name", "Kit dispensing").attr("Repeating", "No");
  w.open("ItemGroupRef").attr("ItemGroupOID", "IG.DISP").attr("Mandatory", "Yes").close().close();

  auto item_ref = [&](const char* oid, bool mandatory) {
    w.open("ItemRef").attr("ItemOID", oid).attr("Mandatory", mandatory ? "Yes" : "No").close();
  };
  w.open("ItemGroupDef").attr("OID", "IG.RAND").attr("Name", "Randomization").attr("Repeating", "No");
  item_ref("IT.RANDNO", true);
  item_ref("IT.RANDDT", true);
  if (unblinded) item_ref("IT.ARM", true);
  w.close();
  w.open("ItemGroupDef").attr("OID", "IG.DISP").attr("Name", "Kit dispensed").attr("Repeating", "Yes");
  item_ref("IT.KITNO", true);
  item_ref("IT.DISPDT", true);
  if (unblinded) item_ref("IT.KITTYPE", true);
  w.close();

  auto item_def = [&](const char* oid, const char* name, const char* type, const char* code_list) {
    w.open("ItemDef").attr("OID", oid).attr("Name", name).attr("DataType", type);
    if (std::string(type) == "text") w.attr("Length", "64");
    if (code_list) w.open("CodeListRef").attr("CodeListOID", code_list).close();
    w.close();
  };
  item_def("IT.RANDNO", "Randomization number", "text", nullptr);
  item_def("IT.RANDDT", "Randomization date and time", "datetime", nullptr);
  item_def("IT.KITNO", "Kit number", "text", nullptr);
  item_def("IT.DISPDT", "Dispensing date and time", "datetime", nullptr);
  if (unblinded) {
    item_def("IT.ARM", "Arm", "text", "CL.ARM");
    item_def("IT.KITTYPE", "Kit type", "text", "CL.KITTYPE");
    auto code_list = [&](const char* oid, const char* name, const std::vector<std::pair<std::string, std::string>>& items) {
      w.open("CodeList").attr("OID", oid).attr("Name", name).attr("DataType", "text");
      for (const auto& [code, decode] : items)
        w.open("CodeListItem").attr("CodedValue", code).open("Decode").open("TranslatedText").attr("xml:lang", "en")
            .text(decode).close().close().close();
      w.close();
    };
    std::vector<std::pair<std::string, std::string>> arms, kit_types;
    for (const auto& a : study.arms) arms.emplace_back(a.id, a.name);
    for (const auto& k : study.kit_types) kit_types.emplace_back(k.id, k.name);
    code_list("CL.ARM", "Arm", arms);
    code_list("CL.KITTYPE", "Kit type", kit_types);
  }
  w.close();  // MetaDataVersion
  w.close();  // Study

  // Sites: the study's, and any a participant was screened at that it no longer lists.
  std::map<std::string, std::string> sites;
  for (const auto& s : study.sites) sites[s.id] = s.name;
  for (const auto& s : records.subjects) sites.emplace(s.site_id, "Site " + s.site_id);
  w.open("AdminData").attr("StudyOID", study_oid);
  for (const auto& [id, name] : sites) {
    w.open("Location").attr("OID", "LOC." + id).attr("Name", name.empty() ? id : name).attr("LocationType", "Site");
    w.open("MetaDataVersionRef")
        .attr("StudyOID", study_oid)
        .attr("MetaDataVersionOID", mdv_oid)
        .attr("EffectiveDate", shared::format_date(shared::day_of_millis(now_ms)))
        .close();
    w.close();
  }
  w.close();

  std::map<std::string, std::vector<const DispensingRecord*>> dispensed;  // by participant, in time order
  for (const auto& d : records.dispensings) dispensed[d.participant].push_back(&d);
  w.open("ClinicalData").attr("StudyOID", study_oid).attr("MetaDataVersionOID", mdv_oid);
  for (const auto& s : records.subjects) {
    w.open("SubjectData").attr("SubjectKey", s.participant);
    w.open("SiteRef").attr("LocationOID", "LOC." + s.site_id).close();
    // Per visit, in schedule order: the randomization form, then the dispensing form.
    for (const auto& v : visits) {
      const bool randomized_here = with_randomization && !s.randomization_number.empty() &&
                                   visit_key(s.randomization_visit) == visit_key(v.id);
      std::vector<const DispensingRecord*> kits;
      if (with_dispensing)
        for (const auto* d : dispensed[s.participant])
          if (visit_key(d->visit) == visit_key(v.id)) kits.push_back(d);
      if (!randomized_here && kits.empty()) continue;
      w.open("StudyEventData").attr("StudyEventOID", "SE." + visit_key(v.id));
      auto item = [&](const char* oid, const std::string& value) {
        w.open("ItemData").attr("ItemOID", oid).attr("Value", value).close();
      };
      if (randomized_here) {
        w.open("FormData").attr("FormOID", "F.RAND").open("ItemGroupData").attr("ItemGroupOID", "IG.RAND");
        item("IT.RANDNO", s.randomization_number);
        item("IT.RANDDT", odm_time(s.randomized_ms));
        if (unblinded && !s.arm.empty()) item("IT.ARM", s.arm);
        w.close().close();
      }
      if (!kits.empty()) {
        w.open("FormData").attr("FormOID", "F.DISP");
        int repeat = 0;
        for (const auto* d : kits) {
          w.open("ItemGroupData").attr("ItemGroupOID", "IG.DISP").attr("ItemGroupRepeatKey", std::to_string(++repeat));
          item("IT.KITNO", d->kit);
          item("IT.DISPDT", odm_time(d->at_ms));
          if (unblinded && !d->kit_type.empty()) item("IT.KITTYPE", d->kit_type);
          w.close();
        }
        w.close();
      }
      w.close();  // StudyEventData
    }
    w.close();  // SubjectData
  }
  w.close();  // ClinicalData
  w.close();  // ODM
  return w.finish();
}

}  // namespace irt::hub
