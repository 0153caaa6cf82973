#pragma once
// The one native interface every index kind implements (exact, and FAISS-backed kinds).
//
// Data convention, stated once: vectors and queries are row-major n x dim float32 arrays,
// element (i, j) at x[i * dim + j]. Ids are caller-chosen 64-bit integers, unique per index.
// Results are nq rows of k, best first; missing results have id -1 and a NaN score.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/metric.h"

namespace cangen {

enum class Device { Cpu, Gpu };

struct SearchOptions {
  Device device = Device::Cpu;
  int gpuDevice = 0;
  int threads = 0;  // 0: the index's default
};

struct SearchResult {
  int nq = 0;
  int k = 0;
  std::vector<int64_t> ids;      // nq * k
  std::vector<float> scores;     // nq * k: similarity (ip, cosine) or squared distance (l2)
  std::vector<uint32_t> counts;  // nq: how many of the k are real results
  std::string gpuFallback;       // a GPU search that ran on the CPU: why (empty otherwise)

  // nq x k of padding, ready to be filled; ErrorCode::ResourceLimit when over the result budget
  // (common/limits.h), before anything is allocated.
  static SearchResult padded(int nq, int k);
};

class Index {
 public:
  virtual ~Index() = default;
  virtual int dim() const = 0;
  virtual Metric metric() const = 0;
  virtual size_t size() const = 0;
  virtual bool isTrained() const { return true; }
  // Learns the index's parameters (coarse centroids, codebooks) from a sample; no-op when exact.
  virtual void train(const float* vectors, size_t n) {}
  // Adds n vectors with their ids. All or nothing: a bad value or a duplicate id adds none.
  virtual void add(const int64_t* ids, const float* vectors, size_t n) = 0;
  // k >= 1; a k larger than the corpus is padded, never an error.
  virtual SearchResult search(const float* queries, int nq, int k, const SearchOptions& options) const = 0;
};

}  // namespace cangen
