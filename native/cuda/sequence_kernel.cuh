#pragma once
// Device code of the sequence encoders (host side in sequence_gpu.cu; the math in
// sequence/sequence_model.h, the CPU references in sequence/hstu.cc and sasrec.cc). Rows are
// tokens of a batch of users' windows laid end to end; firstToken[t] is the first token of t's user, so that
// t's position in its window is t - firstToken[t] and its keys are the tokens before it there.
#include <cuda_runtime.h>

#include <cstdint>

namespace cangen::gpu::sequence_kernels {

constexpr float kNormEps = 1e-5f;  // as sequence/layers.h
constexpr int kWarp = 32;

// x[t] = itemTable[rows[t]] (+ actionWeight[actions[t]]) (+ position[positions[t]]); rows[t] < 0:
// the zero padding token. actions / positions null: none.
__global__ void embedKernel(const float* __restrict__ table, const float* __restrict__ actionWeight, const int32_t* __restrict__ rows,
                            const int32_t* __restrict__ actions, const float* __restrict__ position,
                            const int32_t* __restrict__ positions, int tokens, int dim, float* __restrict__ x) {
  const size_t total = static_cast<size_t>(tokens) * dim;
  for (size_t e = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; e < total; e += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t t = e / dim, c = e % dim;
    const int32_t row = rows[t];
    float v = 0.0f;
    if (row >= 0) {
      v = table[static_cast<size_t>(row) * dim + c];
      if (actions != nullptr) v += actionWeight[static_cast<size_t>(actions[t]) * dim + c];
      // SASRec adds the position to the token with its action (as sasrec.cc: token, then + position).
      if (positions != nullptr && positions[t] >= 0) v += position[static_cast<size_t>(positions[t]) * dim + c];
    }
    x[e] = v;
  }
}

__device__ inline double warpSum(double v) {
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// LayerNorm of row source[r] (source = r when null) of x into row r of y, one warp a row; the
// statistics in double as the CPU path keeps them. gamma/beta null: no affine.
__global__ void layerNormKernel(const float* __restrict__ x, const int32_t* __restrict__ source, int rows, int dim,
                                const float* __restrict__ gamma, const float* __restrict__ beta, float* __restrict__ y) {
  const int warpsPerBlock = blockDim.x / kWarp, lane = threadIdx.x % kWarp;
  const int r = blockIdx.x * warpsPerBlock + threadIdx.x / kWarp;
  if (r >= rows) return;
  const float* in = x + static_cast<size_t>(source ? source[r] : r) * dim;
  float* out = y + static_cast<size_t>(r) * dim;
  double sum = 0;
  for (int c = lane; c < dim; c += kWarp) sum += in[c];
  const double mean = warpSum(sum) / dim;
  double squares = 0;
  for (int c = lane; c < dim; c += kWarp) squares += (in[c] - mean) * (in[c] - mean);
  const double var = warpSum(squares) / dim;
  const float m = static_cast<float>(mean), inv = static_cast<float>(1.0 / sqrt(var + kNormEps));
  for (int c = lane; c < dim; c += kWarp) {
    const float v = (in[c] - m) * inv;
    out[c] = gamma ? v * gamma[c] + beta[c] : v;
  }
}

__device__ inline float siluOf(float v) { return v / (1.0f + expf(-v)); }
// The exact (erf) GELU, as sequence/layers.h.
__device__ inline float geluOf(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }

// y = x W^T + b for x rows x in and W^T in x out (the CPU Linear's layout), in 64 x 64 tiles of
// 256 threads, each thread 4 x 4 outputs; grid (ceil(out / 64), ceil(rows / 64)).
// Epilogue: kStore writes y[r]; kStoreSilu / kStoreGelu write SiLU / GELU of it; kAddToRows adds
// it to y[target[r]] (target null: y[r]).
enum LinearEpilogue { kStore = 0, kStoreSilu = 1, kStoreGelu = 2, kAddToRows = 3 };
constexpr int kTileRows = 64, kTileCols = 64, kTileDepth = 16, kLinearThreads = 256;

__global__ void __launch_bounds__(kLinearThreads) linearKernel(const float* __restrict__ x, int rows, int in, const float* __restrict__ weightT,
                                                               const float* __restrict__ bias, int out, int epilogue,
                                                               const int32_t* __restrict__ target, float* __restrict__ y) {
  __shared__ float xs[kTileDepth][kTileRows + 1];
  __shared__ float ws[kTileDepth][kTileCols];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int row0 = blockIdx.y * kTileRows, col0 = blockIdx.x * kTileCols;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < in; k0 += kTileDepth) {
    for (int e = threadIdx.x; e < kTileRows * kTileDepth; e += kLinearThreads) {
      const int r = e / kTileDepth, k = e % kTileDepth, gr = row0 + r, gk = k0 + k;
      xs[k][r] = gr < rows && gk < in ? x[static_cast<size_t>(gr) * in + gk] : 0.0f;
    }
    for (int e = threadIdx.x; e < kTileDepth * kTileCols; e += kLinearThreads) {
      const int k = e / kTileCols, c = e % kTileCols, gk = k0 + k, gc = col0 + c;
      ws[k][c] = gk < in && gc < out ? weightT[static_cast<size_t>(gk) * out + gc] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kTileDepth; ++k) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = xs[k][ty + 16 * i], b[i] = ws[k][tx + 16 * i];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = row0 + ty + 16 * i;
    if (r >= rows) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int c = col0 + tx + 16 * j;
      if (c >= out) continue;
      const float v = acc[i][j] + bias[c];
      if (epilogue == kAddToRows) y[static_cast<size_t>(target ? target[r] : r) * out + c] += v;
      else y[static_cast<size_t>(r) * out + c] = epilogue == kStoreSilu ? siluOf(v) : epilogue == kStoreGelu ? geluOf(v) : v;
    }
  }
}

// The bucket of a time gap, as sequence/hstu.cc's timeBucket: the float log through double, which
// rounds to the correctly rounded float log the host's logf gives.
__device__ inline int timeBucketOf(double gap, int buckets) {
  const float clamped = static_cast<float>(fmax(fabs(gap), 1.0));
  const float bucket = floorf(static_cast<float>(log(static_cast<double>(clamped))) / 0.301f);
  return static_cast<int>(fminf(fmaxf(bucket, 0.0f), static_cast<float>(buckets)));
}

// Query row r of an attention kernel: its token t, the first token of t's user, t's position i
// in the window and the first key it may attend to (causal, within the short window when set).
struct QueryRow {
  int t, first, i, lo;
};
__device__ inline QueryRow queryRow(const int32_t* queries, const int32_t* firstToken, int r, int window) {
  QueryRow q;
  q.t = queries ? queries[r] : r;
  q.first = firstToken[q.t];
  q.i = q.t - q.first;
  q.lo = window > 0 && q.i - window + 1 > 0 ? q.i - window + 1 : 0;
  return q;
}

struct AttentionArgs {
  const float* uvqk;           // tokens x 4d (after SiLU): U, V, Q, K
  const int32_t* firstToken;   // tokens
  const int32_t* queries;      // rows: the token of each query row, or null: row r is token r
  const double* times;         // tokens, or null: no time bias
  const float* positionBias;   // maxLen
  const float* timeBias;       // timeBuckets + 1
  int rows, dim, heads, maxLen, window, timeBuckets;
  float scale;                 // 1 / maxLen
  float* attended;             // rows x d: scratch, then LN(a) * U
};

constexpr int kAttentionThreads = 128, kKeyTile = kAttentionThreads;

__device__ inline double blockSum(double v, double* scratch) {
  v = warpSum(v);
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp, warps = blockDim.x / kWarp;
  __syncthreads();  // scratch may still be read from an earlier call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double total = 0;
  for (int w = 0; w < warps; ++w) total += scratch[w];
  return total;
}

// One block per query row: per head, keys in tiles of kKeyTile (one thread a key computes
// SiLU(q.k + position bias (+ time bias)) / maxLen into shared memory), then each thread adds the
// weighted values of its channels; finally LN over the row (no affine) times U. Every channel is
// owned by one thread, so the running sums stay in the output row without atomics.
__global__ void __launch_bounds__(kAttentionThreads) attentionKernel(AttentionArgs a) {
  __shared__ float weights[kKeyTile];
  __shared__ double scratch[kAttentionThreads / kWarp];
  const int r = blockIdx.x;
  if (r >= a.rows) return;
  const int d = a.dim, width = 4 * d, dh = d / a.heads;
  const QueryRow query = queryRow(a.queries, a.firstToken, r, a.window);
  const int t = query.t, first = query.first, i = query.i, lo = query.lo;
  const float* queryVector = a.uvqk + static_cast<size_t>(t) * width + 2 * d;
  float* row = a.attended + static_cast<size_t>(r) * d;
  for (int c = threadIdx.x; c < d; c += blockDim.x) row[c] = 0.0f;
  for (int h = 0; h < a.heads; ++h) {
    const float* q = queryVector + h * dh;
    for (int j0 = lo; j0 <= i; j0 += kKeyTile) {
      const int count = min(kKeyTile, i - j0 + 1);
      __syncthreads();  // the last tile's weights are read
      if (threadIdx.x < count) {
        const int j = j0 + threadIdx.x;
        const float* k = a.uvqk + static_cast<size_t>(first + j) * width + 3 * d + h * dh;
        float s = 0.0f;
        for (int c = 0; c < dh; ++c) s = fmaf(q[c], k[c], s);
        float bias = a.positionBias[min(i - j, a.maxLen - 1)];
        if (a.times) bias += a.timeBias[timeBucketOf(a.times[t] - a.times[first + j], a.timeBuckets)];
        weights[threadIdx.x] = siluOf(s + bias) * a.scale;
      }
      __syncthreads();
      for (int c = threadIdx.x; c < dh; c += blockDim.x) {
        const float* v = a.uvqk + static_cast<size_t>(first + j0) * width + d + h * dh + c;
        float sum = 0.0f;
        for (int jj = 0; jj < count; ++jj) sum = fmaf(weights[jj], v[static_cast<size_t>(jj) * width], sum);
        row[h * dh + c] += sum;
      }
    }
  }
  __syncthreads();
  double sum = 0;
  for (int c = threadIdx.x; c < d; c += blockDim.x) sum += row[c];
  const double mean = blockSum(sum, scratch) / d;
  double squares = 0;
  for (int c = threadIdx.x; c < d; c += blockDim.x) squares += (row[c] - mean) * (row[c] - mean);
  const double var = blockSum(squares, scratch) / d;
  const float m = static_cast<float>(mean), inv = static_cast<float>(1.0 / sqrt(var + kNormEps));
  const float* u = a.uvqk + static_cast<size_t>(t) * width;
  for (int c = threadIdx.x; c < d; c += blockDim.x) row[c] = (row[c] - m) * inv * u[c];
}

__device__ inline float blockMax(float v, float* scratch) {
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp, warps = blockDim.x / kWarp;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float top = -INFINITY;
  for (int w = 0; w < warps; ++w) top = fmaxf(top, scratch[w]);
  return top;
}

struct SoftmaxAttentionArgs {
  const float* qkv;            // tokens x 3d: Q, K, V
  const int32_t* firstToken;   // tokens
  const int32_t* queries;      // rows: the token of each query row, or null: row r is token r
  int rows, dim, heads, window;
  float scale;                 // 1 / sqrt(d / heads)
  float* context;              // rows x d
};

// SASRec's causal softmax attention, one block per query row and per head two passes over the
// allowed keys: the largest score, then exp(score - largest) weights (in tiles through shared
// memory) summed into each thread's channels with their total, divided at the end.
__global__ void __launch_bounds__(kAttentionThreads) softmaxAttentionKernel(SoftmaxAttentionArgs a) {
  __shared__ float weights[kKeyTile];
  __shared__ float maxScratch[kAttentionThreads / kWarp];
  __shared__ double sumScratch[kAttentionThreads / kWarp];
  const int r = blockIdx.x;
  if (r >= a.rows) return;
  const QueryRow query = queryRow(a.queries, a.firstToken, r, a.window);
  const int t = query.t, first = query.first, i = query.i, lo = query.lo;
  const int d = a.dim, width = 3 * d, dh = d / a.heads;
  float* row = a.context + static_cast<size_t>(r) * d;
  for (int h = 0; h < a.heads; ++h) {
    const float* q = a.qkv + static_cast<size_t>(t) * width + h * dh;
    auto score = [&](int j) {
      const float* k = a.qkv + static_cast<size_t>(first + j) * width + d + h * dh;
      float s = 0.0f;
      for (int c = 0; c < dh; ++c) s = fmaf(q[c], k[c], s);
      return s * a.scale;
    };
    float top = -INFINITY;
    for (int j = lo + threadIdx.x; j <= i; j += blockDim.x) top = fmaxf(top, score(j));
    top = blockMax(top, maxScratch);
    double partial = 0;  // this thread's share of the total
    for (int c = threadIdx.x; c < dh; c += blockDim.x) row[h * dh + c] = 0.0f;
    for (int j0 = lo; j0 <= i; j0 += kKeyTile) {
      const int count = min(kKeyTile, i - j0 + 1);
      __syncthreads();  // the last tile's weights are read
      if (threadIdx.x < count) {
        const float e = expf(score(j0 + threadIdx.x) - top);
        weights[threadIdx.x] = e;
        partial += e;
      }
      __syncthreads();
      for (int c = threadIdx.x; c < dh; c += blockDim.x) {  // each channel is this thread's alone
        const float* v = a.qkv + static_cast<size_t>(first + j0) * width + 2 * d + h * dh + c;
        float sum = 0.0f;
        for (int jj = 0; jj < count; ++jj) sum = fmaf(weights[jj], v[static_cast<size_t>(jj) * width], sum);
        row[h * dh + c] += sum;
      }
    }
    const float total = static_cast<float>(blockSum(partial, sumScratch));
    for (int c = threadIdx.x; c < dh; c += blockDim.x) row[h * dh + c] /= total;
  }
}

}  // namespace cangen::gpu::sequence_kernels
