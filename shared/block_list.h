// Randomization lists: the strata of a study, and the pre-generated list of
// slots per stratum (permuted blocks with fixed or variable sizes, or one slot
// per "block" for simple randomization, Efron's coin and the big stick), with
// the canonical CSV encoding whose BLAKE2b hash identifies a list.
//
// The hub generates a list once from a recorded 32-byte seed (through a
// RandomSource over the seeded ChaCha20 stream), stores it, and grants its
// blocks to nodes (slot_slice.h). `irt-hub randlist verify` regenerates it from
// the same seed and study version and compares the bytes.
//
// Randomness is consumed in one fixed order, which is part of the format:
// strata in index order; within a stratum, block after block until the
// requested number of slots is reached; per block, uniform(#sizes) when more
// than one size is configured, then a Fisher-Yates shuffle of the block's arms
// laid out in arm order (ratio r_j copies of arm j per ratio unit). Simple
// randomization draws uniform(ratio sum) per slot; Efron and big stick draw
// bernoulli(probability of arm 0) per slot. Thread-safety: plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/allocation.h"
#include "shared/random_source.h"
#include "shared/result.h"
#include "shared/study.h"

namespace irt::shared {

// The levels of a factor, including the derived "site" (site ids of the study's
// sites) and "country" (country codes). not_found for an unknown factor id.
Result<std::vector<std::string>> factor_levels(const Study& study, const std::string& factor_id);

struct StratumFactor {
  std::string id;
  std::vector<std::string> levels;
};

// The cross product of the stratification factors; stratum indices are mixed
// radix over the factors in configuration order, the last factor varying fastest.
// A study without strata has exactly one stratum, labelled "all".
struct Strata {
  std::vector<StratumFactor> factors;

  std::size_t count() const;
  std::string label(std::size_t stratum) const;  // "site=101;sex=F"
  std::vector<std::size_t> levels_of(std::size_t stratum) const;
  // The stratum of a participant from factor id -> level; invalid_input when a
  // factor is missing or a level unknown.
  Result<std::size_t> index_of(const std::map<std::string, std::string>& values) const;
};

Result<Strata> strata_of(const Study& study);

struct ListSlot {
  std::uint32_t stratum = 0;     // 0-based stratum index
  std::uint32_t block = 0;       // 1-based within the stratum
  std::uint32_t slot = 0;        // 1-based within the stratum
  std::uint16_t block_size = 0;
  std::uint16_t arm = 0;         // index into Allocation::arms
};

struct RandomizationList {
  std::string study_id;
  int study_version = 0;
  Method method = Method::permuted_blocks;
  Allocation allocation;
  Strata strata;
  std::vector<ListSlot> slots;              // by stratum, then by slot
  std::vector<std::size_t> stratum_begin;   // slots of stratum s: [stratum_begin[s], stratum_begin[s + 1])
};

// Generates at least slots_per_stratum slots in every stratum (whole blocks, so
// possibly a few more). invalid_input for a study whose method has no list
// (minimization) or whose block sizes do not honour the ratio.
Result<RandomizationList> generate_list(const Study& study, RandomSource& source, std::size_t slots_per_stratum);

// The canonical encoding, hashed to identify the list:
//   header "stratum,stratum_label,block,block_size,slot,arm" then one line per
//   slot, stratum 1-based, fields quoted as in RFC 4180 only when needed, "\n"
//   line ends, no trailing spaces.
std::string encode_list_csv(const RandomizationList& list);

// One parsed line of a list file, for counting and comparing.
struct ListRow {
  std::uint32_t stratum = 0;  // 1-based, as in the file
  std::string stratum_label;
  std::uint32_t block = 0;
  std::uint32_t block_size = 0;
  std::uint32_t slot = 0;
  std::string arm;
};
Result<std::vector<ListRow>> parse_list_csv(std::string_view text);

// Checks every complete block of a list holds exactly its ratio share of each
// arm; the message names the first offending stratum and block (never an arm).
Status check_block_ratios(const RandomizationList& list);

}  // namespace irt::shared
