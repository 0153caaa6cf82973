#include "flat/exact_search.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "common/parallel.h"
#include "common/vectors.h"
#include "flat/scan.h"
#include "flat/topk.h"

namespace cangen {

namespace {
// Panels per work item (a multiple of 4): one item (~256 KiB) stays in L2 while every query of
// the batch passes over it.
size_t panelsPerChunk(size_t panelBytes) { return std::max<size_t>(4, (256 * 1024) / panelBytes / 4 * 4); }
size_t fp32PanelBytes(int dim) { return panelFloats(dim) * sizeof(float); }

// Scans every chunk of panels on `teams` threads, each with its own collectors (one per query,
// k best plus margins[q] when given), then hands each query's merged collector to finish(q, c).
template <typename ScanChunk, typename Finish>
void scanInChunks(size_t panels, size_t chunk, int nq, int k, int threads, const float* margins,
                  const CancelFlag& cancel, ScanChunk scanChunk, Finish finish) {
  const size_t chunks = (panels + chunk - 1) / chunk;
  const int teams = static_cast<int>(std::min<size_t>(std::max(threads, 1), chunks));
  std::vector<std::vector<TopKCollector>> collectors(teams, std::vector<TopKCollector>(nq, TopKCollector(k)));
  if (margins != nullptr) {
    for (auto& team : collectors) {
      for (int q = 0; q < nq; ++q) team[q].setMargin(margins[q]);
    }
  }
  std::atomic<size_t> next{0};
  parallelTeam(teams, [&](int thread, int) {
    TopKCollector* mine = collectors[thread].data();
    for (size_t c = next.fetch_add(1); c < chunks && !cancel.raised(); c = next.fetch_add(1)) {
      scanChunk(mine, c * chunk, std::min(panels, (c + 1) * chunk));
    }
  });
  cancel.check();

  // A team for the merge only pays off with several queries to merge.
  parallelFor(nq >= 4 * teams ? teams : 1, nq, 4, [&](int64_t q) {
    TopKCollector& merged = collectors[0][q];
    for (int t = 1; t < teams; ++t) merged.append(collectors[t][q]);
    finish(q, merged);
  });
}

void writeBest(const std::vector<ScoredSlot>& best, int k, int64_t q, int64_t* outSlots, float* outScores) {
  for (size_t i = 0; i < best.size() && i < static_cast<size_t>(k); ++i) {
    outSlots[static_cast<size_t>(q) * k + i] = best[i].slot;
    outScores[static_cast<size_t>(q) * k + i] = best[i].score;
  }
}

// The fp32 kernel's score of one ad, bit for bit: fused multiply-adds in dimension order from
// zero, then the bias.
float fp32Score(const PanelView& view, const float* query, uint32_t slot) {
  const float* x = view.panels + (slot / kPanelWidth) * panelFloats(view.dim) + slot % kPanelWidth;
  float acc = 0;
  for (int j = 0; j < view.dim; ++j) acc = std::fma(query[j], x[static_cast<size_t>(j) * kPanelWidth], acc);
  return view.bias ? acc + view.bias[slot] : acc;
}
}  // namespace

int exactSearchTeams(const PanelView& view, int threads) {
  const size_t chunk = panelsPerChunk(fp32PanelBytes(view.dim));
  const size_t chunks = (panelCount(view.count) + chunk - 1) / chunk;
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>(std::max(threads, 1), chunks)));
}

void exactSearchPanels(const PanelView& view, const float* queries, int nq, int k, int threads,
                       const uint64_t* eligible, int64_t* outSlots, float* outScores, const CancelFlag& cancel) {
  if (view.count == 0) return;
  const ScanFunction scan = bestScanFunction();
  scanInChunks(
      panelCount(view.count), panelsPerChunk(fp32PanelBytes(view.dim)), nq, k, threads, nullptr, cancel,
      [&](TopKCollector* mine, size_t first, size_t last) { scan(view, queries, nq, first, last, eligible, mine); },
      [&](int64_t q, TopKCollector& merged) { writeBest(merged.sorted(), k, q, outSlots, outScores); });
}

void exactSearchReduced(const PanelView& view, const ReducedPanels& reduced, const float* queries, int nq, int k,
                        int threads, const uint64_t* eligible, int64_t* outSlots, float* outScores,
                        const CancelFlag& cancel, uint64_t* reranked) {
  if (view.count == 0) return;
  const ReducedView rv = reduced.view(view.bias, view.count);
  const ReducedQueries encoded = reduced.encodeQueries(queries, nq, view.bias != nullptr);
  const ReducedScanFunction scan = bestReducedScanFunction(reduced.precision());
  std::atomic<uint64_t> candidates{0};
  scanInChunks(
      panelCount(view.count), panelsPerChunk(static_cast<size_t>(rv.groups) * kPanelWidth * sizeof(uint32_t)), nq, k,
      threads, encoded.margin.data(), cancel,
      [&](TopKCollector* mine, size_t first, size_t last) {
        scan(rv, encoded.words.data(), encoded.scale.data(), nq, first, last, eligible, mine);
      },
      [&](int64_t q, TopKCollector& merged) {
        const float* query = queries + static_cast<size_t>(q) * view.dim;
        TopKCollector exact(k);
        const std::vector<ScoredSlot> window = merged.sorted();
        for (const ScoredSlot& c : window) exact.push(fp32Score(view, query, c.slot), c.slot);
        candidates += window.size();
        writeBest(exact.sorted(), k, q, outSlots, outScores);
      });
  if (reranked != nullptr) *reranked = candidates.load();
}

void scaleQueriesForL2(float* queries, size_t values) {
  for (size_t i = 0; i < values; ++i) queries[i] *= 2.0f;
}

void l2ScoresToDistances(const float* queries, int nq, int dim, int k, float* scores) {
  for (int i = 0; i < nq; ++i) {
    const float qq = static_cast<float>(squaredNorm(queries + static_cast<size_t>(i) * dim, dim));
    for (int r = 0; r < k; ++r) {
      float& s = scores[static_cast<size_t>(i) * k + r];
      s = std::max(0.0f, qq - s);
    }
  }
}

}  // namespace cangen
