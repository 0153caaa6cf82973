#include "scorer/tile.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace cangen {

size_t mlpScratchFloats(const MlpPlan& plan) { return 2 * static_cast<size_t>(mlpBufferRows(plan)) * kTileAds; }

size_t molScratchFloats(const MolPlan& plan) {
  const size_t rows = static_cast<size_t>(plan.itemComponents) * plan.queryPad + plan.gateLogits.outPad +
                      plan.gateOut.outPad;
  return rows * kTileAds;
}

const TileKernels& bestTileKernels() {
  static const TileKernels& chosen = [] () -> const TileKernels& {
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    // CANGEN_SCORER_SIMD=avx2 forces the AVX2 kernels (to test them on an AVX-512 machine).
    const char* forced = std::getenv("CANGEN_SCORER_SIMD");
    if (forced != nullptr && std::strcmp(forced, "avx2") == 0) return tile_avx2::kernels;
    return avx512 ? tile_avx512::kernels : tile_avx2::kernels;
  }();
  return chosen;
}

}  // namespace cangen
