// AVX-512 build of the row-block scorer (ann/row_block.h); compiled with -mavx512*.
// GCC 12's own intrinsics (_mm512_unpacklo_ps and others) trip -Wmaybe-uninitialized on the
// undefined vector they start from.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "ann/row_block.h"

namespace cangen::row_block_avx512 {

namespace {

// Sixteen vectors of partial sums -> one vector whose lane r is the total of acc[r]: pairs are
// interleaved and added in four rounds (45 instructions), instead of a full horizontal
// reduction per row (about 8 each).
inline __m512 transposeSum(const __m512 acc[16]) {
  __m512 pairs[8];
  for (int i = 0; i < 8; ++i) {
    // per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3]
    pairs[i] = _mm512_add_ps(_mm512_unpacklo_ps(acc[2 * i], acc[2 * i + 1]),
                             _mm512_unpackhi_ps(acc[2 * i], acc[2 * i + 1]));
  }
  __m512 quads[4];
  for (int i = 0; i < 4; ++i) {
    // per 128-bit lane: rows 4i .. 4i+3, each the sum of that lane's four elements
    const __m512 a = pairs[2 * i], b = pairs[2 * i + 1];
    quads[i] = _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  __m512 halves[2];
  for (int i = 0; i < 2; ++i) {
    // lanes 0-1: rows 8i .. 8i+3 (two partials), lanes 2-3: rows 8i+4 .. 8i+7
    const __m512 a = quads[2 * i], b = quads[2 * i + 1];
    halves[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  return _mm512_add_ps(_mm512_shuffle_f32x4(halves[0], halves[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(halves[0], halves[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

template <bool L2>
inline void scoreSixteen(const float* q, const float* const* rows, int d, float* out) {
  __m512 acc[16];
  for (int r = 0; r < 16; ++r) acc[r] = _mm512_setzero_ps();
  int j = 0;
  for (; j + 16 <= d; j += 16) {
    const __m512 qc = _mm512_loadu_ps(q + j);
    for (int r = 0; r < 16; ++r) {
      const __m512 x = _mm512_loadu_ps(rows[r] + j);
      if constexpr (L2) {
        const __m512 diff = _mm512_sub_ps(qc, x);
        acc[r] = _mm512_fmadd_ps(diff, diff, acc[r]);
      } else {
        acc[r] = _mm512_fmadd_ps(qc, x, acc[r]);
      }
    }
  }
  if (j < d) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (d - j)) - 1);
    const __m512 qc = _mm512_maskz_loadu_ps(mask, q + j);
    for (int r = 0; r < 16; ++r) {
      const __m512 x = _mm512_maskz_loadu_ps(mask, rows[r] + j);
      if constexpr (L2) {
        const __m512 diff = _mm512_sub_ps(qc, x);
        acc[r] = _mm512_fmadd_ps(diff, diff, acc[r]);
      } else {
        acc[r] = _mm512_fmadd_ps(qc, x, acc[r]);
      }
    }
  }
  __m512 sums = transposeSum(acc);
  if constexpr (L2) sums = _mm512_sub_ps(_mm512_setzero_ps(), sums);
  _mm512_storeu_ps(out, sums);
}

}  // namespace

void scoreRows(const float* q, const float* const* rows, int n, int d, bool l2, float* out) {
  // A short block repeats its first row: the extra lanes are computed and ignored.
  const float* padded[16];
  for (int r = 0; r < 16; ++r) padded[r] = rows[r < n ? r : 0];
  if (l2) {
    scoreSixteen<true>(q, padded, d, out);
  } else {
    scoreSixteen<false>(q, padded, d, out);
  }
}

}  // namespace cangen::row_block_avx512
