#include "ann/filter.h"

#include <algorithm>

namespace cangen {

namespace {
template <typename T>
void sortList(std::optional<std::vector<T>>& values) {
  if (values) std::sort(values->begin(), values->end());
}
template <typename T>
bool contains(const std::optional<std::vector<T>>& set, T value) noexcept {
  return !set || std::binary_search(set->begin(), set->end(), value);
}
}  // namespace

FilterMatcher::FilterMatcher(const FilterSpec& spec) : sorted_(spec) {
  sortList(sorted_.budgets);
  sortList(sorted_.advertisers);
  sortList(sorted_.campaigns);
  sortList(sorted_.categories);
  sortList(sorted_.geos);
  sortList(sorted_.excludedAdvertisers);
  sortList(sorted_.ids);
}

bool FilterMatcher::admits(int64_t id, const AdAttributes& a) const noexcept {
  const FilterSpec& s = sorted_;
  if (s.active && static_cast<bool>(a.active) != *s.active) return false;
  if (!contains(s.budgets, a.budget) || !contains(s.advertisers, a.advertiser) || !contains(s.campaigns, a.campaign) ||
      !contains(s.categories, a.category) || !contains(s.geos, a.geo) || !contains(s.ids, id)) {
    return false;
  }
  return !(s.excludedAdvertisers &&
           std::binary_search(s.excludedAdvertisers->begin(), s.excludedAdvertisers->end(), a.advertiser));
}

Bitmap FilterMatcher::compile(const Catalog& catalog) const {
  Bitmap bits(catalog.slots());
  const auto test = [&](size_t slot) {
    if (admits(catalog.id(slot), catalog.attributes(slot))) bits.set(slot);
  };
  if (sorted_.ids && sorted_.ids->size() < catalog.live()) {
    // A short id list: look its ads up rather than test every live slot.
    for (int64_t id : *sorted_.ids) {
      if (auto slot = catalog.find(id)) test(*slot);
    }
  } else {
    catalog.liveSlots().forEach(test);
  }
  return bits;
}

Bitmap compileFilter(const Catalog& catalog, const FilterSpec& spec) { return FilterMatcher(spec).compile(catalog); }

}  // namespace cangen
