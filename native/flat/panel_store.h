#pragma once
// The packed corpus of the exact kernels (layout in flat/panels.h), by slot, with the per-ad
// bias the L2 metric needs and, when a reduced precision is chosen, the bf16 or int8 copy the
// scan reads first (flat/reduced_panels.h). Not synchronised: its owner holds the lock.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "common/aligned_buffer.h"
#include "common/metric.h"
#include "flat/panels.h"
#include "flat/reduced_panels.h"

namespace cangen {

class PanelStore {
 public:
  PanelStore(int dim, Metric metric, Precision precision = Precision::Fp32) : dim_(dim), metric_(metric) {
    if (precision != Precision::Fp32) reduced_.emplace(dim, precision);
  }

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
  // Exchanges contents with a store of the same dimension, metric and precision.
  void swap(PanelStore& other) noexcept;

  PanelView view() const {
    return {panels_.data(), metric_ == Metric::L2 ? bias_.data() : nullptr, count_, dim_};
  }
  // The reduced copy, or nullptr at fp32.
  const ReducedPanels* reduced() const { return reduced_ ? &*reduced_ : nullptr; }
  size_t bytes() const {
    return panels_.size() * sizeof(float) + bias_.size() * sizeof(float) + (reduced_ ? reduced_->bytes() : 0);
  }

 private:
  const int dim_;
  const Metric metric_;
  AlignedBuffer<float> panels_;
  AlignedBuffer<float> bias_;  // -|x|^2 per slot for L2, padded to whole panels
  std::optional<ReducedPanels> reduced_;
  size_t count_ = 0;
};

}  // namespace cangen
