#pragma once
// A FAISS index built from a factory string ("Flat", "IVF1024,PQ16", "HNSW32", ...) with our id,
// metric and locking conventions. In this release it is the peer our exact kernels are measured
// against; the approximate index kinds build on it.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>

#include "common/metric.h"
#include "index/index.h"

namespace faiss {
struct Index;
}

namespace cangen {

class FaissIndex : public Index {
 public:
  FaissIndex(int dim, Metric metric, const std::string& factory, int threads);
  ~FaissIndex() override;

  int dim() const override { return dim_; }
  Metric metric() const override { return metric_; }
  size_t size() const override;
  bool isTrained() const override;

  void train(const float* vectors, size_t n) override;
  void add(const int64_t* ids, const float* vectors, size_t n) override;
  SearchResult search(const float* queries, int nq, int k, const SearchOptions& options) const override;

 private:
  std::vector<float> prepare(const float* vectors, size_t n) const;

  const int dim_;
  const Metric metric_;
  const int threads_;
  mutable std::shared_mutex mutex_;
  std::unique_ptr<faiss::Index> index_;  // an IndexIDMap2, whose rev_map also answers "is this id present"
  // Read without the lock, so size() and isTrained() never wait on a long train or add.
  std::atomic<size_t> publicCount_{0};
  std::atomic<bool> trained_{false};
};

}  // namespace cangen
