#include "ann/row_block.h"

#include "common/cpu_features.h"
#include "common/row_score.h"

namespace cangen {

namespace row_block_baseline {

namespace {
template <bool L2>
void baselineRows(const float* q, const float* const* rows, int n, int d, float* out) {
  int i = 0;
  for (; i + 4 <= n; i += 4) rowScoresFour<L2>(q, rows + i, d, out + i);
  for (; i < n; ++i) out[i] = rowScore<L2>(q, rows[i], d);
}

}  // namespace

void scoreRows(const float* q, const float* const* rows, int n, int d, bool l2, float* out) {
  if (l2) {
    baselineRows<true>(q, rows, n, d, out);
  } else {
    baselineRows<false>(q, rows, n, d, out);
  }
}

}  // namespace row_block_baseline

RowBlockFunction bestRowBlockFunction() {
  static const RowBlockFunction chosen = cpuHasAvx512() ? row_block_avx512::scoreRows : row_block_baseline::scoreRows;
  return chosen;
}

}  // namespace cangen
