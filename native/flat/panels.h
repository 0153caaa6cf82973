#pragma once
// Storage layout of the exact index, shared by the CPU and CUDA kernels.
//
// Vectors are packed in panels of kPanelWidth ads: panel p holds ads [p*16, p*16+16) as a
// d x 16 block, element (ad a, dim j) at panels[(a / 16) * d * 16 + j * 16 + a % 16].
// A SIMD register (or a CUDA half-warp) then loads one dimension of 16 ads in one aligned
// 64-byte access, which is what both the fused CPU kernel and the GPU tiles want. Unused lanes
// of the last panel are zero and are masked out by the ad count.
#include <cstddef>
#include <cstdint>

namespace cangen {

constexpr int kPanelWidth = 16;

inline size_t panelCount(size_t ads) { return (ads + kPanelWidth - 1) / kPanelWidth; }
inline size_t panelFloats(int dim) { return static_cast<size_t>(dim) * kPanelWidth; }
inline size_t panelOffset(size_t ad, int dim, int j) {
  return (ad / kPanelWidth) * panelFloats(dim) + static_cast<size_t>(j) * kPanelWidth + ad % kPanelWidth;
}

// A read-only view of the packed corpus handed to a kernel.
struct PanelView {
  const float* panels = nullptr;  // panelCount(count) * panelFloats(dim) floats, 64-byte aligned
  const float* bias = nullptr;    // per-ad additive score term (-|x|^2 for L2) or nullptr
  size_t count = 0;               // ads in use; slots >= count are padding
  int dim = 0;
};

}  // namespace cangen
