// The scalar and AVX2 linear kernels and the run-time choice among them (linear_kernels.h); the
// AVX-512 kernel is in linear_avx512.cc, compiled for that instruction set.
#include "sequence/linear_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace cangen::sequence {

void linearScalar(const float* x, int rows, const float* weightT, const float* bias, int in, int out, float* y) {
  linearColumns(x, 0, rows, weightT, bias, in, out, 0, y);
}

#if defined(__AVX2__) && defined(__FMA__)

// Tiles of 4 rows x 16 outputs held in eight registers: each weight vector loaded feeds four rows,
// each input broadcast feeds sixteen outputs.
void linearAvx2(const float* x, int rows, const float* weightT, const float* bias, int in, int out, float* y) {
  constexpr int kRows = 4, kCols = 16;
  const int vectorCols = out / kCols * kCols;
  for (int r0 = 0; r0 < rows; r0 += kRows) {
    const int block = std::min(kRows, rows - r0);
    for (int o0 = 0; o0 < vectorCols; o0 += kCols) {
      __m256 acc[kRows][2];
      const __m256 b0 = _mm256_loadu_ps(bias + o0), b1 = _mm256_loadu_ps(bias + o0 + 8);
      for (int b = 0; b < kRows; ++b) acc[b][0] = b0, acc[b][1] = b1;
      for (int i = 0; i < in; ++i) {
        const float* wi = weightT + static_cast<size_t>(i) * out + o0;
        const __m256 w0 = _mm256_loadu_ps(wi), w1 = _mm256_loadu_ps(wi + 8);
        for (int b = 0; b < block; ++b) {
          const __m256 xi = _mm256_set1_ps(x[static_cast<size_t>(r0 + b) * in + i]);
          acc[b][0] = _mm256_fmadd_ps(xi, w0, acc[b][0]);
          acc[b][1] = _mm256_fmadd_ps(xi, w1, acc[b][1]);
        }
      }
      for (int b = 0; b < block; ++b) {
        float* yr = y + static_cast<size_t>(r0 + b) * out + o0;
        _mm256_storeu_ps(yr, acc[b][0]);
        _mm256_storeu_ps(yr + 8, acc[b][1]);
      }
    }
    linearColumns(x, r0, r0 + block, weightT, bias, in, out, vectorCols, y);  // the last out % 16 outputs
  }
}

#endif

LinearKernel bestLinearKernel() {
  const char* forced = std::getenv("CANGEN_SEQUENCE_SIMD");
  if (forced != nullptr && std::strcmp(forced, "scalar") == 0) return linearScalar;
#if defined(__AVX2__) && defined(__FMA__)
  if (forced != nullptr && std::strcmp(forced, "avx2") == 0) return linearAvx2;
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return avx512 ? linearAvx512 : linearAvx2;
#else
  return linearScalar;
#endif
}

const char* linearKernelName(LinearKernel kernel) {
#if defined(__AVX2__) && defined(__FMA__)
  if (kernel == linearAvx512) return "avx512";
  if (kernel == linearAvx2) return "avx2";
#endif
  return kernel == linearScalar ? "scalar" : "unknown";
}

}  // namespace cangen::sequence
