#include "shared/block_list.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <numeric>
#include <set>

namespace irt::shared {

Result<std::vector<std::string>> factor_levels(const Study& study, const std::string& factor_id) {
  std::vector<std::string> levels;
  if (factor_id == "site") {
    for (const auto& s : study.sites) levels.push_back(s.id);
  } else if (factor_id == "country") {
    for (const auto& c : study.countries) levels.push_back(c.code);
  } else {
    auto it = std::find_if(study.factors.begin(), study.factors.end(),
                           [&](const Factor& f) { return f.id == factor_id; });
    if (it == study.factors.end())
      return make_error(Errc::not_found, "factor '" + factor_id +
                                             "' is used by the randomization but not defined; add it to "
                                             "\"factors\" or remove it from the randomization settings");
    levels = it->levels;
  }
  if (levels.empty())
    return make_error(Errc::invalid_input, "factor '" + factor_id +
                                               "' has no levels; add its levels (or the study's sites and "
                                               "countries) to the study file");
  return levels;
}

std::size_t Strata::count() const {
  std::size_t n = 1;
  for (const auto& f : factors) n *= f.levels.size();
  return n;
}

std::vector<std::size_t> Strata::levels_of(std::size_t stratum) const {
  std::vector<std::size_t> out(factors.size());
  for (std::size_t i = factors.size(); i-- > 0;) {
    out[i] = stratum % factors[i].levels.size();
    stratum /= factors[i].levels.size();
  }
  return out;
}

std::string Strata::label(std::size_t stratum) const {
  if (factors.empty()) return "all";
  auto levels = levels_of(stratum);
  std::string s;
  for (std::size_t i = 0; i < factors.size(); ++i) {
    if (i) s += ';';
    s += factors[i].id + "=" + factors[i].levels[levels[i]];
  }
  return s;
}

Result<std::size_t> Strata::index_of(const std::map<std::string, std::string>& values) const {
  std::size_t index = 0;
  for (const auto& f : factors) {
    auto it = values.find(f.id);
    if (it == values.end())
      return make_error(Errc::invalid_input,
                        "the participant has no value for stratification factor '" + f.id + "'; record it first");
    auto level = std::find(f.levels.begin(), f.levels.end(), it->second);
    if (level == f.levels.end())
      return make_error(Errc::invalid_input, "'" + it->second + "' is not a level of factor '" + f.id +
                                                 "'; use one of the levels configured in the study");
    index = index * f.levels.size() + static_cast<std::size_t>(level - f.levels.begin());
  }
  return index;
}

Result<Strata> strata_of(const Study& study) {
  Strata strata;
  std::set<std::string> seen;
  for (const auto& id : study.randomization.strata) {
    if (!seen.insert(id).second)
      return make_error(Errc::invalid_input, "stratification factor '" + id +
                                                 "' is listed twice; list each factor once");
    auto levels = factor_levels(study, id);
    if (!levels) return levels.error();
    strata.factors.push_back({id, std::move(*levels)});
  }
  return strata;
}

namespace {

Status check_block_sizes(const Allocation& allocation, const std::vector<int>& sizes) {
  if (sizes.empty())
    return make_error(Errc::invalid_input,
                      "permuted blocks need at least one block size; set randomization.block_sizes");
  const int unit = allocation.ratio_sum();
  for (int b : sizes)
    if (b <= 0 || b % unit != 0 || b > 60000)
      return make_error(Errc::invalid_input,
                        "block size " + std::to_string(b) + " does not honour the allocation ratio (sum " +
                            std::to_string(unit) + "); use a positive multiple of " + std::to_string(unit));
  return {};
}

}  // namespace

Result<RandomizationList> generate_list(const Study& study, RandomSource& source, std::size_t slots_per_stratum) {
  RandomizationList list;
  list.study_id = study.id;
  list.study_version = study.version;
  list.method = study.randomization.method;
  list.allocation = allocation_of(study);
  if (auto st = check_allocation(list.allocation); !st) return st.error();
  auto strata = strata_of(study);
  if (!strata) return strata.error();
  list.strata = std::move(*strata);
  if (slots_per_stratum == 0)
    return make_error(Errc::invalid_input, "a list needs at least one slot per stratum; raise the list size");

  const auto& cfg = study.randomization;
  const Allocation& alloc = list.allocation;
  switch (cfg.method) {
    case Method::minimization:
      return make_error(Errc::invalid_input,
                        "minimization assigns each participant from the running totals and has no "
                        "pre-generated list; generate lists only for simple, block, biased-coin or big-stick designs");
    case Method::permuted_blocks:
      if (auto st = check_block_sizes(alloc, cfg.block_sizes); !st) return st.error();
      break;
    case Method::biased_coin:
      if (!alloc.equal_two_arms())
        return make_error(Errc::invalid_input, "Efron's biased coin needs exactly two arms with equal ratio; "
                                               "use permuted blocks or minimization for other allocations");
      if (!(cfg.coin_probability >= 0.5 && cfg.coin_probability <= 1.0))
        return make_error(Errc::invalid_input, "randomization.coin_probability must be in [0.5, 1]");
      break;
    case Method::max_tolerated_imbalance:
      if (!alloc.equal_two_arms())
        return make_error(Errc::invalid_input, "the big stick design needs exactly two arms with equal ratio; "
                                               "use permuted blocks or minimization for other allocations");
      if (cfg.max_tolerated_imbalance < 1)
        return make_error(Errc::invalid_input, "randomization.max_tolerated_imbalance must be at least 1");
      break;
    case Method::simple:
      break;
  }

  const std::size_t n_strata = list.strata.count();
  list.slots.reserve(n_strata * (slots_per_stratum + 64));
  list.stratum_begin.reserve(n_strata + 1);

  // The block template: arms in arm order, ratio copies per ratio unit.
  std::vector<std::uint16_t> unit_arms;
  for (std::size_t j = 0; j < alloc.size(); ++j)
    for (int r = 0; r < alloc.ratio[j]; ++r) unit_arms.push_back(static_cast<std::uint16_t>(j));
  std::vector<std::uint16_t> block;

  for (std::size_t s = 0; s < n_strata; ++s) {
    list.stratum_begin.push_back(list.slots.size());
    std::uint32_t slot = 0;
    std::uint32_t block_no = 0;
    long imbalance = 0;  // n0 - n1, for the two-arm sequential designs
    while (slot < slots_per_stratum) {
      ++block_no;
      if (cfg.method == Method::permuted_blocks) {
        std::size_t size_index =
            cfg.block_sizes.size() > 1 ? static_cast<std::size_t>(uniform(source, cfg.block_sizes.size())) : 0;
        const int size = cfg.block_sizes[size_index];
        block.clear();
        for (int u = 0; u < size / alloc.ratio_sum(); ++u) block.insert(block.end(), unit_arms.begin(), unit_arms.end());
        shuffle(source, std::span<std::uint16_t>(block));
        for (auto arm : block)
          list.slots.push_back({static_cast<std::uint32_t>(s), block_no, ++slot, static_cast<std::uint16_t>(size), arm});
        continue;
      }
      std::uint16_t arm = 0;
      if (cfg.method == Method::simple) {
        arm = static_cast<std::uint16_t>(draw_simple(source, alloc));
      } else {
        double p0 = cfg.method == Method::biased_coin ? efron_probability(imbalance, cfg.coin_probability)
                                                      : big_stick_probability(imbalance, cfg.max_tolerated_imbalance);
        arm = bernoulli(source, p0) ? 0 : 1;
        imbalance += arm == 0 ? 1 : -1;
      }
      list.slots.push_back({static_cast<std::uint32_t>(s), block_no, ++slot, 1, arm});
    }
  }
  list.stratum_begin.push_back(list.slots.size());
  return list;
}

namespace {

void append_field(std::string& out, std::string_view v) {
  if (v.find_first_of(",\"\n\r") == std::string_view::npos) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

void append_number(std::string& out, std::uint64_t v) {
  std::array<char, 24> buf{};
  auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), r.ptr);
}

}  // namespace

std::string encode_list_csv(const RandomizationList& list) {
  std::vector<std::string> labels;
  for (std::size_t s = 0; s < list.strata.count(); ++s) {
    std::string l;
    append_field(l, list.strata.label(s));
    labels.push_back(std::move(l));
  }
  std::vector<std::string> arms;
  for (const auto& a : list.allocation.arms) {
    std::string l;
    append_field(l, a);
    arms.push_back(std::move(l));
  }
  std::string out = "stratum,stratum_label,block,block_size,slot,arm\n";
  out.reserve(out.size() + list.slots.size() * (labels.empty() ? 24 : 24 + labels[0].size()));
  for (const auto& sl : list.slots) {
    append_number(out, sl.stratum + 1ULL);
    out += ',';
    out += labels[sl.stratum];
    out += ',';
    append_number(out, sl.block);
    out += ',';
    append_number(out, sl.block_size);
    out += ',';
    append_number(out, sl.slot);
    out += ',';
    out += arms[sl.arm];
    out += '\n';
  }
  return out;
}

namespace {

// Splits one CSV record (RFC 4180 quoting) starting at pos; advances pos past the line end.
bool split_record(std::string_view text, std::size_t& pos, std::vector<std::string>& fields) {
  fields.clear();
  std::string field;
  bool quoted = false;
  while (pos < text.size()) {
    char c = text[pos++];
    if (quoted) {
      if (c == '"') {
        if (pos < text.size() && text[pos] == '"') {
          field += '"';
          ++pos;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      break;
    } else if (c != '\r') {
      field += c;
    }
  }
  if (quoted) return false;
  fields.push_back(std::move(field));
  return true;
}

bool to_u32(const std::string& s, std::uint32_t& out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size() && !s.empty();
}

}  // namespace

Result<std::vector<ListRow>> parse_list_csv(std::string_view text) {
  std::vector<ListRow> rows;
  std::size_t pos = 0;
  std::vector<std::string> fields;
  std::size_t line = 0;
  while (pos < text.size()) {
    ++line;
    if (!split_record(text, pos, fields))
      return make_error(Errc::invalid_input, "list line " + std::to_string(line) +
                                                 ": unterminated quoted field; the file is damaged");
    if (line == 1) {
      if (fields != std::vector<std::string>{"stratum", "stratum_label", "block", "block_size", "slot", "arm"})
        return make_error(Errc::invalid_input,
                          "the list's header is not 'stratum,stratum_label,block,block_size,slot,arm'; "
                          "pass a list written by 'irt-hub randlist generate'");
      continue;
    }
    ListRow row;
    if (fields.size() != 6 || !to_u32(fields[0], row.stratum) || !to_u32(fields[2], row.block) ||
        !to_u32(fields[3], row.block_size) || !to_u32(fields[4], row.slot))
      return make_error(Errc::invalid_input, "list line " + std::to_string(line) +
                                                 ": expected 6 fields with numeric stratum, block, block_size "
                                                 "and slot; the file is damaged or not a list");
    row.stratum_label = std::move(fields[1]);
    row.arm = std::move(fields[5]);
    rows.push_back(std::move(row));
  }
  if (line == 0)
    return make_error(Errc::invalid_input, "the list file is empty; pass a list written by 'irt-hub randlist generate'");
  return rows;
}

Status check_block_ratios(const RandomizationList& list) {
  if (list.method != Method::permuted_blocks) return {};
  const auto& alloc = list.allocation;
  std::vector<long> counts(alloc.size());
  std::size_t i = 0;
  while (i < list.slots.size()) {
    const ListSlot& first = list.slots[i];
    std::fill(counts.begin(), counts.end(), 0L);
    std::size_t n = 0;
    while (i < list.slots.size() && list.slots[i].stratum == first.stratum && list.slots[i].block == first.block) {
      ++counts[list.slots[i].arm];
      ++n;
      ++i;
    }
    const long units = static_cast<long>(first.block_size) / alloc.ratio_sum();
    bool ok = n == first.block_size;
    for (std::size_t j = 0; ok && j < counts.size(); ++j) ok = counts[j] == units * alloc.ratio[j];
    if (!ok)
      return make_error(Errc::integrity, "block " + std::to_string(first.block) + " of stratum '" +
                                             list.strata.label(first.stratum) +
                                             "' does not hold the allocation ratio; regenerate the list and "
                                             "investigate how it was changed");
  }
  return {};
}

}  // namespace irt::shared
