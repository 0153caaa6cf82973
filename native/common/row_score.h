#pragma once
// A query's score against row-major vectors, as the exact paths over stored rows rank them:
// the inner product, or minus the squared L2 distance (higher is better either way).
#include <cstddef>

namespace cangen {

template <bool L2>
inline float rowScore(const float* q, const float* x, int d) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int j = 0; j < d; ++j) {
    if constexpr (L2) {
      s += (q[j] - x[j]) * (q[j] - x[j]);
    } else {
      s += q[j] * x[j];
    }
  }
  return L2 ? -s : s;
}

// Four rows at once: four independent accumulator chains hide the multiply-add latency that a
// single row's reduction waits on.
template <bool L2>
inline void rowScoresFour(const float* q, const float* const* rows, int d, float out[4]) {
  const float* x0 = rows[0];
  const float* x1 = rows[1];
  const float* x2 = rows[2];
  const float* x3 = rows[3];
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int j = 0; j < d; ++j) {
    if constexpr (L2) {
      const float a = q[j] - x0[j], b = q[j] - x1[j], c = q[j] - x2[j], e = q[j] - x3[j];
      s0 += a * a, s1 += b * b, s2 += c * c, s3 += e * e;
    } else {
      s0 += q[j] * x0[j], s1 += q[j] * x1[j], s2 += q[j] * x2[j], s3 += q[j] * x3[j];
    }
  }
  if constexpr (L2) s0 = -s0, s1 = -s1, s2 = -s2, s3 = -s3;
  out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

}  // namespace cangen
