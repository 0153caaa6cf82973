#pragma once
// Exact (brute-force) embedding index: our own fused scan + top-k kernels on the CPU, and on a
// CUDA device when one is requested. Thread-safe: searches share a lock, writes take it alone,
// so a search sees every ad either before or after a write, never half of it.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "common/metric.h"
#include "flat/gpu_mirror.h"
#include "flat/panel_store.h"
#include "index/index.h"

namespace cangen {

class FlatIndex : public Index {
 public:
  FlatIndex(int dim, Metric metric, int threads);
  ~FlatIndex() override;

  int dim() const override { return dim_; }
  Metric metric() const override { return metric_; }
  size_t size() const override;

  void add(const int64_t* ids, const float* vectors, size_t n) override;

  SearchResult search(const float* queries, int nq, int k, const SearchOptions& options) const override;

 private:
  std::vector<float> prepareQueries(const float* queries, int nq) const;
  void convertScores(const float* queries, SearchResult& result) const;

  const int dim_;
  const Metric metric_;
  const int threads_;
  mutable std::shared_mutex mutex_;
  PanelStore store_;             // vectors by slot; count_ of them in use
  std::vector<int64_t> ids_;     // slot -> id
  std::unordered_map<int64_t, uint32_t> slotOfId_;
  size_t count_ = 0;                   // guarded by mutex_
  std::atomic<size_t> publicCount_{0}; // read without the lock, so size() never waits on a write
  mutable GpuMirror gpu_;
};

}  // namespace cangen
