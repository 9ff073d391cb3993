// CDISC ODM 1.3.2 (Operational Data Model) XML of the hub's clinical data, for
// an EDC to import: the `--format odm` of `irt-hub export` (hub/exports.h).
// Written with libxml2's xmlTextWriter, which escapes every text and
// attribute and always produces well-formed UTF-8 XML.
//
// One Snapshot document (docs/exports.md, "ODM mapping"):
//   ODM (xmlns, FileOID, FileType="Snapshot", ODMVersion="1.3.2", CreationDateTime)
//     Study OID="ST.<study id>"
//       GlobalVariables: StudyName, StudyDescription, ProtocolName
//       MetaDataVersion OID="MDV.<version>":
//         Protocol with a StudyEventRef per visit; a StudyEventDef per visit
//         ("SE.<visit id>"), the randomization visit with the form F.RAND,
//         every dispensing visit with F.DISP; ItemGroupDefs IG.RAND
//         (randomization number and date) and IG.DISP (kit number and date,
//         repeating); their ItemDefs; the arm (IT.ARM, CL.ARM) and kit type
//         (IT.KITTYPE, CL.KITTYPE) only in the unblinded document.
//     AdminData: a Location "LOC.<site id>" per site
//     ClinicalData: a SubjectData per participant with its SiteRef, the
//       randomization (what = participants or randomizations) and the kits
//       dispensed per visit (participants or dispensations).
// Every OID a reference names is defined in the document.
// Thread-safety: a pure function.
#pragma once

#include <cstdint>
#include <string>

#include "hub/exports.h"
#include "shared/study.h"

namespace irt::hub {

inline constexpr const char* kOdmNamespace = "http://www.cdisc.org/ns/odm/v1.3";

std::string odm_document(const shared::Study& study, const ClinicalRecords& records, ExportKind what, bool unblinded,
                         std::int64_t now_ms);

}  // namespace irt::hub
