#pragma once
// What scorer.cc and scorer_reduced.cc (the reduced-precision scans) share inside Scorer.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "flat/topk.h"
#include "scorer/scorer.h"
#include "scorer/tile.h"

namespace cangen {
namespace scorer_detail {

inline size_t tilesOf(size_t ads) { return (ads + kTileAds - 1) / kTileAds; }

// Tiles per work item: enough to amortise scheduling, few enough to balance two to 64 threads.
constexpr size_t kTilesPerChunk = 8;

// Bits of the ads of tile t that exist and are eligible.
inline uint32_t tileMask(size_t tile, size_t count, const uint64_t* eligible) {
  const size_t first = tile * kTileAds;
  uint32_t mask = count - first >= kTileAds ? 0xffffffffu : ((1u << (count - first)) - 1);
  if (eligible != nullptr) mask &= static_cast<uint32_t>(eligible[first / 64] >> (first % 64));
  return mask;
}

inline void offer(TopKCollector& collector, const float* scores, uint32_t mask, const uint32_t* slots, size_t first) {
  while (mask != 0) {
    const int a = __builtin_ctz(mask);
    mask &= mask - 1;
    if (scores[a] > collector.threshold()) {
      collector.push(scores[a], slots ? slots[first + a] : static_cast<uint32_t>(first + a));
    }
  }
}

}  // namespace scorer_detail

// What a request needs per user, built once per search (Scorer::prepare).
struct Scorer::Prepared {
  std::vector<MlpUserPlan> mlp;
  std::vector<MolUserPlan> mol;
  std::vector<float> dotQueries;       // nu x itemDim
  std::vector<PackedDense> dotPacked;  // one row per user, for tiles of candidates
};

}  // namespace cangen
