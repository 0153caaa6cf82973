#include "ann/catalog.h"

#include <algorithm>

#include "common/all_or_nothing.h"
#include "common/error.h"

namespace cangen {

Catalog::PreparedUpsert Catalog::prepareUpsert(const int64_t* ids, size_t n) {
  PreparedUpsert prepared;
  prepared.first = ids_.size();
  if (prepared.first + n > UINT32_MAX) throw Error(ErrorCode::InvalidArgument, "An index holds at most 4294967295 ad slots");
  prepared.replaced.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (auto slot = find(ids[i])) prepared.replaced.push_back(*slot);
  }
  std::sort(prepared.replaced.begin(), prepared.replaced.end());
  const size_t slots = prepared.first + n;
  reserveRoom(ids_, slots);
  reserveRoom(attributes_, slots);
  reserveRoom(liveSlots_.words, (slots + 63) / 64);
  // Placeholder entries for the new ids: the node allocations are the map's only fallible part.
  prepared.inserted = insertAllOrNothing(
      slotOfId_, ids, n, [&](size_t i) { return slotOfId_.count(ids[i]) == 0; },
      [&](size_t i) { return static_cast<uint32_t>(prepared.first + i); });
  return prepared;
}

void Catalog::commitUpsert(const PreparedUpsert& prepared, const int64_t* ids, const AdAttributes* attributes,
                           size_t n) noexcept {
  for (uint32_t slot : prepared.replaced) {
    liveSlots_.clear(slot);
    --live_;
  }
  // Everything below stays within the capacity reserved by prepareUpsert.
  liveSlots_.resize(prepared.first + n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t slot = static_cast<uint32_t>(prepared.first + i);
    ids_.push_back(ids[i]);
    attributes_.push_back(attributes ? attributes[i] : AdAttributes{});
    liveSlots_.set(slot);
    slotOfId_.find(ids[i])->second = slot;
    ++live_;
  }
}

void Catalog::cancelUpsert(const PreparedUpsert& prepared) noexcept { eraseKeys(slotOfId_, prepared.inserted); }

void Catalog::kill(uint32_t slot) noexcept {
  if (!liveSlots_.test(slot)) return;
  liveSlots_.clear(slot);
  slotOfId_.erase(ids_[slot]);
  --live_;
}

Catalog Catalog::kept(const std::vector<uint32_t>& slots) const {
  std::vector<int64_t> ids;
  std::vector<AdAttributes> attributes;
  Bitmap live(slots.size());
  ids.reserve(slots.size());
  attributes.reserve(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    ids.push_back(ids_[slots[i]]);
    attributes.push_back(attributes_[slots[i]]);
    if (liveSlots_.test(slots[i])) live.set(i);
  }
  Catalog result;
  result.restore(std::move(ids), std::move(attributes), std::move(live));
  return result;
}

void Catalog::swap(Catalog& other) noexcept {
  ids_.swap(other.ids_);
  attributes_.swap(other.attributes_);
  liveSlots_.words.swap(other.liveSlots_.words);
  slotOfId_.swap(other.slotOfId_);
  std::swap(live_, other.live_);
}

size_t Catalog::bytes() const {
  // ids + attributes + live bits + the hash map's nodes and buckets (libstdc++: ~32 B + 8 B).
  return ids_.capacity() * sizeof(int64_t) + attributes_.capacity() * sizeof(AdAttributes) +
         liveSlots_.words.capacity() * sizeof(uint64_t) + slotOfId_.size() * 32 +
         slotOfId_.bucket_count() * sizeof(void*);
}

void Catalog::restore(std::vector<int64_t> ids, std::vector<AdAttributes> attributes, Bitmap live) {
  ids_ = std::move(ids);
  attributes_ = std::move(attributes);
  liveSlots_ = std::move(live);
  slotOfId_.clear();
  slotOfId_.reserve(ids_.size());
  live_ = 0;
  for (size_t s = 0; s < ids_.size(); ++s) {
    if (!liveSlots_.test(s)) continue;
    if (!slotOfId_.emplace(ids_[s], static_cast<uint32_t>(s)).second) {
      throw Error(ErrorCode::CorruptFile, "Corrupt index file: id " + std::to_string(ids_[s]) + " is live twice");
    }
    ++live_;
  }
}

}  // namespace cangen
