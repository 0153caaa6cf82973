// The fp32 scan kernel, compiled per instruction set by scan_avx2.cc and scan_avx512.cc, which
// define CANGEN_SCAN_NS and CANGEN_LANES first. For each dimension j a tile loads P*16 ad values
// once and broadcasts each query's value once, so every load feeds QR fused multiply-adds.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "flat/scan_tiles.inl"

namespace cangen {
namespace CANGEN_SCAN_NS {
namespace {

// out[r * PT*16 + a] = dot(query r, ad a of the tile).
template <int QT, int PT>
inline void scoreTile(const float* q, int dim, const float* panel, size_t panelStride, float* out) {
  vf acc[QT][PT * V];
#pragma GCC unroll 8
  for (int r = 0; r < QT; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < PT * V; ++i) acc[r][i] = vf{};
  for (int j = 0; j < dim; ++j) {
    vf x[PT * V];
#pragma GCC unroll 8
    for (int p = 0; p < PT; ++p)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) x[p * V + v] = load(panel + p * panelStride + j * kPanelWidth + v * W);
#pragma GCC unroll 8
    for (int r = 0; r < QT; ++r) {
      vf b = broadcast(q[r * dim + j]);
#pragma GCC unroll 8
      for (int i = 0; i < PT * V; ++i) acc[r][i] += b * x[i];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < QT; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < PT * V; ++i) std::memcpy(out + r * PT * kPanelWidth + i * W, &acc[r][i], sizeof(vf));
}

struct Fp32Tile {
  const float* queries;
  int dim;
  const float* panels;
  size_t stride;  // floats per panel
  template <int QT, int PT>
  void score(int r0, size_t panel, float* out) const {
    scoreTile<QT, PT>(queries + static_cast<size_t>(r0) * dim, dim, panels + panel * stride, stride, out);
  }
};

}  // namespace

void scan(const PanelView& view, const float* queries, int nq, size_t firstPanel, size_t lastPanel,
          const uint64_t* eligible, TopKCollector* collectors) {
  const Fp32Tile tile{queries, view.dim, view.panels, panelFloats(view.dim)};
  scanTiles(tile, nq, firstPanel, lastPanel, view.bias, view.count, eligible, collectors);
}

// Register-resident FMAs on every thread: the machine's FLOP/s ceiling for this vector width.
double peakFlops(int threads) {
  constexpr int kChains = 12;  // enough independent accumulators to cover FMA latency
  constexpr long kIterations = 100'000'000;
  std::vector<std::thread> workers;
  std::vector<float> sink(threads);
  auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      vf acc[kChains];
      for (int c = 0; c < kChains; ++c) acc[c] = broadcast(1.0f + c * 1e-3f);
      vf a = broadcast(0.999999f), b = broadcast(1e-7f);
      for (long i = 0; i < kIterations; ++i) {
#pragma GCC unroll 12
        for (int c = 0; c < kChains; ++c) {
          acc[c] = acc[c] * a + b;
        }
      }
      float s = 0;
      for (int c = 0; c < kChains; ++c) s += acc[c][0];
      sink[t] = s;
    });
  }
  for (auto& w : workers) w.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return 2.0 * W * kChains * static_cast<double>(kIterations) * threads / seconds;
}

}  // namespace CANGEN_SCAN_NS
}  // namespace cangen
