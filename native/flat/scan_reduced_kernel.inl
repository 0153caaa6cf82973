// The bf16 and int8 scan kernels (layout in flat/reduced_panels.h), compiled per instruction set
// by scan_reduced_avx512.cc (VDPBF16PS and VPDPBUSD: 2 or 4 products per 32-bit lane and
// instruction) and scan_reduced_generic.cc (AVX2: the same sums with widening and fused
// multiply-adds, for CPUs without those instructions). The including file defines
// CANGEN_SCAN_NS, CANGEN_LANES and, for the AVX-512 instructions, CANGEN_REDUCED_DOT.
#include <chrono>
#include <thread>
#include <vector>

#include "flat/scan_tiles.inl"

namespace cangen {
namespace CANGEN_SCAN_NS {
namespace {

#include "flat/reduced_dot.inl"

// Scores of a tile of QT queries x PT panels, accumulated over the word groups.
template <int QT, int PT, typename Acc, typename Step>
inline void accumulate(const uint32_t* queries, int groups, const uint32_t* panel, size_t stride, Acc (&acc)[QT][PT * V],
                       Step step) {
#pragma GCC unroll 8
  for (int r = 0; r < QT; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < PT * V; ++i) acc[r][i] = Acc{};
  for (int g = 0; g < groups; ++g) {
    vi x[PT * V];
#pragma GCC unroll 8
    for (int p = 0; p < PT; ++p)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) x[p * V + v] = loadWords(panel + p * stride + g * kPanelWidth + v * W);
#pragma GCC unroll 8
    for (int r = 0; r < QT; ++r) {
      const uint32_t word = queries[r * groups + g];
#pragma GCC unroll 8
      for (int i = 0; i < PT * V; ++i) acc[r][i] = step(acc[r][i], word, x[i]);
    }
  }
}

struct ReducedTile {
  const ReducedView& view;
  const uint32_t* queries;  // nq x groups words
  const float* queryScale;  // int8: per query
  size_t stride;            // words per panel

  template <int QT, int PT>
  void score(int r0, size_t panel, float* out) const {
    const uint32_t* q = queries + static_cast<size_t>(r0) * view.groups;
    const uint32_t* ads = view.words + panel * stride;
    if (view.precision == Precision::Bf16) {
      vf acc[QT][PT * V];
      accumulate<QT, PT>(q, view.groups, ads, stride, acc, dotBf16);
#pragma GCC unroll 8
      for (int r = 0; r < QT; ++r)
#pragma GCC unroll 8
        for (int i = 0; i < PT * V; ++i) std::memcpy(out + r * PT * kPanelWidth + i * W, &acc[r][i], sizeof(vf));
      return;
    }
    vi acc[QT][PT * V];
    accumulate<QT, PT>(q, view.groups, ads, stride, acc, dotInt8);
    const size_t firstAd = panel * kPanelWidth;
#pragma GCC unroll 8
    for (int i = 0; i < PT * V; ++i) {
      const vi offset = loadWords(reinterpret_cast<const uint32_t*>(view.offset + firstAd + i * W));
      const vf scale = load(view.scale + firstAd + i * W);
#pragma GCC unroll 8
      for (int r = 0; r < QT; ++r) {
        const vf s = __builtin_convertvector(acc[r][i] - offset, vf) * (scale * queryScale[r0 + r]);
        std::memcpy(out + r * PT * kPanelWidth + i * W, &s, sizeof(vf));
      }
    }
  }
};

}  // namespace

void scanReduced(const ReducedView& view, const uint32_t* queryWords, const float* queryScale, int nq,
                 size_t firstPanel, size_t lastPanel, const uint64_t* eligible, TopKCollector* collectors) {
  const ReducedTile tile{view, queryWords, queryScale, static_cast<size_t>(view.groups) * kPanelWidth};
  scanTiles(tile, nq, firstPanel, lastPanel, view.bias, view.count, eligible, collectors);
}

// Register-resident dot-product steps on every thread: the ceiling of this build's reduced
// kernel, in multiply-adds x 2 per second (the unit of the fp32 FLOP ceiling: a bf16 step is
// 2 multiply-adds per 32-bit lane, an int8 step 4).
double peakOps(Precision precision, int threads) {
  constexpr int kChains = 12;
  constexpr long kIterations = 50'000'000;
  std::vector<std::thread> workers;
  std::vector<float> sink(threads);
  auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const vi ads = vi{} + 0x3F803F80;  // bf16 pairs (1.0, 1.0), or int8 codes
      uint32_t word = 0x00010001u + static_cast<uint32_t>(t);
      float total = 0;
      if (precision == Precision::Bf16) {
        vf acc[kChains] = {};
        for (long i = 0; i < kIterations; ++i) {
#pragma GCC unroll 12
          for (int c = 0; c < kChains; ++c) acc[c] = dotBf16(acc[c], word, ads);
          __asm__ volatile("" : "+r"(word));  // keeps the broadcast inside the loop
        }
        for (int c = 0; c < kChains; ++c) total += acc[c][0];
      } else {
        vi acc[kChains] = {};
        for (long i = 0; i < kIterations; ++i) {
#pragma GCC unroll 12
          for (int c = 0; c < kChains; ++c) acc[c] = dotInt8(acc[c], word, ads);
          __asm__ volatile("" : "+r"(word));
        }
        for (int c = 0; c < kChains; ++c) total += static_cast<float>(acc[c][0]);
      }
      sink[t] = total;
    });
  }
  for (auto& w : workers) w.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return 2.0 * W * dimsPerWord(precision) * kChains * static_cast<double>(kIterations) * threads / seconds;
}

}  // namespace CANGEN_SCAN_NS
}  // namespace cangen
