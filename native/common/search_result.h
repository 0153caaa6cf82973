#pragma once
// What every search returns (the AdIndex kinds and the learned scorer), and where it runs.
//
// Data convention, stated once: vectors and queries are row-major n x dim float32 arrays,
// element (i, j) at x[i * dim + j]. Ids are caller-chosen 64-bit integers, unique per index.
// Results are nq rows of k, best first; missing results have id -1 and a NaN score.
#include <cstdint>
#include <string>
#include <vector>

namespace cangen {

enum class Device { Cpu, Gpu };

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

}  // namespace cangen
