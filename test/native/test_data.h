#pragma once
// Data the native tests share.
#include <random>
#include <vector>

#include "ann/ann_config.h"
#include "ann/catalog.h"

namespace cangen::testdata {

// n x dim standard normal values, reproducible from `seed`.
inline std::vector<float> randomRows(size_t n, int dim, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n * dim);
  for (float& x : v) x = normal(rng);
  return v;
}

// The configuration of an exact (flat) AdIndex.
inline AnnConfig flatConfig(int dim, Metric metric = Metric::InnerProduct) {
  AnnConfig config;
  config.kind = AnnKind::Flat;
  config.dim = dim;
  config.metric = metric;
  if (config.pqBytes > dim) config.pqBytes = dim;  // validated for every kind
  return config;
}

// An index of `kind` small enough to train in a moment: 8 IVF lists, 4 PQ bytes, HNSW M 8.
inline AnnConfig smallConfig(AnnKind kind, int dim, Metric metric, const char* factory = "") {
  AnnConfig config;
  config.kind = kind;
  config.dim = dim;
  config.metric = metric;
  config.nlist = 8;
  config.pqBytes = 4;
  config.hnswM = 8;
  config.factory = factory;
  return config;
}

// An ad as a test's reference model holds it: the index must hold the same.
struct ReferenceAd {
  std::vector<float> vector;
  AdAttributes attributes;
};

}  // namespace cangen::testdata
