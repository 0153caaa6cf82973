#pragma once
// The scorer's unit of work: one tile of 32 ads (two consecutive 16-ad panels of flat/panels.h)
// for one user, carried through every layer with the activations kept feature-major
// ([feature][32 ads]) in a small per-thread scratch area, so each dense layer is a register-blocked
// GEMM: 8 weight rows x 32 ads of accumulators, one ad-row load feeding 8 FMAs per vector.
// Weights are packed once (or once per user for what depends on the user) in blocks of 8 rows:
// block b holds, for each input i, W[8b .. 8b+8)[i] contiguously, zero past the real rows.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/aligned_buffer.h"
#include "scorer/model.h"

namespace cangen {

constexpr int kTileAds = 32;
constexpr int kRowBlock = 8;

inline int padRows(int rows) { return (rows + kRowBlock - 1) / kRowBlock * kRowBlock; }

// Rows of a tile input: row i, ads 0-15 at lo + i * stride, ads 16-31 at hi + i * stride.
struct TileIn {
  const float* lo = nullptr;
  const float* hi = nullptr;
  size_t stride = 0;
  const float* row(int i, int half) const { return (half ? hi : lo) + static_cast<size_t>(i) * stride; }
};

// A dense layer packed for the kernels (see the header comment).
struct PackedDense {
  int in = 0;      // input rows read (may include zero-weight padding rows)
  int out = 0;     // real outputs
  int outPad = 0;  // padRows(out)
  AlignedBuffer<float> packed;  // outPad / 8 blocks x in x 8
  std::vector<float> bias;      // outPad, zero past out (empty: none)
  std::vector<float> gamma, beta;  // layer norm over the `out` real rows (empty: none)
};

// Packs an out x in row-major matrix. `columnOf(c)` maps packed input row c to the source
// column, or -1 for a zero padding column; `rowOf(r)` maps a packed output row to a source row.
template <typename ColumnOf, typename RowOf>
void packDense(const float* weight, int srcIn, int in, int out, ColumnOf columnOf, RowOf rowOf, PackedDense& p) {
  p.in = in;
  p.out = out;
  p.outPad = padRows(out);
  p.packed.resize(0);
  p.packed.resize(static_cast<size_t>(p.outPad) * in);
  for (int r = 0; r < out; ++r) {
    const int src = rowOf(r);
    float* block = p.packed.data() + static_cast<size_t>(r / kRowBlock) * in * kRowBlock + r % kRowBlock;
    for (int c = 0; c < in; ++c) {
      const int col = columnOf(c);
      block[static_cast<size_t>(c) * kRowBlock] = col < 0 ? 0.0f : weight[static_cast<size_t>(src) * srcIn + col];
    }
  }
}

inline void packDense(const float* weight, int in, int out, PackedDense& p) {
  packDense(weight, in, in, out, [](int c) { return c; }, [](int r) { return r; }, p);
}

// What an MLP needs per user (blending and the first layer folded in; see scorer/plan.cc).
struct MlpUserPlan {
  PackedDense first;           // folded first layer over x (empty packed when precomputed per ad)
  std::vector<float> firstBias;  // padRows(h1): user half of the first layer plus its bias
  std::vector<float> outWeights; // padRows(last): sum_h w_h W_out[h]
  float outBias = 0;             // sum_h w_h b_out[h]
};

struct MlpPlan {
  Activation activation = Activation::Relu;
  float eps = 1e-5f;
  bool precomputedFirst = false;  // ads carry W_x x (no cross feature): layer 1 is an add
  std::vector<float> firstGamma, firstBeta;  // layer norm of the first layer (or empty)
  int firstOut = 0;
  std::vector<PackedDense> layers;  // hidden layers after the first
};

struct MolUserPlan {
  PackedDense query;            // PQ x dc: normalised query components / temperature
  std::vector<float> gateBias;  // padRows(G): G_u u + b_G
  std::vector<float> headWeights;
};

struct MolPlan {
  Activation activation = Activation::Relu;
  int queryComponents = 0, queryPad = 0, itemComponents = 0, componentDim = 0, heads = 1;
  PackedDense gateLogits;  // G x (PX * queryPad), input order (item component, query component)
  PackedDense gateOut;     // (heads * P) x G, rows in (head, item component, query component) order
};

// An MLP tile's scratch is two equal buffers the layers ping-pong between (one layer reads one
// and writes the other), each as tall as the widest padded layer: a later layer wider than the
// first must not write into rows the layer is still reading.
inline int mlpBufferRows(const MlpPlan& plan) {
  int rows = std::max(padRows(plan.firstOut), kRowBlock);
  for (const PackedDense& layer : plan.layers) rows = std::max(rows, layer.outPad);
  return rows;
}

// Scratch floats one thread needs for one tile.
size_t mlpScratchFloats(const MlpPlan& plan);
size_t molScratchFloats(const MolPlan& plan);

// One instruction set's kernels. `scores` receives 32 blended scores.
struct TileKernels {
  const char* name;
  // out (p.outPad rows of 32) = p applied to x, plus bias (p.outPad values, or null).
  void (*dense)(const PackedDense& p, const TileIn& x, const float* bias, const TileIn* init, float* out);
  void (*mlp)(const MlpPlan&, const MlpUserPlan&, const TileIn& x, float* scratch, float* scores);
  void (*mol)(const MolPlan&, const MolUserPlan&, const TileIn& keys, const TileIn& gate, float* scratch,
              float* scores);
};

// The fastest variant this CPU runs (AVX-512 or AVX2), chosen once.
const TileKernels& bestTileKernels();

namespace tile_avx2 {
extern const TileKernels kernels;
}
namespace tile_avx512 {
extern const TileKernels kernels;
}

}  // namespace cangen
