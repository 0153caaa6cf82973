// Built instead of gpu_flat_search.cu when CUDA is not compiled in: the same functions, saying why
// there is no device. Members past the constructor cannot be reached (it always throws).
#include "common/error.h"
#include "cuda/gpu_flat_search.h"

namespace cangen::gpu {

namespace {
const char* const kNoCudaReason =
    "CUDA support was not compiled in (nvcc not found at build time or CANGEN_WITH_CUDA=OFF)";
}

struct GpuFlatSearcher::State {};

bool compiledWithCuda() { return false; }
int deviceCount() { return 0; }
std::string describeDevice(int) { return kNoCudaReason; }

GpuFlatSearcher::GpuFlatSearcher(int) { throw Error(ErrorCode::NoDevice, kNoCudaReason); }
GpuFlatSearcher::~GpuFlatSearcher() = default;

void GpuFlatSearcher::sync(const PanelView&, size_t) {
  throw Error(ErrorCode::NoDevice, kNoCudaReason);
}

void GpuFlatSearcher::search(const float*, int, int, const uint64_t*, int64_t*, float*) {
  throw Error(ErrorCode::NoDevice, kNoCudaReason);
}

}  // namespace cangen::gpu
