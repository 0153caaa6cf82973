#pragma once
// IVF-Flat's list scan, done here rather than by FAISS's scanner, which makes one distance call
// per vector (about 40 ns at 128 dimensions, most of a single query's time once the coarse step
// is fast): rows are scored four at a time, an ad's eligibility bit is tested before any
// arithmetic, and candidates go to a TopKCollector. Results are in FAISS's convention, as
// IndexIVF::search_preassigned writes them, so the caller treats both paths alike.
#include <cstdint>

#include "common/cancel.h"

namespace faiss {
struct IndexIVF;
}

namespace cangen {

// The index this scan handles: an IndexIVFFlat proper (not a subclass), inner product or L2.
bool scansIvfFlatLists(const faiss::IndexIVF& ivf);

// queries: nq x d; lists: nq x nprobe list numbers (-1 skipped). eligible: nullptr or a bitmap
// over the ids stored in the lists (words of 64). Writes nq x k distances (L2: squared distance,
// ascending; inner product: descending) and labels, padded with -1.
void searchIvfFlatLists(const faiss::IndexIVF& ivf, const float* queries, int nq, const int64_t* lists, int nprobe,
                        int k, const uint64_t* eligible, size_t eligibleWords, int threads, float* distances,
                        int64_t* labels, const CancelFlag& cancel);

}  // namespace cangen
