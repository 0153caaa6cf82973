#pragma once
// Scores of a block of up to 16 stored rows against one query, as the IVF-Flat list scan needs
// them (ann/ivf_flat_scan.h): rows given by pointer (an eligibility filter leaves gaps), scores
// as common/row_score.h defines them (inner product, or minus the squared L2 distance).
namespace cangen {

constexpr int kRowBlock16 = 16;

// out[i] for rows[i], i < n (n <= 16; the other entries of `out` are unspecified).
using RowBlockFunction = void (*)(const float* q, const float* const* rows, int n, int d, bool l2, float* out);

// The AVX-512 kernel (16 rows' sums reduced together by a transpose) where the CPU has it, else
// four rows at a time on the baseline.
RowBlockFunction bestRowBlockFunction();

namespace row_block_avx512 {
void scoreRows(const float* q, const float* const* rows, int n, int d, bool l2, float* out);
}
namespace row_block_baseline {
void scoreRows(const float* q, const float* const* rows, int n, int d, bool l2, float* out);
}

}  // namespace cangen
