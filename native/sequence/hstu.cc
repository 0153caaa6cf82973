// HSTU (the trainer's models/hstu.py) over one user's window, without padding: padded keys are
// never attended by a real query and the biases depend only on i - j, so the last state equals
// the trainer's right-aligned, left-padded run. A window is encoded by extending an empty cache,
// so a full run and an incremental one do the same arithmetic.
#include <algorithm>
#include <cmath>

#include "sequence/encoders.h"

namespace cangen::sequence {

int timeBucket(double gap, int buckets) {
  const float clamped = static_cast<float>(std::max(std::fabs(gap), 1.0));
  const float bucket = std::floor(std::log(clamped) / 0.301f);
  return static_cast<int>(std::min(std::max(bucket, 0.0f), static_cast<float>(buckets)));
}

size_t HstuCache::bytes() const {
  size_t floats = state.capacity();
  for (const auto& k : keys) floats += k.capacity();
  for (const auto& v : values) floats += v.capacity();
  return sizeof(HstuCache) + floats * sizeof(float) + times.capacity() * sizeof(double);
}

HstuEncoder::HstuEncoder(const SequenceModel& m) : EncoderCommon(m), timeBuckets_(m.timeBuckets) {
  for (const auto& w : m.hstuLayers) layers_.push_back({Linear(w.uvqk), Linear(w.out), w.positionBias, w.timeBias});
}

void HstuEncoder::lastState(const float* tokens, int n, const double* times, float* out) const {
  HstuCache cache;
  extend(cache, tokens, n, times, out);
}

void HstuEncoder::extend(HstuCache& cache, const float* tokens, int m, const double* times, float* out) const {
  const int d = dim_, dh = d / heads_, width = 4 * d;
  const int start = cache.length, n = start + m;
  const float scale = 1.0f / static_cast<float>(maxLen_);
  if (cache.keys.empty()) {  // room for a whole window at once: no regrowth, and bytes() says what a session costs
    cache.keys.resize(layers_.size());
    cache.values.resize(layers_.size());
    for (size_t l = 0; l < layers_.size(); ++l) {
      cache.keys[l].reserve(static_cast<size_t>(maxLen_) * d);
      cache.values[l].reserve(static_cast<size_t>(maxLen_) * d);
    }
    if (times) cache.times.reserve(maxLen_);
  }
  // The new rows only: x is row r = position start + r.
  std::vector<float> x(tokens, tokens + static_cast<size_t>(m) * d), normed(x.size()), uvqk(static_cast<size_t>(m) * width),
      attended(x.size()), update(x.size()), weights(n);
  std::vector<int> buckets;  // m x n: bucket of (start + r, j)
  if (times) {
    cache.times.insert(cache.times.end(), times, times + m);
    buckets.resize(static_cast<size_t>(m) * n);
    for (int r = 0; r < m; ++r)
      for (int j = 0; j <= start + r; ++j) buckets[static_cast<size_t>(r) * n + j] = timeBucket(cache.times[start + r] - cache.times[j], timeBuckets_);
  }
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    std::copy(x.begin(), x.end(), normed.begin());
    layerNorm(normed.data(), m, d);
    layer.uvqk.apply(normed.data(), m, uvqk.data());
    siluInPlace(uvqk.data(), uvqk.size());
    std::vector<float>& keys = cache.keys[l];
    std::vector<float>& values = cache.values[l];
    for (int r = 0; r < m; ++r) {
      const float* row = uvqk.data() + static_cast<size_t>(r) * width;
      keys.insert(keys.end(), row + 3 * d, row + 4 * d);
      values.insert(values.end(), row + d, row + 2 * d);
    }
    // Every layer needs every position's keys and values; only the last layer's last query is read.
    const int first = l + 1 == layers_.size() ? m - 1 : 0;
    std::fill(attended.begin(), attended.end(), 0.0f);
    for (int r = first; r < m; ++r) {
      const int i = start + r, lo = firstKey(i, window_), count = i - lo + 1;
      const float* query = uvqk.data() + static_cast<size_t>(r) * width + 2 * d;
      float* a = attended.data() + static_cast<size_t>(r) * d;
      for (int h = 0; h < heads_; ++h) {
        // The weights of every allowed key at once: SiLU(q.k + rab) / maxLen, then sum w_j v_j.
        for (int j = lo; j <= i; ++j) {
          float bias = layer.positionBias[std::min(i - j, maxLen_ - 1)];
          if (times) bias += layer.timeBias[buckets[static_cast<size_t>(r) * n + j]];
          weights[j - lo] = dot(query + h * dh, keys.data() + static_cast<size_t>(j) * d + h * dh, dh) + bias;
        }
        siluInPlace(weights.data(), count);
        for (int j = lo; j <= i; ++j) {
          const float w = weights[j - lo] * scale;
          const float* value = values.data() + static_cast<size_t>(j) * d + h * dh;
          for (int c = 0; c < dh; ++c) a[h * dh + c] += w * value[c];
        }
      }
    }
    const int rows = m - first;
    float* a = attended.data() + static_cast<size_t>(first) * d;
    layerNorm(a, rows, d);
    for (int r = first; r < m; ++r) {
      const float* u = uvqk.data() + static_cast<size_t>(r) * width;
      for (int c = 0; c < d; ++c) attended[static_cast<size_t>(r) * d + c] *= u[c];
    }
    layer.out.apply(a, rows, update.data());
    for (size_t c = 0; c < static_cast<size_t>(rows) * d; ++c) x[static_cast<size_t>(first) * d + c] += update[c];
  }
  cache.length = n;
  cache.state.assign(x.data() + static_cast<size_t>(m - 1) * d, x.data() + static_cast<size_t>(m) * d);
  layerNorm(cache.state.data(), 1, d, finalGamma_.data(), finalBeta_.data());
  if (out) std::copy(cache.state.begin(), cache.state.end(), out);
}

}  // namespace cangen::sequence
