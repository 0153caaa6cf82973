#pragma once
// Checks on, and preparation of, the vectors callers hand to any index kind.
#include <cstddef>
#include <vector>

#include "common/metric.h"

namespace cangen {

// Throws Error(NonFinite) naming the first NaN or infinity as what[row][column].
void requireFinite(const float* values, size_t rows, int dim, const char* what);

double squaredNorm(const float* v, int dim);

// A checked copy of n rows; for the cosine metric each row is scaled to unit length, and an
// all-zero row is rejected when rejectZero (stored ads) or left as zeros (queries).
std::vector<float> prepareRows(const float* rows, size_t n, int dim, Metric metric, const char* what, bool rejectZero);

}  // namespace cangen
