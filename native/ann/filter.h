#pragma once
// Eligibility predicates over ad attributes, compiled once into a bitmap over slots and reused
// for every query of a request. Each present field must match (AND); a list field matches
// when the ad's value is in the list (OR within the field).
#include <cstdint>
#include <optional>
#include <vector>

#include "ann/bitmap.h"
#include "ann/catalog.h"

namespace cangen {

struct FilterSpec {
  std::optional<bool> active;
  std::optional<std::vector<uint8_t>> budgets;  // BudgetState values
  std::optional<std::vector<uint32_t>> advertisers;
  std::optional<std::vector<uint32_t>> campaigns;
  std::optional<std::vector<uint32_t>> categories;
  std::optional<std::vector<uint32_t>> geos;
  std::optional<std::vector<uint32_t>> excludedAdvertisers;
  std::optional<std::vector<int64_t>> ids;  // only these ads (unknown ids are ignored)
};

// A spec made ready for testing one ad at a time: its lists sorted for binary search. Used to
// compile a whole corpus and, by the filter registry, to re-test the slots a write touched.
class FilterMatcher {
 public:
  explicit FilterMatcher(const FilterSpec& spec);
  // Whether an ad with this id and these attributes is eligible (liveness is the caller's).
  bool admits(int64_t id, const AdAttributes& a) const noexcept;
  // Live slots of `catalog` that the spec admits.
  Bitmap compile(const Catalog& catalog) const;

 private:
  FilterSpec sorted_;
};

// Live slots that satisfy every predicate of `spec`.
Bitmap compileFilter(const Catalog& catalog, const FilterSpec& spec);

}  // namespace cangen
