#pragma once
// Top-k selection that never materialises all scores: candidates above the running threshold
// are appended to a buffer, and when the buffer reaches twice k it is cut back to the best k by
// quickselect, which raises the threshold. Amortised O(1) per candidate, any k.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace cangen {

struct ScoredSlot {
  float score;
  uint32_t slot;
};

class TopKCollector {
 public:
  explicit TopKCollector(size_t k = 1) { reset(k); }

  void reset(size_t k);
  // Keeps, beside the best k, every candidate within `margin` of the k-th best (a reduced-precision
  // scan's window, see flat/reduced_panels.h): threshold() is then the k-th best minus it.
  void setMargin(float margin) { margin_ = margin; }
  // Scores at or below this can never enter the top k (or the window).
  float threshold() const { return threshold_; }
  void push(float score, uint32_t slot) {
    buffer_.push_back({score, slot});
    if (buffer_.size() >= capacity_) shrink();
  }
  // Candidates gathered so far (unordered, possibly more than k).
  const std::vector<ScoredSlot>& candidates() const { return buffer_; }
  void append(const TopKCollector& other);
  // The best min(k, candidates) in descending score order (ties: lower slot first).
  std::vector<ScoredSlot> sorted();

 private:
  void shrink();

  size_t k_ = 1;
  size_t capacity_ = 2;
  float margin_ = 0;
  float threshold_ = -std::numeric_limits<float>::infinity();
  std::vector<ScoredSlot> buffer_;
};

}  // namespace cangen
