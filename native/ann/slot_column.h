#pragma once
// Per-slot data another component derives from each ad's vector and keeps in the index's slot
// numbering (a learned scorer's precomputed ad side), so that it shares the index's ids,
// liveness and compiled filters instead of keeping a second table of the same ads. The index
// drives it, under its exclusive lock: every upsert stages the new slots, every compaction
// renumbers it. Readers read it under the index's shared lock (AdIndex::readSlots).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace cangen {

class SlotColumn {
 public:
  virtual ~SlotColumn() = default;
  // Upsert, prepare: derives slots first .. first+n-1 from their vectors (n x dim, as the index
  // stores them: unit length for cosine). No reader reads these slots before the catalog's
  // commit, so this changes nothing visible. May throw.
  virtual void stage(const float* vectors, size_t n, size_t first) = 0;
  // Compaction, prepare: a copy in which slot keep[i] (ascending) becomes slot i, set aside.
  // May throw.
  virtual void prepareKeep(const std::vector<uint32_t>& keep) = 0;
  // Compaction, commit: the copy replaces the column. Cannot fail.
  virtual void commitKeep() noexcept = 0;
};

// The columns attached to one index. Weak references: a component that goes away detaches.
// Used under the index's exclusive lock only.
class SlotColumns {
 public:
  void add(const std::shared_ptr<SlotColumn>& column);
  // The attached columns still alive, held for the write about to drive them. May throw.
  std::vector<std::shared_ptr<SlotColumn>> live();

 private:
  std::vector<std::weak_ptr<SlotColumn>> columns_;
};

}  // namespace cangen
