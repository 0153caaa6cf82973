#pragma once
// The scorer's bf16 tiles: the layers of scorer/tile.h with the GEMMs' inputs and weights in bf16
// pairs, so that one VDPBF16PS does two multiply-adds per lane (AVX-512 BF16; the AVX2 build
// computes the same sums with fused multiply-adds). Activations are rounded to bf16 between
// layers; biases, layer norm, activations and the MoL softmax stay fp32. The scores are
// approximate: a bf16 scan keeps a window of candidates per user and scores them again in fp32
// (Scorer::searchReduced, scorer/scorer_reduced.cc).
//
// Layout: a word holds two consecutive input rows of one ad, the lower-numbered row in the low 16
// bits. A tile of words is [pair][32 ads] like TileIn; packed weights are PackedDense's blocks of
// 8 output rows with a word per (pair, row).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/aligned_buffer.h"
#include "scorer/tile.h"

namespace cangen {

struct TileWords {
  const uint32_t* lo = nullptr;
  const uint32_t* hi = nullptr;
  size_t stride = 0;
};

struct PackedPairs {
  int pairs = 0;   // (p.in + 1) / 2: an odd input count is padded with a zero row
  int outPad = 0;
  AlignedBuffer<uint32_t> words;  // outPad / 8 blocks x pairs x 8
};

// The bf16 copy of a packed fp32 layer (bias, norm and widths stay with the fp32 one).
PackedPairs packPairs(const PackedDense& p);

struct MlpPlanBf16 {
  std::vector<PackedPairs> layers;  // plan.layers in bf16
};

struct MolPlanBf16 {
  int keyPairs = 0;  // word rows per item component: each component's dc rows paired on their own
  PackedPairs gateLogits, gateOut;
};

MlpPlanBf16 buildMlpPlanBf16(const MlpPlan& plan);
MolPlanBf16 buildMolPlanBf16(const MolPlan& plan);

// Words of scratch one thread needs beside the fp32 scratch (mlp/molScratchFloats): the
// activations of the widest GEMM input, in pairs.
size_t mlpScratchWords(const MlpPlan& plan);
size_t molScratchWords(const MolPlan& plan);

// One instruction set's bf16 tiles. `scores` receives 32 approximate blended scores.
struct TileKernelsBf16 {
  const char* name;
  // x: the ads' fp32 plane (read when the first layer is precomputed per ad); xw: their bf16 plane
  // (read otherwise, with `first` the user's folded first layer in bf16).
  void (*mlp)(const MlpPlan&, const MlpPlanBf16&, const MlpUserPlan&, const PackedPairs& first, const TileIn& x,
              const TileWords& xw, float* scratch, uint32_t* words, float* scores);
  // keys: the bf16 item components (keyPairs word rows each); gate: the fp32 item half of the gating layer.
  void (*mol)(const MolPlan&, const MolPlanBf16&, const MolUserPlan&, const PackedPairs& query, const TileWords& keys,
              const TileIn& gate, float* scratch, uint32_t* words, float* scores);
};

// The AVX-512 BF16 tiles when this CPU has VDPBF16PS (and CANGEN_SCORER_SIMD does not force
// avx2), else the AVX2 ones.
const TileKernelsBf16& bestTileKernelsBf16();
bool cpuHasBf16Dot();

namespace tile_avx2 {
extern const TileKernelsBf16 kernelsBf16;
}
namespace tile_avx512 {
extern const TileKernelsBf16 kernelsBf16;
}

}  // namespace cangen
