#include "scorer/tile_bf16.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "flat/reduced_panels.h"

namespace cangen {

PackedPairs packPairs(const PackedDense& p) {
  PackedPairs out;
  out.pairs = (p.in + 1) / 2;
  out.outPad = p.outPad;
  out.words.resize(static_cast<size_t>(p.outPad) * out.pairs);
  for (int b = 0; b < p.outPad / kRowBlock; ++b) {
    const float* block = p.packed.data() + static_cast<size_t>(b) * p.in * kRowBlock;
    uint32_t* words = out.words.data() + static_cast<size_t>(b) * out.pairs * kRowBlock;
    for (int g = 0; g < out.pairs; ++g) {
      for (int r = 0; r < kRowBlock; ++r) {
        const uint32_t low = toBf16(block[static_cast<size_t>(2 * g) * kRowBlock + r]);
        const uint32_t high = 2 * g + 1 < p.in ? toBf16(block[static_cast<size_t>(2 * g + 1) * kRowBlock + r]) : 0;
        words[static_cast<size_t>(g) * kRowBlock + r] = low | high << 16;
      }
    }
  }
  return out;
}

MlpPlanBf16 buildMlpPlanBf16(const MlpPlan& plan) {
  MlpPlanBf16 out;
  for (const PackedDense& layer : plan.layers) out.layers.push_back(packPairs(layer));
  return out;
}

MolPlanBf16 buildMolPlanBf16(const MolPlan& plan) {
  MolPlanBf16 out;
  out.keyPairs = (plan.componentDim + 1) / 2;
  out.gateLogits = packPairs(plan.gateLogits);
  out.gateOut = packPairs(plan.gateOut);
  return out;
}

size_t mlpScratchWords(const MlpPlan& plan) { return static_cast<size_t>(mlpBufferRows(plan)) / 2 * kTileAds; }

size_t molScratchWords(const MolPlan& plan) {
  const int rows = std::max(plan.itemComponents * plan.queryPad, plan.gateLogits.outPad);
  return static_cast<size_t>(rows) / 2 * kTileAds;
}

bool cpuHasBf16Dot() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
}

const TileKernelsBf16& bestTileKernelsBf16() {
  static const TileKernelsBf16& chosen = []() -> const TileKernelsBf16& {
    const char* forced = std::getenv("CANGEN_SCORER_SIMD");
    if (forced != nullptr && std::strcmp(forced, "avx2") == 0) return tile_avx2::kernelsBf16;
    return cpuHasBf16Dot() ? tile_avx512::kernelsBf16 : tile_avx2::kernelsBf16;
  }();
  return chosen;
}

}  // namespace cangen
