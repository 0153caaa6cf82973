#include "ann/filter_registry.h"

#include <algorithm>

#include "common/all_or_nothing.h"

namespace cangen {

CompiledFilter::CompiledFilter(const FilterSpec& spec, const Catalog& catalog, uint64_t registry)
    : matcher_(spec), bits_(matcher_.compile(catalog)), count_(bits_.count()), registry_(registry) {}

uint64_t FilterRegistry::nextIdentity() noexcept {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void CompiledFilter::retest(const Catalog& catalog, size_t slot) noexcept {
  const bool admitted = catalog.isLive(slot) && matcher_.admits(catalog.id(slot), catalog.attributes(slot));
  if (admitted == bits_.test(slot)) return;
  if (admitted) {
    bits_.set(slot);
    count_.fetch_add(1, std::memory_order_relaxed);
  } else {
    bits_.clear(slot);
    count_.fetch_sub(1, std::memory_order_relaxed);
  }
}

std::shared_ptr<CompiledFilter> FilterRegistry::add(const FilterSpec& spec, const Catalog& catalog) {
  auto filter = std::make_shared<CompiledFilter>(spec, catalog, identity_);
  std::lock_guard guard(members_);
  pruneExpired();
  filters_.push_back(filter);
  return filter;
}

void FilterRegistry::pruneExpired() noexcept {
  filters_.erase(std::remove_if(filters_.begin(), filters_.end(), [](const auto& f) { return f.expired(); }), filters_.end());
}

void FilterRegistry::reserve(size_t slots) {
  pruneExpired();
  for (const auto& weak : filters_) {
    if (auto filter = weak.lock()) reserveRoom(filter->bits_.words, (slots + 63) / 64);
  }
}

void FilterRegistry::update(const Catalog& catalog, const uint32_t* changed, size_t n, size_t appendedFrom) noexcept {
  const size_t slots = catalog.slots();
  for (const auto& weak : filters_) {
    auto filter = weak.lock();
    if (!filter) continue;
    filter->bits_.resize(slots);  // new words are zero; within the room reserve() made
    for (size_t i = 0; i < n; ++i) filter->retest(catalog, changed[i]);
    for (size_t s = appendedFrom; s < slots; ++s) filter->retest(catalog, s);
    slotUpdates_.fetch_add(n + (slots - std::min(appendedFrom, slots)), std::memory_order_relaxed);
  }
}

void FilterRegistry::compact(const std::vector<uint32_t>& keep) noexcept {
  for (const auto& weak : filters_) {
    auto filter = weak.lock();
    if (!filter) continue;
    Bitmap& bits = filter->bits_;
    // In place: keep[i] >= i, so bit keep[i] is read before anything writes over it.
    for (size_t i = 0; i < keep.size(); ++i) {
      if (bits.test(keep[i])) {
        bits.set(i);
      } else {
        bits.clear(i);
      }
    }
    bits.words.resize((keep.size() + 63) / 64);  // shrinks: no allocation
    if (keep.size() % 64) bits.words.back() &= (uint64_t{1} << (keep.size() % 64)) - 1;
  }
}

size_t FilterRegistry::live() const {
  std::lock_guard guard(members_);
  return static_cast<size_t>(std::count_if(filters_.begin(), filters_.end(), [](const auto& f) { return !f.expired(); }));
}

}  // namespace cangen
