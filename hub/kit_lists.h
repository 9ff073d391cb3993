// Kit lists from the packaging vendor (`irt-hub kits import`, and `irt-hub
// init` for the files beside the study) and the system's own blinded numbers
// (`irt-hub kits generate`; hub/kit_inventory.h generates them).
//
// A kit list is a CSV file (docs/supply.md, "Kit lists"):
//   kit_number,kit_type,lot,depot
//   100234,VLC25,L2026-01,EU-01
// with that header line, one kit per line, no quoting. The whole file is
// checked before anything is written: a malformed line, a kit number that is
// not 1 to 20 digits or repeats one in the file or at the hub, an unknown kit
// type, lot (hub/lots.h) or depot is reported with its line number (the
// first kMaxListedProblems), and nothing is imported. Otherwise every kit is
// placed at its depot, available, with its lot's expiry, in one transaction
// with one audit entry holding the file's BLAKE2b-256 hash (hex, as
// `b2sum -l 256` prints it), the kit and lot counts and the depots; never
// the count per kit type (a kit type can name an arm).
// A lots file (the same convention: lot,expiry,released_in with countries
// separated by spaces) is loaded the same way at init.
// Thread-safety: as storage::Database.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "hub/hub_state.h"
#include "shared/result.h"
#include "storage/database.h"

namespace irt::hub {

inline constexpr std::size_t kMaxListedProblems = 20;

struct KitListImport {
  std::size_t kits = 0;
  std::string hash_hex;  // BLAKE2b-256 of the file's bytes
};

// Inside the caller's transaction: checks then imports `csv` (named `source` in messages and the trail).
shared::Result<KitListImport> import_kit_list(storage::Database& db, const shared::Study& study,
                                              const std::string& csv, const std::string& source,
                                              const std::string& actor, std::int64_t now_ms);
// Reads FILE and imports it in its own transaction.
shared::Result<KitListImport> import_kit_list_file(HubState& hub, const std::filesystem::path& file,
                                                   const std::string& actor, std::int64_t now_ms);

// Inside the caller's transaction: the lots of a lots CSV (lot,expiry,released_in),
// added and released as listed (the study's own supply plan, loaded at init).
shared::Result<std::size_t> load_lots(storage::Database& db, const shared::Study& study, const std::string& csv,
                                      const std::string& source, const std::string& actor, std::int64_t now_ms);

// `irt-hub kits generate`: blinded kit numbers for the study's depots (the
// rule of hub/kit_inventory.h), in its own transaction; conflict when the
// hub already holds kits.
shared::Result<std::size_t> generate_kit_list(HubState& hub, const std::string& actor, std::int64_t now_ms);

// The files `irt-hub init --study DIR/NAME.json` loads when they exist:
// DIR/NAME.lots.csv and DIR/NAME.kits.csv (both or neither).
std::filesystem::path lots_file_beside(const std::filesystem::path& study_file);
std::filesystem::path kits_file_beside(const std::filesystem::path& study_file);

}  // namespace irt::hub
