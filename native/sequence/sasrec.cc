// SASRec (the trainer's models/sasrec.py) over one user's window, without padding: the last of n
// events takes position row maxLen - 1, as in the trainer's right-aligned window.
#include <algorithm>
#include <cmath>

#include "sequence/encoders.h"

namespace cangen::sequence {

SasRecEncoder::SasRecEncoder(const SequenceModel& m) : EncoderCommon(m), position_(m.position) {
  for (const auto& w : m.sasrecBlocks) {
    blocks_.push_back({w.attnNormGamma, w.attnNormBeta, w.ffnNormGamma, w.ffnNormBeta, Linear(w.qkv), Linear(w.out),
                       Linear(w.ffnIn), Linear(w.ffnOut)});
  }
}

void SasRecEncoder::lastState(const float* tokens, int n, bool padding, float* out) const {
  const int d = dim_, dh = d / heads_, hidden = 4 * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  std::vector<float> x(static_cast<size_t>(n) * d, 0.0f), normed(x.size()), qkv(static_cast<size_t>(n) * 3 * d),
      context(x.size()), update(x.size()), inner(static_cast<size_t>(n) * hidden), scores(n);
  if (!padding) {
    for (int j = 0; j < n; ++j) {
      const float* pos = position_.data() + static_cast<size_t>(maxLen_ - n + j) * d;
      for (int c = 0; c < d; ++c) x[static_cast<size_t>(j) * d + c] = tokens[static_cast<size_t>(j) * d + c] + pos[c];
    }
  }
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const Block& block = blocks_[l];
    const int first = l + 1 == blocks_.size() ? n - 1 : 0;
    const int rows = n - first;
    std::copy(x.begin(), x.end(), normed.begin());
    layerNorm(normed.data(), n, d, block.attnGamma.data(), block.attnBeta.data());
    block.qkv.apply(normed.data(), n, qkv.data());
    for (int i = first; i < n; ++i) {
      const float* query = qkv.data() + static_cast<size_t>(i) * 3 * d;
      float* c = context.data() + static_cast<size_t>(i) * d;
      std::fill(c, c + d, 0.0f);
      const int lo = firstKey(i, window_);
      for (int h = 0; h < heads_; ++h) {
        float top = -INFINITY;
        for (int j = lo; j <= i; ++j) {
          scores[j] = dot(query + h * dh, qkv.data() + static_cast<size_t>(j) * 3 * d + d + h * dh, dh) * scale;
          top = std::max(top, scores[j]);
        }
        float total = 0;
        for (int j = lo; j <= i; ++j) total += scores[j] = std::exp(scores[j] - top);
        for (int j = lo; j <= i; ++j) {
          const float w = scores[j] / total;
          const float* v = qkv.data() + static_cast<size_t>(j) * 3 * d + 2 * d + h * dh;
          for (int k = 0; k < dh; ++k) c[h * dh + k] += w * v[k];
        }
      }
    }
    float* xFirst = x.data() + static_cast<size_t>(first) * d;
    block.out.apply(context.data() + static_cast<size_t>(first) * d, rows, update.data());
    for (size_t c = 0; c < static_cast<size_t>(rows) * d; ++c) xFirst[c] += update[c];
    std::copy_n(xFirst, static_cast<size_t>(rows) * d, normed.data());
    layerNorm(normed.data(), rows, d, block.ffnGamma.data(), block.ffnBeta.data());
    block.ffnIn.apply(normed.data(), rows, inner.data());
    for (size_t c = 0; c < static_cast<size_t>(rows) * hidden; ++c) inner[c] = gelu(inner[c]);
    block.ffnOut.apply(inner.data(), rows, update.data());
    for (size_t c = 0; c < static_cast<size_t>(rows) * d; ++c) xFirst[c] += update[c];
  }
  std::copy_n(x.data() + static_cast<size_t>(n - 1) * d, d, out);
  layerNorm(out, 1, d, finalGamma_.data(), finalBeta_.data());
}

}  // namespace cangen::sequence
