// The parts of the scan kernels shared by every precision, written once over GCC vector types and
// compiled per instruction set (the including file defines CANGEN_SCAN_NS and CANGEN_LANES first).
//
// Register blocking: a tile is QR queries x P panels (P * 16 ads). A Tile type computes the scores
// of one tile into a small L1 buffer, with its accumulators in registers for the whole dot
// product; a vector compare against each query's threshold then decides (rarely, once warmed
// up) what reaches the top-k collector. The fp32 tile is in scan_kernel.inl, the bf16 and int8
// tiles in scan_reduced_kernel.inl.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

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

// Scores the tiles of panels [firstPanel, lastPanel) for queries [r0, r0 + QT) and offers them.
template <int QT, int PT, class Tile>
void scanPanels(const Tile& tile, int r0, size_t firstPanel, size_t lastPanel, const float* bias, size_t count,
                const uint64_t* eligible, TopKCollector* collectors) {
  alignas(64) float out[QT * PT * kPanelWidth];
  for (size_t p = firstPanel; p + PT <= lastPanel; p += PT) {
    if (!anyEligible(eligible, p * kPanelWidth, PT * kPanelWidth)) continue;
    tile.template score<QT, PT>(r0, p, out);
    offerTile<QT, PT>(out, bias ? bias + p * kPanelWidth : nullptr, p * kPanelWidth, count, eligible, collectors + r0);
  }
}

template <int QT, class Tile>
void scanRows(const Tile& tile, int r0, size_t firstPanel, size_t lastPanel, const float* bias, size_t count,
              const uint64_t* eligible, TopKCollector* collectors) {
  size_t wholeTiles = firstPanel + (lastPanel - firstPanel) / P * P;
  scanPanels<QT, P>(tile, r0, firstPanel, wholeTiles, bias, count, eligible, collectors);
  if (P > 1) scanPanels<QT, 1>(tile, r0, wholeTiles, lastPanel, bias, count, eligible, collectors);
}

// Every query in blocks of QR over panels [firstPanel, lastPanel).
template <class Tile>
void scanTiles(const Tile& tile, int nq, size_t firstPanel, size_t lastPanel, const float* bias, size_t count,
               const uint64_t* eligible, TopKCollector* collectors) {
  for (int r0 = 0; r0 < nq; r0 += QR) {
    switch (std::min(QR, nq - r0)) {
      case 6: scanRows<6>(tile, r0, firstPanel, lastPanel, bias, count, eligible, collectors); break;
      case 5: scanRows<5>(tile, r0, firstPanel, lastPanel, bias, count, eligible, collectors); break;
      case 4: scanRows<4>(tile, r0, firstPanel, lastPanel, bias, count, eligible, collectors); break;
      case 3: scanRows<3>(tile, r0, firstPanel, lastPanel, bias, count, eligible, collectors); break;
      case 2: scanRows<2>(tile, r0, firstPanel, lastPanel, bias, count, eligible, collectors); break;
      default: scanRows<1>(tile, r0, firstPanel, lastPanel, bias, count, eligible, collectors); break;
    }
  }
}

}  // namespace
}  // namespace CANGEN_SCAN_NS
}  // namespace cangen
