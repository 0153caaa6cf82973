#pragma once
// Compiled filters that never go stale. An index keeps a registry of the filters compiled
// against it, and every write updates their bits for the slots it touches (upsert: the
// replaced slots and the appended ones; remove: the killed ones; setAttributes: the changed
// ones; compaction: every bit renumbered). So a filter compiled once serves every later search,
// and no search ever recompiles one over the whole corpus.
//
// Writes follow the index's all-or-nothing discipline: reserve() (prepare: may allocate and
// throw, changes nothing visible), then update()/compact() (commit: cannot fail).
//
// Locking: a filter's bits are read under the owning index's shared lock and changed only under
// its exclusive lock. The registry holds weak references: a filter its users dropped expires and
// is pruned by the next compile or write.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "ann/bitmap.h"
#include "ann/catalog.h"
#include "ann/filter.h"

namespace cangen {

class CompiledFilter {
 public:
  CompiledFilter(const FilterSpec& spec, const Catalog& catalog, uint64_t registry);

  // Eligible live ads now; readable without the index's lock.
  size_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  // One bit per slot of the owner's catalog. Only under the owning index's shared lock.
  const Bitmap& bits() const noexcept { return bits_; }

 private:
  friend class FilterRegistry;
  // Sets the slot's bit to whether it is live and admitted. Within the bitmap's size.
  void retest(const Catalog& catalog, size_t slot) noexcept;

  FilterMatcher matcher_;
  Bitmap bits_;
  std::atomic<size_t> count_{0};
  uint64_t registry_;  // the identity of the registry (index) that keeps it current
};

class FilterRegistry {
 public:
  // Compiles `spec` over `catalog` and registers the result. The caller holds the index's lock
  // (shared is enough: compiles may run side by side, no write runs meanwhile).
  std::shared_ptr<CompiledFilter> add(const FilterSpec& spec, const Catalog& catalog);
  // Whether this registry keeps `filter` current (it was compiled by this index, not another one,
  // nor one since destroyed at the same address).
  bool owns(const CompiledFilter& filter) const noexcept { return filter.registry_ == identity_; }

  // The rest needs the index's exclusive lock.
  // Prepare of a write that grows the catalog to `slots` slots: prunes expired filters and makes
  // room for `slots` bits in every live one. May throw; changes no filter's bits.
  void reserve(size_t slots);
  // Commit, after the catalog's commit: re-tests the `n` slots in `changed` and every slot from
  // `appendedFrom` to the catalog's end (bitmaps grow within reserve()'s room). Cannot fail.
  void update(const Catalog& catalog, const uint32_t* changed, size_t n, size_t appendedFrom) noexcept;
  // Commit of a compaction: slot keep[i] (ascending) becomes slot i in every filter. Cannot fail.
  void compact(const std::vector<uint32_t>& keep) noexcept;

  // Registered filters not yet dropped (those dropped but not yet pruned are not counted).
  size_t live() const;
  // Slot bits re-tested by writes since the index was made (a measure of the writes' filter work).
  uint64_t slotUpdates() const noexcept { return slotUpdates_.load(std::memory_order_relaxed); }

 private:
  void pruneExpired() noexcept;

  static uint64_t nextIdentity() noexcept;

  const uint64_t identity_ = nextIdentity();
  mutable std::mutex members_;  // add() against add() (writes exclude add() by the index's lock)
  std::vector<std::weak_ptr<CompiledFilter>> filters_;
  std::atomic<uint64_t> slotUpdates_{0};
};

}  // namespace cangen
