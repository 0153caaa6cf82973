#include "flat/topk.h"

#include <algorithm>
#include <cmath>

namespace cangen {

namespace {
bool better(const ScoredSlot& a, const ScoredSlot& b) {
  return a.score > b.score || (a.score == b.score && a.slot < b.slot);
}
}  // namespace

void TopKCollector::reset(size_t k) {
  k_ = std::max<size_t>(k, 1);
  // The buffer grows only as candidates arrive, so a large k costs nothing on small corpora.
  capacity_ = std::max<size_t>(2 * k_, 64);
  margin_ = 0;
  threshold_ = -std::numeric_limits<float>::infinity();
  buffer_.clear();
  if (capacity_ <= 4096) buffer_.reserve(capacity_);  // small k: no regrowth on the hot path
}

void TopKCollector::shrink() {
  if (buffer_.size() <= k_) return;
  std::nth_element(buffer_.begin(), buffer_.begin() + (k_ - 1), buffer_.end(), better);
  if (margin_ == 0) {
    buffer_.resize(k_);
    threshold_ = buffer_[k_ - 1].score;
    return;
  }
  // One step down: the rounded difference must not sit above the exact one.
  threshold_ = std::nextafter(buffer_[k_ - 1].score - margin_, -std::numeric_limits<float>::infinity());
  const float floor = threshold_;
  buffer_.erase(std::partition(buffer_.begin() + k_, buffer_.end(), [floor](const ScoredSlot& c) { return c.score > floor; }),
                buffer_.end());
  // The window may hold many candidates: grow so that the cuts stay amortised O(1) per push.
  capacity_ = std::max(capacity_, 2 * buffer_.size());
}

void TopKCollector::append(const TopKCollector& other) {
  for (const ScoredSlot& c : other.buffer_) {
    if (c.score > threshold_) push(c.score, c.slot);
  }
}

std::vector<ScoredSlot> TopKCollector::sorted() {
  shrink();
  std::sort(buffer_.begin(), buffer_.end(), better);
  return buffer_;
}

}  // namespace cangen
