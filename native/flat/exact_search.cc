#include "flat/exact_search.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "common/parallel.h"
#include "flat/scan.h"
#include "flat/topk.h"

namespace cangen {

namespace {
// Panels per work item (a multiple of 4): one item (~256 KiB) stays in L2 while every query of
// the batch passes over it.
size_t panelsPerChunk(int dim) {
  size_t bytes = panelFloats(dim) * sizeof(float);
  return std::max<size_t>(4, (256 * 1024) / bytes / 4 * 4);
}
}  // namespace

int exactSearchTeams(const PanelView& view, int threads) {
  const size_t chunk = panelsPerChunk(view.dim);
  const size_t chunks = (panelCount(view.count) + chunk - 1) / chunk;
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>(std::max(threads, 1), chunks)));
}

void exactSearchPanels(const PanelView& view, const float* queries, int nq, int k, int threads,
                       const uint64_t* eligible, int64_t* outSlots, float* outScores, const CancelFlag& cancel) {
  if (view.count == 0) return;
  const size_t panels = panelCount(view.count);
  const size_t chunk = panelsPerChunk(view.dim);
  const size_t chunks = (panels + chunk - 1) / chunk;
  const int teams = static_cast<int>(std::min<size_t>(std::max(threads, 1), chunks));
  std::vector<std::vector<TopKCollector>> collectors(teams, std::vector<TopKCollector>(nq, TopKCollector(k)));
  const ScanFunction scan = bestScanFunction();
  std::atomic<size_t> next{0};
  parallelTeam(teams, [&](int thread, int) {
    TopKCollector* mine = collectors[thread].data();
    for (size_t c = next.fetch_add(1); c < chunks && !cancel.raised(); c = next.fetch_add(1)) {
      scan(view, queries, nq, c * chunk, std::min(panels, (c + 1) * chunk), eligible, mine);
    }
  });
  cancel.check();

  // A team for the merge only pays off with several queries to merge.
  parallelFor(nq >= 4 * teams ? teams : 1, nq, 4, [&](int64_t q) {
    TopKCollector& merged = collectors[0][q];
    for (int t = 1; t < teams; ++t) merged.append(collectors[t][q]);
    std::vector<ScoredSlot> best = merged.sorted();
    for (size_t i = 0; i < best.size() && i < static_cast<size_t>(k); ++i) {
      outSlots[static_cast<size_t>(q) * k + i] = best[i].slot;
      outScores[static_cast<size_t>(q) * k + i] = best[i].score;
    }
  });
}

}  // namespace cangen
