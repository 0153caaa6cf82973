#pragma once
// Who is in the corpus: ids by slot, which slots are live, and each ad's eligibility attributes.
// Slots are append-only (an upsert kills the old slot and appends a new one) until compaction
// renumbers them, so every structure indexed by slot stays valid between compactions.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "ann/bitmap.h"

namespace cangen {

enum class BudgetState : uint8_t { Available = 0, Limited = 1, Exhausted = 2 };

struct AdAttributes {
  uint8_t active = 1;
  uint8_t budget = 0;  // BudgetState
  uint32_t advertiser = 0;
  uint32_t campaign = 0;
  uint32_t category = 0;
  uint32_t geo = 0;
};

class Catalog {
 public:
  size_t slots() const { return ids_.size(); }
  size_t live() const { return live_; }
  std::optional<uint32_t> find(int64_t id) const {
    auto it = slotOfId_.find(id);
    if (it == slotOfId_.end()) return std::nullopt;
    return it->second;
  }
  int64_t id(size_t slot) const { return ids_[slot]; }
  const AdAttributes& attributes(size_t slot) const { return attributes_[slot]; }
  const Bitmap& liveSlots() const { return liveSlots_; }
  bool isLive(size_t slot) const { return liveSlots_.test(slot); }

  // An upsert of n ids at slots slots() .. slots()+n-1 in two steps, so that the index can do
  // its other fallible work in between: prepareUpsert allocates everything (and may throw,
  // changing nothing visible), then exactly one of commitUpsert (cannot fail) or cancelUpsert.
  // Between the two the catalog must not be read.
  struct PreparedUpsert {
    size_t first = 0;                // the first new slot
    std::vector<uint32_t> replaced;  // slots of ids already live, ascending: killed at commit
    std::vector<int64_t> inserted;   // ids not live before, given a map entry ahead of the commit
  };
  PreparedUpsert prepareUpsert(const int64_t* ids, size_t n);
  void commitUpsert(const PreparedUpsert& prepared, const int64_t* ids, const AdAttributes* attributes,
                    size_t n) noexcept;
  void cancelUpsert(const PreparedUpsert& prepared) noexcept;

  void setAttributes(uint32_t slot, const AdAttributes& attributes) { attributes_[slot] = attributes; }
  // Marks a live slot dead (its id disappears from the corpus). Cannot fail.
  void kill(uint32_t slot) noexcept;
  // A catalog of the listed slots (ascending), renumbered 0..n-1, each live or dead as it is
  // here; this one is unchanged.
  Catalog kept(const std::vector<uint32_t>& slots) const;
  void swap(Catalog& other) noexcept;
  size_t bytes() const;

  // Raw access for persistence.
  const std::vector<int64_t>& ids() const { return ids_; }
  const std::vector<AdAttributes>& allAttributes() const { return attributes_; }
  void restore(std::vector<int64_t> ids, std::vector<AdAttributes> attributes, Bitmap live);

 private:
  std::vector<int64_t> ids_;
  std::vector<AdAttributes> attributes_;
  Bitmap liveSlots_;
  std::unordered_map<int64_t, uint32_t> slotOfId_;  // live ids only
  size_t live_ = 0;
};

}  // namespace cangen
