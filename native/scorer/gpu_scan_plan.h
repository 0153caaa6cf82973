#pragma once
// The host-side decisions of the scorer's GPU scan, kept free of CUDA so that they are tested
// without a device (test/native/gpu_scan_plan_test.cc): whether the model fits the kernel's
// shared memory, how many users and ads one launch covers so that the grid stays within CUDA's
// limits and the candidate buffers within free device memory.
#include <cstddef>
#include <string>

#include "scorer/model.h"

namespace cangen::gpu {

constexpr int kScanTile = 32;             // ads per block (scorer_kernel.cuh's kTile)
constexpr int kMaxGridY = 65535;          // CUDA's limit on gridDim.y (and z)
constexpr size_t kDefaultSharedPerBlock = 48 * 1024;

// Dynamic shared memory one block of the scan needs for this model, in bytes; `itemRows` is the
// row count of the first ad plane (the model's itemDim, or MoL's px * dc).
size_t scanSharedBytes(const ScorerModel& model, int itemRows);

struct GpuLimits {
  size_t sharedPerBlock = kDefaultSharedPerBlock;  // without opting in
  size_t sharedPerBlockOptin = 0;                  // with cudaFuncSetAttribute (0: none)
  size_t freeBytes = 0;                            // free device memory (cudaMemGetInfo)
  size_t reservedBytes = 0;                        // device memory this scorer holds already and may reuse
};

struct GpuScanNeeds {
  size_t sharedBytes = 0;        // scanSharedBytes
  size_t ads = 0;                // corpus size
  size_t users = 0;
  int k = 1;
  size_t inputBytesPerUser = 0;  // per-user inputs uploaded for a batch
};

struct GpuScanPlan {
  bool onGpu = false;
  std::string fallbackReason;  // when !onGpu: why the scan runs on the CPU instead
  bool sharedOptIn = false;    // sharedBytes above the default limit: set the kernel attribute first
  size_t usersPerBatch = 0;    // users of one launch (grid.y), <= kMaxGridY
  size_t chunk = 0;            // ads of one launch, whole tiles
  size_t capacity = 0;         // candidate entries per user: k + chunk
  size_t deviceBytes = 0;      // device memory the batch's buffers take
};

// Device bytes one user of a batch takes with `capacity` candidate entries: candidate scores and
// slots twice (the sort's ping-pong), the sort's scratch, its threshold, count and segment
// bounds, and its inputs.
size_t scanBytesPerUser(size_t capacity, size_t inputBytesPerUser);

// Chooses the launch shape; onGpu false (with the reason) when the model is too wide for the
// device's shared memory or when not even one user at this k fits in half the free memory.
GpuScanPlan planGpuScan(const GpuScanNeeds& needs, const GpuLimits& limits);

}  // namespace cangen::gpu
