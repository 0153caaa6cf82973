#pragma once
// Beam search over a FAISS HNSW graph, written for single-query latency: visited tables are
// reused from a small pool (FAISS 1.7.3 allocates ntotal bytes per call), a single query runs on
// the calling thread (no OpenMP team), the beam width is a per-call argument (FAISS 1.7.3 reads
// it from the index), and the next neighbour's vector is prefetched while one is scored.
#include <faiss/IndexHNSW.h>
#include <faiss/impl/IDSelector.h>

#include "common/cancel.h"

namespace cangen {

// Same output as IndexHNSW::search: k labels per query (-1 padding) with squared L2 distances
// ascending, or inner products descending. Only nodes `selector` admits (when set) are returned;
// others are still walked through.
// A raised `cancel` skips the queries not yet started and ends with ErrorCode::Aborted.
void searchHnsw(const faiss::IndexHNSW& index, const float* queries, int nq, int k, int ef,
                const faiss::IDSelector* selector, int threads, float* distances,
                faiss::Index::idx_t* labels, const CancelFlag& cancel = {});

// Bytes of visited tables kept between calls (at most one per thread of the budget, none over 64 MiB).
size_t hnswVisitedBytesKept();

}  // namespace cangen
