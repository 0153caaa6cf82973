#include "common/vectors.h"

#include <cmath>
#include <string>

#include "common/error.h"

namespace cangen {

void requireFinite(const float* values, size_t rows, int dim, const char* what) {
  const size_t total = rows * static_cast<size_t>(dim);
  for (size_t i = 0; i < total; ++i) {
    if (!std::isfinite(values[i])) {
      throw Error(ErrorCode::NonFinite, std::string("Expected finite numbers in ") + what + " but " + what + "[" +
                                            std::to_string(i / dim) + "][" + std::to_string(i % dim) + "] is " +
                                            std::to_string(values[i]));
    }
  }
}

double squaredNorm(const float* v, int dim) {
  double s = 0;
  for (int j = 0; j < dim; ++j) s += static_cast<double>(v[j]) * v[j];
  return s;
}

PreparedRows prepareRows(const float* rows, size_t n, int dim, Metric metric, const char* what, bool rejectZero) {
  requireFinite(rows, n, dim, what);
  PreparedRows out;
  out.data = rows;
  if (metric != Metric::Cosine) return out;
  out.copy.assign(rows, rows + n * static_cast<size_t>(dim));
  out.data = out.copy.data();
  for (size_t i = 0; i < n; ++i) {
    float* row = out.copy.data() + i * dim;
    const double norm = std::sqrt(squaredNorm(row, dim));
    if (norm == 0 && rejectZero) {
      throw Error(ErrorCode::InvalidArgument, std::string("Expected non-zero ") + what + " for the cosine metric but " +
                                                  what + "[" + std::to_string(i) + "] is all zeros");
    }
    const double scale = norm > 0 ? 1.0 / norm : 0.0;
    for (int j = 0; j < dim; ++j) row[j] = static_cast<float>(row[j] * scale);
  }
  return out;
}

}  // namespace cangen
