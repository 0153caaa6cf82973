// The scan kernel, written once over GCC vector types and compiled per instruction set by
// scan_avx2.cc and scan_avx512.cc, which define CANGEN_SCAN_NS and CANGEN_LANES first.
//
// Register blocking: a tile is QR queries x P panels (P * 16 ads). For each dimension j the
// tile loads P*16 ad values once and broadcasts each query's value once, so every load feeds
// QR fused multiply-adds. The accumulators stay in registers for the whole dot product and are
// written to a small L1 buffer only once per tile, where a vector compare against each query's
// threshold decides (rarely, once warmed up) what reaches the top-k collector.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "flat/scan.h"

namespace cangen {
namespace CANGEN_SCAN_NS {
namespace {

constexpr int W = CANGEN_LANES;         // floats per register
constexpr int V = kPanelWidth / W;      // registers per panel row
constexpr int QR = 6;                   // queries per tile
constexpr int P = (W == 16) ? 4 : 1;    // panels per tile: 24 (avx512) or 12 (avx2) accumulators
typedef float vf __attribute__((vector_size(W * sizeof(float))));

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline vf broadcast(float s) { return vf{} + s; }

#if CANGEN_LANES == 16
inline unsigned greaterMask(vf a, vf b) {
  return _mm512_cmp_ps_mask(reinterpret_cast<__m512>(a), reinterpret_cast<__m512>(b), _CMP_GT_OQ);
}
#else
inline unsigned greaterMask(vf a, vf b) {
  return static_cast<unsigned>(_mm256_movemask_ps(
      _mm256_cmp_ps(reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b), _CMP_GT_OQ)));
}
#endif

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

inline bool isEligible(const uint64_t* eligible, size_t ad) {
  return eligible == nullptr || ((eligible[ad >> 6] >> (ad & 63)) & 1u);
}

// Whether any of ads [first, first + n) (n <= 64, n a multiple of 16) is eligible: tiles with
// none are skipped without loading them, which makes selective filters cheap.
inline bool anyEligible(const uint64_t* eligible, size_t first, size_t n) {
  if (eligible == nullptr) return true;
  const uint64_t word = eligible[first >> 6] >> (first & 63);
  if ((first & 63) + n <= 64) return (n == 64 ? word : word & ((uint64_t{1} << n) - 1)) != 0;
  const size_t low = 64 - (first & 63);
  const uint64_t high = eligible[(first >> 6) + 1] & ((uint64_t{1} << (n - low)) - 1);
  return word != 0 || high != 0;
}

template <int QT, int PT>
inline void offerTile(const float* out, const float* bias, size_t firstAd, size_t count,
                      const uint64_t* eligible, TopKCollector* collectors) {
  for (int r = 0; r < QT; ++r) {
    TopKCollector& collector = collectors[r];
    vf threshold = broadcast(collector.threshold());
    for (int i = 0; i < PT * V; ++i) {
      vf s = load(out + r * PT * kPanelWidth + i * W);
      if (bias != nullptr) s += load(bias + i * W);
      unsigned mask = greaterMask(s, threshold);
      while (mask != 0) {
        int lane = __builtin_ctz(mask);
        mask &= mask - 1;
        size_t ad = firstAd + static_cast<size_t>(i) * W + lane;
        if (ad < count && isEligible(eligible, ad) && s[lane] > collector.threshold()) {
          collector.push(s[lane], static_cast<uint32_t>(ad));
        }
      }
      threshold = broadcast(collector.threshold());
    }
  }
}

template <int QT, int PT>
void scanPanels(const PanelView& view, const float* queries, size_t firstPanel, size_t lastPanel,
                const uint64_t* eligible, TopKCollector* collectors) {
  alignas(64) float out[QT * PT * kPanelWidth];
  const size_t stride = panelFloats(view.dim);
  for (size_t p = firstPanel; p + PT <= lastPanel; p += PT) {
    if (!anyEligible(eligible, p * kPanelWidth, PT * kPanelWidth)) continue;
    scoreTile<QT, PT>(queries, view.dim, view.panels + p * stride, stride, out);
    const float* bias = view.bias ? view.bias + p * kPanelWidth : nullptr;
    offerTile<QT, PT>(out, bias, p * kPanelWidth, view.count, eligible, collectors);
  }
}

template <int QT>
void scanRows(const PanelView& view, const float* queries, size_t firstPanel, size_t lastPanel,
              const uint64_t* eligible, TopKCollector* collectors) {
  size_t wholeTiles = firstPanel + (lastPanel - firstPanel) / P * P;
  scanPanels<QT, P>(view, queries, firstPanel, wholeTiles, eligible, collectors);
  if (P > 1) scanPanels<QT, 1>(view, queries, wholeTiles, lastPanel, eligible, collectors);
}

}  // namespace

void scan(const PanelView& view, const float* queries, int nq, size_t firstPanel, size_t lastPanel,
          const uint64_t* eligible, TopKCollector* collectors) {
  for (int r0 = 0; r0 < nq; r0 += QR) {
    const float* q = queries + static_cast<size_t>(r0) * view.dim;
    TopKCollector* c = collectors + r0;
    switch (std::min(QR, nq - r0)) {
      case 6: scanRows<6>(view, q, firstPanel, lastPanel, eligible, c); break;
      case 5: scanRows<5>(view, q, firstPanel, lastPanel, eligible, c); break;
      case 4: scanRows<4>(view, q, firstPanel, lastPanel, eligible, c); break;
      case 3: scanRows<3>(view, q, firstPanel, lastPanel, eligible, c); break;
      case 2: scanRows<2>(view, q, firstPanel, lastPanel, eligible, c); break;
      default: scanRows<1>(view, q, firstPanel, lastPanel, eligible, c); break;
    }
  }
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
