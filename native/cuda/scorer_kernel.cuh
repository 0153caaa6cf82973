#pragma once
// Device code of the scorer's GPU scan (launcher: scorer_gpu.cu). One block scores one tile of 32
// ads (two 16-ad panels of flat/panels.h) for one user, carrying the activations through every
// layer in shared memory as [feature][32 ads]: lane = ad, warp = output rows, so each weight
// load is a warp-wide broadcast and each activation load is conflict-free. Scores never leave
// the block unless they beat the user's running threshold: they are appended to the user's
// candidate buffer, which the launcher cuts back to k between chunks.
//
// All arithmetic is fp32 (the tests compare to a float64 reference at 1e-4).
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace cangen::gpu::scorer {

constexpr int kTile = 32;
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

enum Kind : int { kDot = 0, kMlp = 1, kMol = 2 };
enum Act : int { kRelu = 0, kSilu = 1 };

struct DeviceLayer {
  const float* weight = nullptr;  // out x in, row-major
  const float* bias = nullptr;    // out, or null
  const float* gamma = nullptr;   // layer norm, or null
  const float* beta = nullptr;
  int in = 0, out = 0;
};

constexpr int kMaxLayers = 8;

struct ScanArgs {
  int kind, act;
  float eps;
  // Planes (panel layout) and their rows.
  const float* plane0;
  const float* plane1;
  int rows0, rows1;
  size_t chunkBegin, chunkEnd;  // ads; chunkBegin a multiple of kTile
  const uint64_t* eligible;     // bitmap over slots, or null
  // Per user (blockIdx.y), row-major, strides in floats.
  const float* first; size_t firstStride;        // mlp folded first layer (h1 x itemDim), or null
  const float* firstBias; size_t firstBiasStride; // mlp h1 / mol G (gate bias) / dot unused
  const float* outWeights; size_t outStride;      // mlp last width
  const float* outBias;                           // mlp: per user
  const float* query; size_t queryStride;         // dot: itemDim; mol: PQ x dc
  const float* headWeights;                       // mol: per user, heads
  // mlp
  int h1; const float* firstGamma; const float* firstBeta;
  int layers; DeviceLayer layer[kMaxLayers];
  int itemDim;
  int maxRows;  // mlp: widest of itemDim and every layer (rows of each shared buffer)
  // mol
  int pq, px, dc, g, heads;
  const float* gateLogits;  // G x P
  const float* gateOut;     // heads*P x G
  const float* gateOutBias; // heads*P
  // candidates
  const float* thresholds;  // per user
  uint32_t* counts;         // per user
  float* candScores;        // users x capacity
  uint32_t* candSlots;
  size_t capacity;
  int* overflow;
};

__device__ __forceinline__ float planeAt(const float* plane, int rows, size_t tileIndex, int r, int a) {
  const size_t panel = tileIndex * 2 + (a >> 4);
  return plane[(panel * rows + r) * 16 + (a & 15)];
}

__device__ __forceinline__ float activate(float z, int act) {
  return act == kRelu ? fmaxf(z, 0.0f) : z / (1.0f + __expf(-z));
}

// dst[o][lane] = bias[o] + sum_i W[o][i] src[i][lane] for the layer's rows, warps over o.
__device__ void denseRows(const float* __restrict__ weight, int in, int out, const float* bias, const float* src,
                          float* dst) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int o = warp; o < out; o += kWarps) {
    const float* w = weight + static_cast<size_t>(o) * in;
    float acc = bias ? __ldg(bias + o) : 0.0f;
    for (int i = 0; i < in; ++i) acc = fmaf(__ldg(w + i), src[i * kTile + lane], acc);
    dst[o * kTile + lane] = acc;
  }
}

// Layer norm over `rows` rows of each ad column (the first 32 threads, one column each), then the activation.
__device__ void normActivate(float* h, int rows, const float* gamma, const float* beta, float eps, int act) {
  __syncthreads();
  if (gamma != nullptr && threadIdx.x < kTile) {
    const int a = threadIdx.x;
    float mean = 0, sq = 0;
    for (int r = 0; r < rows; ++r) mean += h[r * kTile + a];
    mean /= rows;
    for (int r = 0; r < rows; ++r) {
      const float d = h[r * kTile + a] - mean;
      sq += d * d;
    }
    const float rstd = rsqrtf(sq / rows + eps);
    for (int r = 0; r < rows; ++r) h[r * kTile + a] = (h[r * kTile + a] - mean) * rstd * __ldg(gamma + r) + __ldg(beta + r);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < rows * kTile; i += kThreads) h[i] = activate(h[i], act);
  __syncthreads();
}

// Grid: x = tiles of the chunk, y = users. Dynamic shared memory: see sharedFloats() in the launcher.
__global__ void __launch_bounds__(kThreads) scorerScanKernel(ScanArgs args) {
  extern __shared__ float shared[];
  const int user = blockIdx.y;
  const size_t tile = args.chunkBegin / kTile + blockIdx.x;
  const int lane = threadIdx.x & 31;
  float score = 0.0f;

  if (args.kind == kDot) {
    if (threadIdx.x < kTile) {
      const float* q = args.query + user * args.queryStride;
      for (int j = 0; j < args.itemDim; ++j) score = fmaf(__ldg(q + j), planeAt(args.plane0, args.rows0, tile, j, lane), score);
    }
  } else if (args.kind == kMlp) {
    float* a = shared;
    float* b = shared + static_cast<size_t>(args.maxRows) * kTile;
    const float* firstBias = args.firstBias + user * args.firstBiasStride;
    if (args.first != nullptr) {
      for (int i = threadIdx.x; i < args.itemDim * kTile; i += kThreads)
        a[i] = planeAt(args.plane0, args.rows0, tile, i / kTile, i % kTile);
      __syncthreads();
      denseRows(args.first + user * args.firstStride, args.itemDim, args.h1, firstBias, a, b);
    } else {
      for (int i = threadIdx.x; i < args.h1 * kTile; i += kThreads)
        b[i] = __ldg(firstBias + i / kTile) + planeAt(args.plane0, args.rows0, tile, i / kTile, i % kTile);
    }
    normActivate(b, args.h1, args.firstGamma, args.firstBeta, args.eps, args.act);
    float* h = b;
    float* next = a;
    int rows = args.h1;
    for (int l = 0; l < args.layers; ++l) {
      const DeviceLayer& d = args.layer[l];
      denseRows(d.weight, d.in, d.out, d.bias, h, next);
      normActivate(next, d.out, d.gamma, d.beta, args.eps, args.act);
      float* t = h;
      h = next;
      next = t;
      rows = d.out;
    }
    if (threadIdx.x < kTile) {
      const float* w = args.outWeights + user * args.outStride;
      score = args.outBias[user];
      for (int r = 0; r < rows; ++r) score = fmaf(__ldg(w + r), h[r * kTile + lane], score);
    }
  } else {
    const int p = args.pq * args.px;
    float* keys = shared;                                          // px*dc x 32
    float* logits = keys + static_cast<size_t>(args.rows0) * kTile;  // p x 32, model order (i * px + j)
    float* hidden = logits + static_cast<size_t>(p) * kTile;         // g x 32
    float* gates = hidden + static_cast<size_t>(args.g) * kTile;     // heads*p x 32
    for (int i = threadIdx.x; i < args.rows0 * kTile; i += kThreads)
      keys[i] = planeAt(args.plane0, args.rows0, tile, i / kTile, i % kTile);
    __syncthreads();
    const float* q = args.query + user * args.queryStride;
    const int warp = threadIdx.x >> 5;
    for (int l = warp; l < p; l += kWarps) {
      const int i = l / args.px, j = l % args.px;
      float acc = 0;
      for (int c = 0; c < args.dc; ++c) acc = fmaf(__ldg(q + i * args.dc + c), keys[(j * args.dc + c) * kTile + lane], acc);
      logits[l * kTile + lane] = acc;
    }
    __syncthreads();
    const float* gateBias = args.firstBias + user * args.firstBiasStride;
    for (int o = warp; o < args.g; o += kWarps) {
      const float* w = args.gateLogits + static_cast<size_t>(o) * p;
      float acc = __ldg(gateBias + o) + planeAt(args.plane1, args.rows1, tile, o, lane);
      for (int i = 0; i < p; ++i) acc = fmaf(__ldg(w + i), logits[i * kTile + lane], acc);
      hidden[o * kTile + lane] = activate(acc, args.act);
    }
    __syncthreads();
    denseRows(args.gateOut, args.g, args.heads * p, args.gateOutBias, hidden, gates);
    __syncthreads();
    if (threadIdx.x < kTile) {
      const float* hw = args.headWeights + static_cast<size_t>(user) * args.heads;
      for (int h = 0; h < args.heads; ++h) {
        const float* gh = gates + static_cast<size_t>(h) * p * kTile;
        float m = gh[lane];
        for (int i = 1; i < p; ++i) m = fmaxf(m, gh[i * kTile + lane]);
        float sum = 0, weighted = 0;
        for (int i = 0; i < p; ++i) {
          const float e = __expf(gh[i * kTile + lane] - m);
          sum += e;
          weighted = fmaf(e, logits[i * kTile + lane], weighted);
        }
        score = fmaf(__ldg(hw + h), weighted / sum, score);
      }
    }
  }

  if (threadIdx.x < kTile) {
    const size_t slot = tile * kTile + lane;
    bool keep = slot < args.chunkEnd && score > args.thresholds[user];
    if (keep && args.eligible != nullptr) keep = (args.eligible[slot >> 6] >> (slot & 63)) & 1u;
    if (keep) {
      const uint32_t at = atomicAdd(args.counts + user, 1u);
      if (at < args.capacity) {
        args.candScores[user * args.capacity + at] = score;
        args.candSlots[user * args.capacity + at] = static_cast<uint32_t>(slot);
      } else {
        atomicOr(args.overflow, 1);
      }
    }
  }
}

// Segment bounds for the segmented sort, and the cut back to k afterwards.
__global__ void segmentsKernel(const uint32_t* counts, size_t capacity, int users, int* begin, int* end) {
  const int u = blockIdx.x * blockDim.x + threadIdx.x;
  if (u < users) {
    begin[u] = static_cast<int>(u * capacity);
    end[u] = static_cast<int>(u * capacity + min(static_cast<size_t>(counts[u]), capacity));
  }
}

__global__ void cutKernel(uint32_t* counts, float* thresholds, const float* sortedScores, size_t capacity, int users, int k) {
  const int u = blockIdx.x * blockDim.x + threadIdx.x;
  if (u < users && counts[u] >= static_cast<uint32_t>(k)) {
    counts[u] = k;
    thresholds[u] = sortedScores[u * capacity + k - 1];
  }
}

__global__ void resetKernel(uint32_t* counts, float* thresholds, int users) {
  const int u = blockIdx.x * blockDim.x + threadIdx.x;
  if (u < users) {
    counts[u] = 0;
    thresholds[u] = -__int_as_float(0x7f800000);
  }
}

}  // namespace cangen::gpu::scorer
