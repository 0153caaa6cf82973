#pragma once
// The fused CPU scan: scores a block of queries against a range of panels and offers only the
// scores above each query's running threshold to its top-k collector. No score matrix is kept.
#include <cstddef>
#include <cstdint>

#include "flat/panels.h"
#include "flat/reduced_panels.h"
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

// The bf16 or int8 scan (flat/reduced_panels.h): as ScanFunction, over the reduced panels, with
// the queries encoded by ReducedPanels::encodeQueries (words, and int8 scales).
using ReducedScanFunction = void (*)(const ReducedView& view, const uint32_t* queryWords, const float* queryScale,
                                     int nq, size_t firstPanel, size_t lastPanel, const uint64_t* eligible,
                                     TopKCollector* collectors);

// The AVX-512 kernel when this CPU has VDPBF16PS (bf16) or VPDPBUSD (int8), else the AVX2 one.
ReducedScanFunction bestReducedScanFunction(Precision precision);
const char* bestReducedScanName(Precision precision);
// The ceiling of that kernel's dot-product steps, in FLOP/s (2 per multiply-add, as peakFlops).
double bestReducedPeakOps(Precision precision, int threads);

namespace scan_avx2 {
void scan(const PanelView&, const float*, int, size_t, size_t, const uint64_t*, TopKCollector*);
double peakFlops(int threads);
}
namespace scan_avx512 {
void scan(const PanelView&, const float*, int, size_t, size_t, const uint64_t*, TopKCollector*);
double peakFlops(int threads);
}

namespace scan_reduced_avx512 {
void scanReduced(const ReducedView&, const uint32_t*, const float*, int, size_t, size_t, const uint64_t*, TopKCollector*);
double peakOps(Precision precision, int threads);
}
namespace scan_reduced_generic {
void scanReduced(const ReducedView&, const uint32_t*, const float*, int, size_t, size_t, const uint64_t*, TopKCollector*);
double peakOps(Precision precision, int threads);
}

}  // namespace cangen
