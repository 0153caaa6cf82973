#pragma once
// The few building blocks of the sequence encoders, on rows of float32 (row-major, `rows` x width).
// Linear layers keep their weight transposed (in x out) so that the inner loop runs over outputs
// with unit stride and vectorises without reassociating any sum.
#include <cmath>
#include <vector>

#include "sequence/sequence_model.h"

namespace cangen::sequence {

constexpr float kNormEps = 1e-5f;  // PyTorch's LayerNorm default, used by both encoders

class Linear {
 public:
  Linear() = default;
  explicit Linear(const LinearWeights& w);
  // y (rows x out) = x (rows x in) W^T + b. y must not alias x.
  void apply(const float* x, int rows, float* y) const;
  int in() const { return in_; }
  int out() const { return out_; }
  const std::vector<float>& weightT() const { return weightT_; }  // in x out (for the CUDA path)
  const std::vector<float>& bias() const { return bias_; }

 private:
  int in_ = 0, out_ = 0;
  std::vector<float> weightT_;  // in x out
  std::vector<float> bias_;     // out (zeros when the layer has none)
};

// LayerNorm over `width` values of each row, in place; gamma/beta null: no affine.
void layerNorm(float* x, int rows, int width, const float* gamma = nullptr, const float* beta = nullptr);

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }
// silu over n values in place, eight at a time with a polynomial exp (within 3e-7 relative of
// float64; below -87 a tiny value where float32 would underflow to 0). Every value goes through
// the same vector code, wherever it sits in the array, so a row gives the same result alone or in
// a batch (sessions rely on it).
void siluInPlace(float* x, size_t n);
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
// The exact (erf) GELU of torch.nn.functional.gelu's default.
inline float gelu(float x) { return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f)); }

// Eight partial sums, so that the compiler keeps them in one vector register (a single running
// sum cannot be vectorised without reordering it, which -O3 does not do on its own).
inline float dot(const float* a, const float* b, int n) {
  float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) partial[k] += a[i + k] * b[i + k];
  float s = ((partial[0] + partial[4]) + (partial[1] + partial[5])) + ((partial[2] + partial[6]) + (partial[3] + partial[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace cangen::sequence
