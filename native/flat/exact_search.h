#pragma once
// Multi-threaded exact top-k over a packed corpus with the fused scan (flat/scan.h).
#include <cstddef>
#include <cstdint>

#include "common/cancel.h"
#include "flat/panels.h"

namespace cangen {

// Threads a scan of `view` can keep busy (one per chunk of panels), at most `threads`: what a
// caller leases from the thread budget.
int exactSearchTeams(const PanelView& view, int threads);

// queries: nq x view.dim, prepared (common/metric.h). eligible: nullptr or a bitmap of at least
// ceil(view.count / 64) words. Writes nq x k slots (-1 padding) and internal scores, best first.
// A raised `cancel` stops the scan at the next chunk (~256 KiB of ads) with ErrorCode::Aborted.
void exactSearchPanels(const PanelView& view, const float* queries, int nq, int k, int threads,
                       const uint64_t* eligible, int64_t* outSlots, float* outScores, const CancelFlag& cancel = {});

}  // namespace cangen
