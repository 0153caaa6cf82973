#pragma once
// Exact search on a CUDA device over the same packed corpus the CPU kernel scans (flat/panels.h).
// The caller prepares queries exactly as for the CPU path (scaled by 2 for L2, unit-normalised
// for cosine) and gets back internal "larger is better" scores; AdIndex (kind flat) converts them.
//
// Without CUDA compiled in, or without a usable device, deviceCount() is 0 and constructing a
// GpuFlatSearcher throws Error(NoDevice) with a message saying which of the two it was.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "flat/panels.h"

namespace cangen::gpu {

bool compiledWithCuda();
// Number of usable devices; 0 when CUDA is not compiled in, no driver is loaded, or none exist.
int deviceCount();
// A one-line description of device `device` ("NVIDIA H100 80GB HBM3, sm_90, 79 GiB"), or why none.
std::string describeDevice(int device);

// Largest k the device path accepts.
constexpr int kMaxGpuK = 100000;

class GpuFlatSearcher {
 public:
  explicit GpuFlatSearcher(int device);
  ~GpuFlatSearcher();
  GpuFlatSearcher(const GpuFlatSearcher&) = delete;
  GpuFlatSearcher& operator=(const GpuFlatSearcher&) = delete;

  // Makes the device copy equal to `view`, uploading panels (and bias) from the panel holding
  // ad `firstDirtyAd` onward; ads before it are known to be unchanged since the last sync.
  // Grows the device buffers geometrically. Not thread-safe against search(): the owner
  // serialises the two (AdIndex holds its lock).
  void sync(const PanelView& view, size_t firstDirtyAd);

  // queries: nq x dim row-major (host memory). eligible: nullptr, or a bitmap over ad slots
  // (bit a of eligible[a / 64]) of at least ceil(count / 64) words; only set bits are ranked.
  // Writes nq x k slots (int64, -1 padding) and scores (internal, best first; padding -inf).
  // Returns nothing; throws Error(Internal) with the CUDA error string on failure.
  void search(const float* queries, int nq, int k, const uint64_t* eligible, int64_t* outSlots,
              float* outScores);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace cangen::gpu
