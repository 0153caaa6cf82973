// Built instead of scorer_gpu.cu when CUDA is not compiled in: the constructor says why there is
// no device, so nothing past it can be reached.
#include "common/error.h"
#include "scorer/gpu_scorer.h"

namespace cangen::gpu {

struct GpuScorer::State {};

GpuScorer::GpuScorer(int, const ScorerModel&) {
  throw Error(ErrorCode::NoDevice, "CUDA support was not compiled in (nvcc not found at build time or CANGEN_WITH_CUDA=OFF)");
}
GpuScorer::~GpuScorer() = default;
void GpuScorer::sync(const GpuPlaneView&, size_t) {}
bool GpuScorer::search(const std::vector<GpuUserInputs>&, const uint64_t*, int, int64_t*, float*, std::string*) {
  return false;
}

}  // namespace cangen::gpu
