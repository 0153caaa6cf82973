#pragma once
// The fused CPU scan: scores a block of queries against a range of panels and offers only the
// scores above each query's running threshold to its top-k collector. No score matrix is kept.
#include <cstddef>
#include <cstdint>

#include "flat/panels.h"
#include "flat/topk.h"

namespace cangen {

// queries: nq x view.dim, already prepared (see common/metric.h). Panels [firstPanel, lastPanel)
// are scanned; ads at or past view.count, and ads whose bit in `eligible` is clear (when
// non-null), are never offered. view.bias, when set, is padded to whole panels.
using ScanFunction = void (*)(const PanelView& view, const float* queries, int nq, size_t firstPanel,
                              size_t lastPanel, const uint64_t* eligible, TopKCollector* collectors);

// The fastest variant this CPU runs (AVX-512 or AVX2), chosen once.
ScanFunction bestScanFunction();
const char* bestScanName();

namespace scan_avx2 {
void scan(const PanelView&, const float*, int, size_t, size_t, const uint64_t*, TopKCollector*);
double peakFlops(int threads);
}
namespace scan_avx512 {
void scan(const PanelView&, const float*, int, size_t, size_t, const uint64_t*, TopKCollector*);
double peakFlops(int threads);
}

}  // namespace cangen
