// Built instead of sequence_gpu.cu when CUDA is not compiled in: the constructors say why there
// is no device, so nothing past them can be reached.
#include "common/error.h"
#include "sequence/gpu_encoder.h"

namespace cangen::gpu {

namespace {
[[noreturn]] void noCuda() {
  throw Error(ErrorCode::NoDevice, "CUDA support was not compiled in (nvcc not found at build time or CANGEN_WITH_CUDA=OFF)");
}
}  // namespace

struct GpuSequenceEncoder::State {};

GpuSequenceEncoder::GpuSequenceEncoder(int, const ::cangen::sequence::HstuEncoder&, const std::vector<float>&, const std::vector<float>&) {
  noCuda();
}
GpuSequenceEncoder::GpuSequenceEncoder(int, const ::cangen::sequence::SasRecEncoder&, const std::vector<float>&, const std::vector<float>&) {
  noCuda();
}
GpuSequenceEncoder::~GpuSequenceEncoder() = default;
int GpuSequenceEncoder::device() const { return -1; }
void GpuSequenceEncoder::lastStates(const GpuWindows&, float*) {}

}  // namespace cangen::gpu
