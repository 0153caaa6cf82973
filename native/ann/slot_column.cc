#include "ann/slot_column.h"

#include <algorithm>

namespace cangen {

void SlotColumns::add(const std::shared_ptr<SlotColumn>& column) {
  live();  // prunes the expired
  columns_.push_back(column);
}

std::vector<std::shared_ptr<SlotColumn>> SlotColumns::live() {
  std::vector<std::shared_ptr<SlotColumn>> out;
  for (const auto& weak : columns_)
    if (auto column = weak.lock()) out.push_back(std::move(column));
  columns_.erase(std::remove_if(columns_.begin(), columns_.end(), [](const auto& c) { return c.expired(); }), columns_.end());
  return out;
}

}  // namespace cangen
