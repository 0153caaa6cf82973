#pragma once
// Checks on, and preparation of, the vectors callers hand to any index kind.
#include <cstddef>
#include <vector>

#include "common/metric.h"

namespace cangen {

// Throws Error(NonFinite) naming the first NaN or infinity as what[row][column].
void requireFinite(const float* values, size_t rows, int dim, const char* what);

double squaredNorm(const float* v, int dim);

// n rows checked finite, as an index stores them: the caller's own rows, or for the cosine metric
// a copy with each row scaled to unit length (an all-zero row is rejected when rejectZero, for
// stored ads, or left as zeros, for queries). Only cosine pays for a copy.
struct PreparedRows {
  std::vector<float> copy;      // cosine only
  const float* data = nullptr;  // the caller's rows or `copy`
};
PreparedRows prepareRows(const float* rows, size_t n, int dim, Metric metric, const char* what, bool rejectZero);

}  // namespace cangen
