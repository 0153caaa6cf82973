#include "ann/catalog.h"

#include "common/error.h"

namespace cangen {

uint32_t Catalog::append(int64_t id, const AdAttributes& attributes) {
  if (ids_.size() >= UINT32_MAX) throw Error(ErrorCode::InvalidArgument, "An index holds at most 4294967295 ad slots");
  const uint32_t slot = static_cast<uint32_t>(ids_.size());
  ids_.push_back(id);
  attributes_.push_back(attributes);
  liveSlots_.resize(ids_.size());
  liveSlots_.set(slot);
  slotOfId_[id] = slot;
  ++live_;
  return slot;
}

void Catalog::kill(uint32_t slot) {
  if (!liveSlots_.test(slot)) return;
  liveSlots_.clear(slot);
  slotOfId_.erase(ids_[slot]);
  --live_;
}

void Catalog::keep(const std::vector<uint32_t>& slots) {
  std::vector<int64_t> ids;
  std::vector<AdAttributes> attributes;
  ids.reserve(slots.size());
  attributes.reserve(slots.size());
  for (uint32_t s : slots) {
    ids.push_back(ids_[s]);
    attributes.push_back(attributes_[s]);
  }
  restore(std::move(ids), std::move(attributes), Bitmap(slots.size(), true));
}

void Catalog::reserve(size_t slots) {
  ids_.reserve(slots);
  attributes_.reserve(slots);
  slotOfId_.reserve(slots);
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
