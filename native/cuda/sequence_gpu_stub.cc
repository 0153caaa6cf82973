// Built instead of sequence_gpu.cu when CUDA is not compiled in: the constructor says why there
// is no device, so nothing past it can be reached.
#include "common/error.h"
#include "sequence/gpu_hstu.h"

namespace cangen::gpu {

struct GpuHstu::State {};

GpuHstu::GpuHstu(int, const ::cangen::sequence::HstuEncoder&, const std::vector<float>&, const std::vector<float>&) {
  throw Error(ErrorCode::NoDevice, "CUDA support was not compiled in (nvcc not found at build time or CANGEN_WITH_CUDA=OFF)");
}
GpuHstu::~GpuHstu() = default;
int GpuHstu::device() const { return -1; }
void GpuHstu::lastStates(const HstuWindows&, float*) {}

}  // namespace cangen::gpu
