#pragma once
// The packed corpus of the exact kernels (layout in flat/panels.h), by slot, with the per-ad
// bias the L2 metric needs. Not synchronised: its owner holds the lock.
#include <cstddef>
#include <cstdint>

#include "common/aligned_buffer.h"
#include "common/metric.h"
#include "flat/panels.h"

namespace cangen {

class PanelStore {
 public:
  PanelStore(int dim, Metric metric) : dim_(dim), metric_(metric) {}

  int dim() const { return dim_; }
  size_t size() const { return count_; }
  // Room for `slots` slots: an append that stays within it cannot fail.
  void reserve(size_t slots);
  // Appends n row-major vectors (already normalised for cosine) at slots size() .. size()+n-1.
  // All or nothing.
  void append(const float* rows, size_t n);
  // Overwrites slot `slot` (< size()) with a row-major vector.
  void set(size_t slot, const float* row);
  // Copies slot `slot` back out as a row-major vector of dim floats.
  void read(size_t slot, float* row) const;
  // Keeps only the slots listed (in that order), renumbering them 0..n-1. All or nothing.
  void keep(const uint32_t* slots, size_t n);
  void clear();
  // Exchanges contents with a store of the same dimension and metric.
  void swap(PanelStore& other) noexcept;

  PanelView view() const {
    return {panels_.data(), metric_ == Metric::L2 ? bias_.data() : nullptr, count_, dim_};
  }
  size_t bytes() const { return panels_.size() * sizeof(float) + bias_.size() * sizeof(float); }

 private:
  const int dim_;
  const Metric metric_;
  AlignedBuffer<float> panels_;
  AlignedBuffer<float> bias_;  // -|x|^2 per slot for L2, padded to whole panels
  size_t count_ = 0;
};

}  // namespace cangen
