#include "ann/filter.h"

#include <algorithm>

namespace cangen {

namespace {
template <typename T>
std::optional<std::vector<T>> sorted(const std::optional<std::vector<T>>& values) {
  if (!values) return std::nullopt;
  std::vector<T> out = *values;
  std::sort(out.begin(), out.end());
  return out;
}
template <typename T>
bool contains(const std::optional<std::vector<T>>& set, T value) {
  return !set || std::binary_search(set->begin(), set->end(), value);
}
}  // namespace

Bitmap compileFilter(const Catalog& catalog, const FilterSpec& spec) {
  if (spec.ids) {
    Bitmap bits(catalog.slots());
    for (int64_t id : *spec.ids) {
      if (auto slot = catalog.find(id)) bits.set(*slot);
    }
    if (!spec.active && !spec.budgets && !spec.advertisers && !spec.campaigns && !spec.categories && !spec.geos &&
        !spec.excludedAdvertisers) {
      return bits;
    }
    FilterSpec rest = spec;
    rest.ids.reset();
    Bitmap others = compileFilter(catalog, rest);
    for (size_t w = 0; w < bits.words.size(); ++w) bits.words[w] &= others.words[w];
    return bits;
  }
  const auto budgets = sorted(spec.budgets);
  const auto advertisers = sorted(spec.advertisers);
  const auto campaigns = sorted(spec.campaigns);
  const auto categories = sorted(spec.categories);
  const auto geos = sorted(spec.geos);
  const auto excluded = sorted(spec.excludedAdvertisers);
  Bitmap bits(catalog.slots());
  catalog.liveSlots().forEach([&](size_t slot) {
    const AdAttributes& a = catalog.attributes(slot);
    if (spec.active && static_cast<bool>(a.active) != *spec.active) return;
    if (!contains(budgets, a.budget) || !contains(advertisers, a.advertiser) || !contains(campaigns, a.campaign) ||
        !contains(categories, a.category) || !contains(geos, a.geo)) {
      return;
    }
    if (excluded && std::binary_search(excluded->begin(), excluded->end(), a.advertiser)) return;
    bits.set(slot);
  });
  return bits;
}

}  // namespace cangen
