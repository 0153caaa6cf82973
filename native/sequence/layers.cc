#include "sequence/layers.h"

#include "sequence/linear_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define CANGEN_SEQUENCE_AVX2 1
#endif

#include <algorithm>
#include <cmath>

namespace cangen::sequence {

Linear::Linear(const LinearWeights& w) : in_(w.in), out_(w.out), weightT_(static_cast<size_t>(w.in) * w.out), bias_(w.out, 0.0f) {
  for (int o = 0; o < out_; ++o) {
    for (int i = 0; i < in_; ++i) weightT_[static_cast<size_t>(i) * out_ + o] = w.weight[static_cast<size_t>(o) * in_ + i];
  }
  if (!w.bias.empty()) bias_ = w.bias;
}

void Linear::apply(const float* x, int rows, float* y) const {
  static const LinearKernel kernel = bestLinearKernel();
  kernel(x, rows, weightT_.data(), bias_.data(), in_, out_, y);
}

#ifdef CANGEN_SEQUENCE_AVX2

namespace {

// exp(x) for eight floats: x = n ln 2 + r with |r| <= ln 2 / 2, exp(r) by its degree-6 Taylor-like
// minimax polynomial (the classic Cephes expf coefficients), times 2^n built in the exponent bits.
__m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

__m256 silu8(__m256 x) {
  const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

}  // namespace

void siluInPlace(float* x, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, silu8(_mm256_loadu_ps(x + i)));
  if (i < n) {
    float tail[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::copy(x + i, x + n, tail);
    _mm256_storeu_ps(tail, silu8(_mm256_loadu_ps(tail)));
    std::copy(tail, tail + (n - i), x + i);
  }
}

#else  // a baseline without AVX2 (CANGEN_BASELINE_ARCH lowered)

void siluInPlace(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = silu(x[i]);
}

#endif

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
