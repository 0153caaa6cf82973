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

  // Appends a live slot for `id` (which must not be live) and returns it.
  uint32_t append(int64_t id, const AdAttributes& attributes);
  void setAttributes(uint32_t slot, const AdAttributes& attributes) { attributes_[slot] = attributes; }
  // Marks a live slot dead (its id disappears from the corpus).
  void kill(uint32_t slot);
  // Keeps the listed live slots (ascending), renumbered 0..n-1.
  void keep(const std::vector<uint32_t>& slots);
  void reserve(size_t slots);
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
