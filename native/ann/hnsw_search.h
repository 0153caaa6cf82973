#pragma once
// Searching a FAISS HNSW graph without FAISS 1.7.3's per-call costs: it allocates and zeroes a
// visited table of ntotal bytes and starts an OpenMP team on every call, which dominates the
// latency of a single query on a large corpus. Here each thread keeps its visited table across
// calls, and a single query runs on the calling thread.
#include <faiss/IndexHNSW.h>

namespace cangen {

// Same contract as IndexHNSW::search (distances as FAISS reports them for the index's metric);
// `params` supplies the selector; the beam is the index's hnsw.efSearch (see AdIndex::search).
void searchHnsw(const faiss::IndexHNSW& index, const float* queries, int nq, int k,
                const faiss::SearchParametersHNSW& params, int threads, float* distances,
                faiss::Index::idx_t* labels);

}  // namespace cangen
