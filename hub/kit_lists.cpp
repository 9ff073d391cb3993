#include "hub/kit_lists.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "crypto/bytes.h"
#include "crypto/hash.h"
#include "hub/audit.h"
#include "hub/kit_inventory.h"
#include "hub/lots.h"
#include "shared/civil_date.h"
#include "shared/event_payloads.h"
#include "shared/identifier.h"

namespace irt::hub {

namespace {

using shared::Errc;
using shared::make_error;

// The lines of a CSV file with their numbers (1-based), the header checked.
struct Rows {
  std::vector<std::pair<std::size_t, std::vector<std::string>>> rows;
  std::vector<std::string> problems;
};

Rows read_rows(const std::string& text, const std::string& source, const std::string& header) {
  Rows out;
  std::istringstream in(text);
  std::size_t n = 0;
  bool seen_header = false;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (!seen_header) {
      seen_header = true;
      if (line != header)
        out.problems.push_back(source + " line " + std::to_string(n) + ": the header must be \"" + header +
                               "\" (got \"" + line + "\")");
      continue;
    }
    std::vector<std::string> fields;
    std::stringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) fields.push_back(cell);
    if (!line.empty() && line.back() == ',') fields.emplace_back();
    out.rows.push_back({n, fields});
  }
  if (!seen_header) out.problems.push_back(source + ": empty; the first line must be \"" + header + "\"");
  return out;
}

shared::Error refused(const std::vector<std::string>& problems, const std::string& what) {
  std::string msg = std::to_string(problems.size()) + " problem(s), nothing was " + what + ":";
  for (std::size_t i = 0; i < problems.size() && i < kMaxListedProblems; ++i) msg += "\n  " + problems[i];
  if (problems.size() > kMaxListedProblems)
    msg += "\n  ... and " + std::to_string(problems.size() - kMaxListedProblems) + " more";
  return make_error(Errc::invalid_input, msg + "\nFix the file and run the command again");
}

bool is_kit_number(const std::string& s) {
  return !s.empty() && s.size() <= 20 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string read_file(const std::filesystem::path& file, bool& ok) {
  std::ifstream in(file, std::ios::binary);
  ok = static_cast<bool>(in);
  std::ostringstream text;
  if (ok) text << in.rdbuf();
  return text.str();
}

}  // namespace

shared::Result<KitListImport> import_kit_list(storage::Database& db, const shared::Study& study,
                                              const std::string& csv, const std::string& source,
                                              const std::string& actor, std::int64_t now_ms) {
  auto parsed = read_rows(csv, source, "kit_number,kit_type,lot,depot");
  auto& problems = parsed.problems;
  std::set<std::string> numbers, lots, depots;
  std::map<std::string, std::string> lot_expiry;
  auto exists = db.prepare("SELECT 1 FROM hub_kits WHERE kit_number = ?");
  std::size_t digits = 0;
  for (const auto& [line, f] : parsed.rows) {
    const std::string at = source + " line " + std::to_string(line) + ": ";
    if (f.size() != 4) {
      problems.push_back(at + "4 fields expected (kit_number,kit_type,lot,depot), got " + std::to_string(f.size()));
      continue;
    }
    // Plain references, not a structured binding: clang 14 cannot capture one in the lambda below.
    const auto& number = f[0];
    const auto& type = f[1];
    const auto& lot = f[2];
    const auto& depot = f[3];
    if (!is_kit_number(number)) {
      problems.push_back(at + "kit number must be 1 to 20 digits (got \"" + number + "\")");
    } else if (!numbers.insert(number).second) {
      problems.push_back(at + "kit " + number + " appears twice in the file");
    } else {
      exists.reset();
      exists.bind(1, number);
      if (exists.step()) problems.push_back(at + "kit " + number + " is already at the hub");
      digits = std::max(digits, number.size());
    }
    if (!study.find_kit_type(type))
      problems.push_back(at + "unknown kit type \"" + type + "\"; use one of the study's kit types");
    if (!lot_expiry.count(lot)) {
      auto l = find_lot(db, lot);
      if (!l) {
        problems.push_back(at + "unknown lot \"" + lot + "\"; add it first with 'irt-hub lot add'");
        continue;
      }
      lot_expiry[lot] = l->expiry;
    }
    if (std::none_of(study.depots.begin(), study.depots.end(), [&](const shared::Depot& d) { return d.id == depot; }))
      problems.push_back(at + "unknown depot \"" + depot + "\"; use one of the study's depots");
    lots.insert(lot);
    depots.insert(depot);
  }
  if (problems.empty() && parsed.rows.empty()) problems.push_back(source + ": no kits listed");
  if (!problems.empty()) return refused(problems, "imported");

  auto hash = crypto::blake2b(crypto::as_bytes(csv), 32);
  KitListImport out{parsed.rows.size(), crypto::to_hex(hash)};
  db.prepare("INSERT INTO hub_kit_lists(seed, digits, kits, list_hash, created_ms, created_by) VALUES (?, ?, ?, ?, ?, ?)")
      .bind_all(storage::BlobView(), static_cast<std::int64_t>(digits), static_cast<std::int64_t>(out.kits),
                storage::BlobView(hash), now_ms, actor)
      .run();
  const auto list_id = db.last_insert_rowid();
  auto ins = db.prepare(
      "INSERT INTO hub_kits(kit_number, list_id, kit_type, lot, expiry, custody_kind, custody_id, status) "
      "VALUES (?, ?, ?, ?, ?, 'depot', ?, ?)");
  for (const auto& [line, f] : parsed.rows) {
    ins.reset();
    ins.bind_all(f[0], list_id, f[1], f[2], lot_expiry.at(f[2]), f[3],
                 shared::to_string(shared::KitStatus::available))
        .run();
  }
  auto list = [](const std::set<std::string>& s) {
    std::string o;
    for (const auto& x : s) o += (o.empty() ? "" : ", ") + x;
    return o;
  };
  record_audit(db, {now_ms, actor, "kits.imported", source, "irt-hub kits import", "",
                    std::to_string(out.kits) + " kits in lots " + list(lots) + " at depot(s) " + list(depots) +
                        ", file BLAKE2b-256 " + out.hash_hex + ", " + record_kit_list_kits(db, list_id)});
  return out;
}

shared::Result<KitListImport> import_kit_list_file(HubState& hub, const std::filesystem::path& file,
                                                   const std::string& actor, std::int64_t now_ms) {
  bool ok = false;
  auto text = read_file(file, ok);
  if (!ok) return make_error(Errc::invalid_input, "cannot read the kit list " + file.string() + "; check the path");
  auto& db = hub.db();
  storage::Transaction tx(db);
  auto done = import_kit_list(db, hub.study(), text, file.filename().string(), actor, now_ms);
  if (!done) return done.error();
  tx.commit();
  return done;
}

shared::Result<std::size_t> load_lots(storage::Database& db, const shared::Study& study, const std::string& csv,
                                      const std::string& source, const std::string& actor, std::int64_t now_ms) {
  auto parsed = read_rows(csv, source, "lot,expiry,released_in");
  auto& problems = parsed.problems;
  for (const auto& [line, f] : parsed.rows) {
    const std::string at = source + " line " + std::to_string(line) + ": ";
    if (f.size() != 3) {
      problems.push_back(at + "3 fields expected (lot,expiry,released_in), got " + std::to_string(f.size()));
      continue;
    }
    std::istringstream countries(f[2]);
    for (std::string c; countries >> c;)
      if (std::none_of(study.countries.begin(), study.countries.end(),
                       [&](const shared::Country& x) { return x.code == c; }))
        problems.push_back(at + "country " + c + " is not a country of the study");
  }
  if (!problems.empty()) return refused(problems, "loaded");
  for (const auto& [line, f] : parsed.rows) {
    if (auto st = add_lot(db, f[0], f[1], "lots of " + source, actor, now_ms); !st)
      return refused({source + " line " + std::to_string(line) + ": " + st.error().message}, "loaded");
    std::vector<std::string> countries;
    std::istringstream in(f[2]);
    for (std::string c; in >> c;) countries.push_back(c);
    release_generated_lot(db, f[0], countries, now_ms, actor);
    if (!countries.empty())
      record_audit(db, {now_ms, actor, "lot.released", f[0], "as listed in " + source, "", "released in " + f[2]});
  }
  return parsed.rows.size();
}

shared::Result<std::size_t> generate_kit_list(HubState& hub, const std::string& actor, std::int64_t now_ms) {
  auto& db = hub.db();
  storage::Transaction tx(db);
  {
    auto any = db.prepare("SELECT count(*) FROM hub_kits");
    any.step();
    if (any.int64(0) > 0)
      return make_error(Errc::conflict, "the hub already holds " + std::to_string(any.int64(0)) +
                                            " kits; nothing was generated. Import more with 'irt-hub kits import', "
                                            "or amend the study to add depots, sites or kit types");
  }
  if (auto st = create_kit_inventory(db, hub.study(), actor, now_ms); !st) return st.error();
  auto n = db.prepare("SELECT count(*) FROM hub_kits");
  n.step();
  tx.commit();
  return static_cast<std::size_t>(n.int64(0));
}

std::filesystem::path lots_file_beside(const std::filesystem::path& study_file) {
  auto p = study_file;
  return p.replace_extension(".lots.csv");
}

std::filesystem::path kits_file_beside(const std::filesystem::path& study_file) {
  auto p = study_file;
  return p.replace_extension(".kits.csv");
}

}  // namespace irt::hub
