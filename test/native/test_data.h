#pragma once
// Data the native tests share.
#include <random>
#include <vector>

namespace cangen::testdata {

// n x dim standard normal values, reproducible from `seed`.
inline std::vector<float> randomRows(size_t n, int dim, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n * dim);
  for (float& x : v) x = normal(rng);
  return v;
}

}  // namespace cangen::testdata
