#include "sequence/layers.h"

#include <algorithm>

namespace cangen::sequence {

Linear::Linear(const LinearWeights& w) : in_(w.in), out_(w.out), weightT_(static_cast<size_t>(w.in) * w.out), bias_(w.out, 0.0f) {
  for (int o = 0; o < out_; ++o) {
    for (int i = 0; i < in_; ++i) weightT_[static_cast<size_t>(i) * out_ + o] = w.weight[static_cast<size_t>(o) * in_ + i];
  }
  if (!w.bias.empty()) bias_ = w.bias;
}

void Linear::apply(const float* x, int rows, float* y) const {
  // Four rows at a time: each weight row is loaded once for four outputs.
  constexpr int kBlock = 4;
  for (int r0 = 0; r0 < rows; r0 += kBlock) {
    const int block = std::min(kBlock, rows - r0);
    for (int b = 0; b < block; ++b) std::copy(bias_.begin(), bias_.end(), y + static_cast<size_t>(r0 + b) * out_);
    for (int i = 0; i < in_; ++i) {
      const float* wi = weightT_.data() + static_cast<size_t>(i) * out_;
      for (int b = 0; b < block; ++b) {
        const float xi = x[static_cast<size_t>(r0 + b) * in_ + i];
        float* yr = y + static_cast<size_t>(r0 + b) * out_;
        for (int o = 0; o < out_; ++o) yr[o] += xi * wi[o];
      }
    }
  }
}

void layerNorm(float* x, int rows, int width, const float* gamma, const float* beta) {
  for (int r = 0; r < rows; ++r) {
    float* xr = x + static_cast<size_t>(r) * width;
    double mean = 0, var = 0;  // double: the statistics of a few hundred values, exactly enough
    for (int i = 0; i < width; ++i) mean += xr[i];
    mean /= width;
    for (int i = 0; i < width; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= width;
    const float m = static_cast<float>(mean);
    const float inv = static_cast<float>(1.0 / std::sqrt(var + kNormEps));
    for (int i = 0; i < width; ++i) {
      const float v = (xr[i] - m) * inv;
      xr[i] = gamma ? v * gamma[i] + beta[i] : v;
    }
  }
}

}  // namespace cangen::sequence
