#pragma once
// Where each slot's entry sits in an IVF index's inverted lists (list number and offset in it),
// so that a removal finds its entry at once instead of scanning every list: O(1) per ad whatever
// nlist is. One 64-bit word per slot (8 bytes per ad, dead slots included until compaction).
// Kept by the list edits in ann/faiss_writes.h; rebuilt from the lists on load.
//
// It applies to IVF indexes (optionally behind a pre-transform such as OPQ) whose lists are
// FAISS's plain arrays and that keep no direct map: every IVF this project builds or loads.
// Others (tracked() false) fall back to FAISS's own removal.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace faiss {
struct Index;
struct ArrayInvertedLists;
}  // namespace faiss

namespace cangen {

class ListPositions {
 public:
  // Lists up to 2^24 (AnnLimits::kMaxNlist) in the high bits, offsets below 2^40 in the low ones.
  static constexpr int kOffsetBits = 40;
  static constexpr uint64_t kAbsent = ~uint64_t{0};  // not in any list (dead, or never assigned)

  // The array lists of an IVF index whose entries this map can follow, or null.
  static faiss::ArrayInvertedLists* trackedLists(faiss::Index& index);

  size_t slots() const { return positions_.size(); }
  bool has(size_t slot) const { return slot < positions_.size() && positions_[slot] != kAbsent; }
  size_t list(size_t slot) const { return static_cast<size_t>(positions_[slot] >> kOffsetBits); }
  size_t offset(size_t slot) const { return static_cast<size_t>(positions_[slot] & ((uint64_t{1} << kOffsetBits) - 1)); }
  size_t bytes() const { return positions_.capacity() * sizeof(uint64_t); }

  // Room for `slots` slots, so that the edits below cannot fail. May throw.
  void reserve(size_t slots);
  // Slots slots() .. slots - 1 come into being, absent from every list (within reserved room).
  void extendTo(size_t slots) noexcept;
  void place(size_t slot, size_t list, size_t offset) noexcept {
    positions_[slot] = (static_cast<uint64_t>(list) << kOffsetBits) | offset;
  }
  void forget(size_t slot) noexcept { positions_[slot] = kAbsent; }
  // After compaction: new slot i is old slot kept[i] (ascending).
  void renumber(const std::vector<uint32_t>& kept) noexcept;
  // From the lists as they are (load): O(entries + nlist). Throws on an entry out of [0, slots).
  void rebuild(const faiss::ArrayInvertedLists& lists, size_t slots);
  void clear() noexcept { positions_.clear(); }

 private:
  std::vector<uint64_t> positions_;
};

}  // namespace cangen
