#include "flat/gpu_mirror.h"

#include <algorithm>
#include <string>

#include "common/error.h"
#include "cuda/gpu_flat_search.h"

namespace cangen {

GpuMirror::GpuMirror() = default;
GpuMirror::~GpuMirror() = default;

void GpuMirror::markDirty(size_t firstAd) {
  std::lock_guard<std::mutex> lock(mutex_);
  firstDirtyAd_ = std::min(firstDirtyAd_, firstAd);
}

void GpuMirror::search(const PanelView& view, const float* queries, int nq, int k, const uint64_t* eligible,
                       int device, int64_t* outSlots, float* outScores) {
  if (k > gpu::kMaxGpuK) {
    throw Error(ErrorCode::InvalidArgument,
                "Expected k <= " + std::to_string(gpu::kMaxGpuK) + " on the GPU but received " + std::to_string(k));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (!searcher_ || device_ != device) {
    searcher_ = std::make_unique<gpu::GpuFlatSearcher>(device);
    device_ = device;
    firstDirtyAd_ = 0;
  }
  if (view.count == 0) return;
  try {
    searcher_->sync(view, firstDirtyAd_);
    firstDirtyAd_ = view.count;
    searcher_->search(queries, nq, k, eligible, outSlots, outScores);
  } catch (const Error& e) {
    // A lost CUDA context (cuda_util.cuh reports it as NoDevice): drop the device copy, so that the
    // next search builds a new one instead of using buffers of a dead context.
    if (e.code() == ErrorCode::NoDevice) {
      searcher_.reset();
      device_ = -1;
    }
    throw;
  }
}

}  // namespace cangen
