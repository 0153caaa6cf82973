#include "flat/panel_store.h"

#include <algorithm>
#include <vector>

#include "common/vectors.h"

namespace cangen {

void PanelStore::reserve(size_t slots) {
  const size_t panels = panelCount(slots);
  panels_.reserveRoom(panels * panelFloats(dim_));
  if (metric_ == Metric::L2) bias_.reserveRoom(panels * kPanelWidth);
  if (reduced_) reduced_->reserveRoom(slots);
  // All reserved before any grows: a failed reservation leaves the store as it was.
  panels_.resize(std::max(panels_.size(), panels * panelFloats(dim_)));
  if (metric_ == Metric::L2) bias_.resize(std::max(bias_.size(), panels * kPanelWidth));
  if (reduced_) reduced_->resize(slots);
}

void PanelStore::append(const float* rows, size_t n) {
  reserve(count_ + n);
  count_ += n;
  for (size_t i = 0; i < n; ++i) set(count_ - n + i, rows + i * dim_);
}

void PanelStore::set(size_t slot, const float* row) {
  for (int j = 0; j < dim_; ++j) panels_[panelOffset(slot, dim_, j)] = row[j];
  if (metric_ == Metric::L2) bias_[slot] = static_cast<float>(-squaredNorm(row, dim_));
  if (reduced_) reduced_->set(slot, row);
}

void PanelStore::read(size_t slot, float* row) const {
  for (int j = 0; j < dim_; ++j) row[j] = panels_[panelOffset(slot, dim_, j)];
}

void PanelStore::keep(const uint32_t* slots, size_t n) {
  PanelStore kept(dim_, metric_, reduced_ ? reduced_->precision() : Precision::Fp32);
  kept.reserve(n);
  kept.count_ = n;
  std::vector<float> row(dim_);
  for (size_t i = 0; i < n; ++i) {
    read(slots[i], row.data());
    kept.set(i, row.data());
  }
  swap(kept);
}

void PanelStore::swap(PanelStore& other) noexcept {
  panels_.swap(other.panels_);
  bias_.swap(other.bias_);
  if (reduced_ && other.reduced_) reduced_->swap(*other.reduced_);
  std::swap(count_, other.count_);
}

void PanelStore::clear() {
  panels_ = AlignedBuffer<float>();
  bias_ = AlignedBuffer<float>();
  if (reduced_) reduced_->clear();
  count_ = 0;
}

}  // namespace cangen
