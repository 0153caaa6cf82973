#pragma once
// Multi-threaded exact top-k over a packed corpus with the fused scan (flat/scan.h).
#include <cstddef>
#include <cstdint>

#include "common/cancel.h"
#include "flat/panels.h"
#include "flat/reduced_panels.h"

namespace cangen {

// The L2 panels rank by 2 q.x - |x|^2 (flat/panel_store.h): queries are scaled by 2 before a scan
// (in place, nq x dim values), and each score becomes the squared distance |q|^2 - score after it
// (`queries` unscaled, nq x k scores).
void scaleQueriesForL2(float* queries, size_t values);
void l2ScoresToDistances(const float* queries, int nq, int dim, int k, float* scores);

// Threads a scan of `view` can keep busy (one per chunk of panels), at most `threads`: what a
// caller leases from the thread budget.
int exactSearchTeams(const PanelView& view, int threads);

// queries: nq x view.dim, prepared (common/metric.h). eligible: nullptr or a bitmap of at least
// ceil(view.count / 64) words. Writes nq x k slots (-1 padding) and internal scores, best first.
// A raised `cancel` stops the scan at the next chunk (~256 KiB of ads) with ErrorCode::Aborted.
void exactSearchPanels(const PanelView& view, const float* queries, int nq, int k, int threads,
                       const uint64_t* eligible, int64_t* outSlots, float* outScores, const CancelFlag& cancel = {});

// As exactSearchPanels, but the scan reads `reduced` (the same ads in bf16 or int8) and re-ranks,
// per query, every ad it cannot rule out with the fp32 vectors of `view`. Guarantee: the answer
// is exactly exactSearchPanels' (ties at the k-th score aside) whatever the data, because an ad
// is ruled out only when its reduced score is more than twice a proven bound on the reduction's
// error below the k-th best (ReducedPanels::encodeQueries). `reranked` receives the number of
// candidates re-ranked over all queries.
void exactSearchReduced(const PanelView& view, const ReducedPanels& reduced, const float* queries, int nq, int k,
                        int threads, const uint64_t* eligible, int64_t* outSlots, float* outScores,
                        const CancelFlag& cancel = {}, uint64_t* reranked = nullptr);

}  // namespace cangen
