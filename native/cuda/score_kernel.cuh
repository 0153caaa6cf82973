#pragma once
// Device code: the fused score-and-filter kernel of the exact GPU search.
//
// One block scores a tile of kTileQueries queries x kTileAds ads of one chunk, staging kTileDims
// dimensions at a time through shared memory (classic SGEMM tiling, fp32 FMA). Ads are read
// straight from the panel layout of flat/panels.h: for one panel, dims [d0, d0 + kTileDims) are
// kTileDims * 16 consecutive floats, loaded as float4 by consecutive threads.
//
// Scores are never stored as a matrix: every score strictly above the query's current threshold
// is appended to that query's candidate buffer (warp-aggregated atomicAdd on its count). The
// select kernel (select_kernel.cuh) later cuts each buffer back to k and raises the threshold.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace cangen::gpu {

constexpr int kScoreThreadsX = 32;  // one warp along the ads
constexpr int kScoreThreadsY = 8;   // warps along the queries
constexpr int kScoreThreads = kScoreThreadsX * kScoreThreadsY;
constexpr int kAdsPerThread = 4;
constexpr int kTileAds = kScoreThreadsX * kAdsPerThread;  // 128: 8 whole panels
constexpr int kTileDims = 16;
constexpr int kPanelLanes = 16;  // == cangen::kPanelWidth (static_assert in the launcher)
// Shared rows padded by 16 floats: the float4 stores of one quarter-warp then hit 32 banks.
constexpr int kAdsRowStride = kTileAds + 16;

// Error bits written to the device error flag.
constexpr int kErrorCandidateOverflow = 1;  // an append found a full buffer (capacity bug)
constexpr int kErrorSelectMismatch = 2;     // select counted a different number of winners
constexpr int kErrorCountAboveK = 4;        // a buffer held more than k at the final sort

struct ScoreArgs {
  const float* panels;      // packed corpus (flat/panels.h)
  const float* bias;        // per ad, or nullptr
  const uint64_t* eligible; // bitmap over ad slots, or nullptr
  const float* queries;     // this batch: nq x dim, row-major
  int nq;
  int dim;
  size_t chunkBegin;        // first ad of the chunk, a multiple of kTileAds
  size_t chunkEnd;          // one past the last ad of the chunk, <= the synced count
  const float* thresholds;  // nq: append only scores strictly above
  uint32_t* counts;         // nq: entries in each candidate buffer
  float* candScores;        // nq x capacity
  uint32_t* candSlots;      // nq x capacity
  size_t capacity;          // k + largest chunk: no chunk can overflow a buffer cut back to k
  int* errorFlag;
};

// Grid: x over query tiles (so blocks reading the same ads run together and share L2),
// y over ad tiles of the chunk. Block: kScoreThreadsX x kScoreThreadsY.
template <int QueriesPerThread>
__global__ void __launch_bounds__(kScoreThreads) scoreChunkKernel(ScoreArgs args) {
  constexpr int kTileQueries = kScoreThreadsY * QueriesPerThread;
  __shared__ __align__(16) float adsTile[kTileDims][kAdsRowStride];
  __shared__ __align__(16) float queryTile[kTileDims][kTileQueries];

  const int tx = threadIdx.x;
  const int ty = threadIdx.y;
  const int tid = ty * kScoreThreadsX + tx;
  const int queryBase = blockIdx.x * kTileQueries;
  const size_t adBase = args.chunkBegin + static_cast<size_t>(blockIdx.y) * kTileAds;
  const size_t panelBase = adBase / kPanelLanes;
  const size_t panelStride = static_cast<size_t>(args.dim) * kPanelLanes;  // floats per panel

  float acc[QueriesPerThread][kAdsPerThread];
#pragma unroll
  for (int r = 0; r < QueriesPerThread; ++r) {
#pragma unroll
    for (int c = 0; c < kAdsPerThread; ++c) acc[r][c] = 0.0f;
  }

  for (int d0 = 0; d0 < args.dim; d0 += kTileDims) {
    // Ads: kTileAds x kTileDims floats = 512 float4, two per thread. Float4 index i covers
    // panel i / 64 of the tile, dim (i % 64) / 4 and lanes 4 * (i % 4) .. + 3.
    constexpr int kFloat4PerPanel = kTileDims * kPanelLanes / 4;  // 64
    constexpr int kAdFloat4 = kTileAds * kTileDims / 4;          // 512
#pragma unroll
    for (int i = tid; i < kAdFloat4; i += kScoreThreads) {
      const int panel = i / kFloat4PerPanel;
      const int within = i % kFloat4PerPanel;
      const int j = within / 4;
      const int lane4 = within % 4;
      const size_t p = panelBase + panel;
      float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      // A panel is allocated when its first ad is below the chunk end (<= synced count).
      if (p * kPanelLanes < args.chunkEnd && d0 + j < args.dim) {
        const float* src = args.panels + p * panelStride + static_cast<size_t>(d0 + j) * kPanelLanes;
        v = reinterpret_cast<const float4*>(src)[lane4];
      }
      *reinterpret_cast<float4*>(&adsTile[j][panel * kPanelLanes + lane4 * 4]) = v;
    }
    // Queries: consecutive threads take consecutive queries of one dim (conflict-free stores;
    // the strided global reads hit L1/L2, queries are tiny next to the corpus).
    for (int i = tid; i < kTileQueries * kTileDims; i += kScoreThreads) {
      const int ql = i % kTileQueries;
      const int j = i / kTileQueries;
      const int q = queryBase + ql;
      float v = 0.0f;
      if (q < args.nq && d0 + j < args.dim) {
        v = args.queries[static_cast<size_t>(q) * args.dim + d0 + j];
      }
      queryTile[j][ql] = v;
    }
    __syncthreads();

#pragma unroll
    for (int j = 0; j < kTileDims; ++j) {
      const float4 a = *reinterpret_cast<const float4*>(&adsTile[j][tx * kAdsPerThread]);
      const float av[kAdsPerThread] = {a.x, a.y, a.z, a.w};
#pragma unroll
      for (int r = 0; r < QueriesPerThread; ++r) {
        const float qv = queryTile[j][ty * QueriesPerThread + r];  // broadcast within the warp
#pragma unroll
        for (int c = 0; c < kAdsPerThread; ++c) acc[r][c] = fmaf(qv, av[c], acc[r][c]);
      }
    }
    __syncthreads();  // the tiles are overwritten by the next step
  }

  // Epilogue: mask, add bias, compare with the threshold, append. Every lane of the warp takes
  // part in each ballot (no early exit above), and all lanes of a warp share one query row.
  const unsigned lane = static_cast<unsigned>(tx);
  const unsigned lanesBelow = (1u << lane) - 1u;
  bool adOk[kAdsPerThread];
  float adBias[kAdsPerThread];
#pragma unroll
  for (int c = 0; c < kAdsPerThread; ++c) {
    const size_t ad = adBase + static_cast<size_t>(tx) * kAdsPerThread + c;
    bool ok = ad < args.chunkEnd;
    if (ok && args.eligible != nullptr) ok = (args.eligible[ad >> 6] >> (ad & 63)) & 1u;
    adOk[c] = ok;
    adBias[c] = (ok && args.bias != nullptr) ? args.bias[ad] : 0.0f;
  }
#pragma unroll
  for (int r = 0; r < QueriesPerThread; ++r) {
    const int q = queryBase + ty * QueriesPerThread + r;
    if (q >= args.nq) continue;  // uniform across the warp: q depends on ty only
    const float threshold = args.thresholds[q];
    float* outScores = args.candScores + static_cast<size_t>(q) * args.capacity;
    uint32_t* outSlots = args.candSlots + static_cast<size_t>(q) * args.capacity;
#pragma unroll
    for (int c = 0; c < kAdsPerThread; ++c) {
      const float score = acc[r][c] + adBias[c];
      const bool pass = adOk[c] && score > threshold;  // NaN never passes
      const unsigned ballot = __ballot_sync(0xffffffffu, pass);
      if (ballot == 0u) continue;  // uniform
      const int leader = __ffs(static_cast<int>(ballot)) - 1;
      uint32_t base = 0;
      if (static_cast<int>(lane) == leader) base = atomicAdd(&args.counts[q], static_cast<uint32_t>(__popc(ballot)));
      base = __shfl_sync(0xffffffffu, base, leader);
      if (pass) {
        const size_t pos = static_cast<size_t>(base) + static_cast<size_t>(__popc(ballot & lanesBelow));
        if (pos < args.capacity) {
          outScores[pos] = score;
          outSlots[pos] = static_cast<uint32_t>(adBase + static_cast<size_t>(tx) * kAdsPerThread + c);
        } else {
          atomicOr(args.errorFlag, kErrorCandidateOverflow);
        }
      }
    }
  }
}

}  // namespace cangen::gpu
