// HSTU (the trainer's models/hstu.py) over one user's window, without padding: padded keys are
// never attended by a real query and the biases depend only on i - j, so the last state equals
// the trainer's right-aligned, left-padded run.
#include <algorithm>
#include <cmath>

#include "sequence/encoders.h"

namespace cangen::sequence {

int timeBucket(double gap, int buckets) {
  const float clamped = static_cast<float>(std::max(std::fabs(gap), 1.0));
  const float bucket = std::floor(std::log(clamped) / 0.301f);
  return static_cast<int>(std::min(std::max(bucket, 0.0f), static_cast<float>(buckets)));
}

HstuEncoder::HstuEncoder(const SequenceModel& m)
    : dim_(m.dim), heads_(m.heads), maxLen_(m.maxLen), window_(m.shortWindow), timeBuckets_(m.timeBuckets),
      finalGamma_(m.finalNormGamma), finalBeta_(m.finalNormBeta) {
  for (const auto& w : m.hstuLayers) layers_.push_back({Linear(w.uvqk), Linear(w.out), w.positionBias, w.timeBias});
}

void HstuEncoder::lastState(const float* tokens, int n, const double* times, float* out) const {
  const int d = dim_, dh = d / heads_, width = 4 * d;
  const float scale = 1.0f / static_cast<float>(maxLen_);
  std::vector<float> x(tokens, tokens + static_cast<size_t>(n) * d), normed(x.size()), uvqk(static_cast<size_t>(n) * width),
      attended(x.size()), update(x.size());
  std::vector<int> buckets;
  if (times) {
    buckets.resize(static_cast<size_t>(n) * n);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j <= i; ++j) buckets[static_cast<size_t>(i) * n + j] = timeBucket(times[i] - times[j], timeBuckets_);
  }
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    // Every layer needs every position's keys and values; only the last layer's last query is read.
    const int first = l + 1 == layers_.size() ? n - 1 : 0;
    std::copy(x.begin(), x.end(), normed.begin());
    layerNorm(normed.data(), n, d);
    layer.uvqk.apply(normed.data(), n, uvqk.data());
    for (float& v : uvqk) v = silu(v);
    std::fill(attended.begin(), attended.end(), 0.0f);
    for (int i = first; i < n; ++i) {
      const float* row = uvqk.data() + static_cast<size_t>(i) * width;
      float* a = attended.data() + static_cast<size_t>(i) * d;
      for (int j = firstKey(i, window_); j <= i; ++j) {
        const float* key = uvqk.data() + static_cast<size_t>(j) * width;
        float bias = layer.positionBias[std::min(i - j, maxLen_ - 1)];
        if (times) bias += layer.timeBias[buckets[static_cast<size_t>(i) * n + j]];
        for (int h = 0; h < heads_; ++h) {
          const float w = silu(dot(row + 2 * d + h * dh, key + 3 * d + h * dh, dh) + bias) * scale;
          const float* v = key + d + h * dh;
          for (int c = 0; c < dh; ++c) a[h * dh + c] += w * v[c];
        }
      }
    }
    const int rows = n - first;
    float* a = attended.data() + static_cast<size_t>(first) * d;
    layerNorm(a, rows, d);
    for (int i = first; i < n; ++i) {
      const float* u = uvqk.data() + static_cast<size_t>(i) * width;
      for (int c = 0; c < d; ++c) attended[static_cast<size_t>(i) * d + c] *= u[c];
    }
    layer.out.apply(a, rows, update.data());
    for (size_t c = 0; c < static_cast<size_t>(rows) * d; ++c) x[static_cast<size_t>(first) * d + c] += update[c];
  }
  std::copy_n(x.data() + static_cast<size_t>(n - 1) * d, d, out);
  layerNorm(out, 1, d, finalGamma_.data(), finalBeta_.data());
}

}  // namespace cangen::sequence
