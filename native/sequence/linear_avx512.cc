// The AVX-512 linear kernel (linear_kernels.h): tiles of 8 rows x 32 outputs in sixteen
// accumulators; called only after the CPU was checked (bestLinearKernel). Each output still sums
// its inputs in order with one fused multiply-add per input, as the AVX2 and scalar kernels do.
// The instruction set is a function attribute (GCC and Clang both honour it; Clang ignores
// `#pragma GCC target`), so nothing else in this file, nor the header's inline helper, is built
// for AVX-512.
#include "sequence/linear_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include <algorithm>
#include <cstddef>

namespace cangen::sequence {

#define CANGEN_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))

namespace {

// Outputs [o0, o0 + 16 * kVectors) of rows [r0, r0 + block).
template <int kVectors>
CANGEN_AVX512 void tile(const float* x, int r0, int block, const float* weightT, const float* bias, int in, int out, int o0, float* y) {
  constexpr int kRows = 8;
  __m512 acc[kRows][kVectors];
  for (int v = 0; v < kVectors; ++v) {
    const __m512 b = _mm512_loadu_ps(bias + o0 + 16 * v);
    for (int r = 0; r < kRows; ++r) acc[r][v] = b;
  }
  for (int i = 0; i < in; ++i) {
    const float* wi = weightT + static_cast<size_t>(i) * out + o0;
    __m512 w[kVectors];
    for (int v = 0; v < kVectors; ++v) w[v] = _mm512_loadu_ps(wi + 16 * v);
    for (int r = 0; r < block; ++r) {
      const __m512 xi = _mm512_set1_ps(x[static_cast<size_t>(r0 + r) * in + i]);
      for (int v = 0; v < kVectors; ++v) acc[r][v] = _mm512_fmadd_ps(xi, w[v], acc[r][v]);
    }
  }
  for (int r = 0; r < block; ++r)
    for (int v = 0; v < kVectors; ++v) _mm512_storeu_ps(y + static_cast<size_t>(r0 + r) * out + o0 + 16 * v, acc[r][v]);
}

}  // namespace

CANGEN_AVX512 void linearAvx512(const float* x, int rows, const float* weightT, const float* bias, int in, int out, float* y) {
  constexpr int kRows = 8;
  const int pairs = out / 32 * 32, singles = out / 16 * 16;
  for (int r0 = 0; r0 < rows; r0 += kRows) {
    const int block = std::min(kRows, rows - r0);
    for (int o0 = 0; o0 < pairs; o0 += 32) tile<2>(x, r0, block, weightT, bias, in, out, o0, y);
    if (singles > pairs) tile<1>(x, r0, block, weightT, bias, in, out, pairs, y);
    linearColumns(x, r0, r0 + block, weightT, bias, in, out, singles, y);  // the last out % 16 outputs
  }
}

}  // namespace cangen::sequence

#endif
