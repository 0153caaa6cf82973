#include "ann/hnsw_search.h"

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/utils/Heap.h>

#include <memory>

#include "common/error.h"

namespace cangen {

namespace {

using idx_t = faiss::Index::idx_t;

// HNSW keeps the smallest distances; for inner product it works on negated similarities.
struct NegatedDistance : faiss::DistanceComputer {
  explicit NegatedDistance(faiss::DistanceComputer* base) : base(base) {}
  void set_query(const float* x) override { base->set_query(x); }
  float operator()(idx_t i) override { return -(*base)(i); }
  float symmetric_dis(idx_t i, idx_t j) override { return -base->symmetric_dis(i, j); }
  std::unique_ptr<faiss::DistanceComputer> base;
};

// One per thread, grown to the largest index it has searched; advance() resets it in O(1).
faiss::VisitedTable& visitedTable(idx_t ntotal) {
  thread_local std::unique_ptr<faiss::VisitedTable> table;
  if (!table || static_cast<idx_t>(table->visited.size()) < ntotal) {
    table = std::make_unique<faiss::VisitedTable>(static_cast<int>(ntotal));
  }
  return *table;
}

void searchOne(const faiss::IndexHNSW& index, faiss::DistanceComputer& dis, const float* query, int k,
               const faiss::SearchParametersHNSW& params, float* distances, idx_t* labels) {
  faiss::VisitedTable& visited = visitedTable(index.ntotal);
  visited.advance();
  dis.set_query(query);
  faiss::maxheap_heapify(k, distances, labels);
  index.hnsw.search(dis, k, labels, distances, visited, &params);
  faiss::maxheap_reorder(k, distances, labels);
}

std::unique_ptr<faiss::DistanceComputer> distanceComputer(const faiss::IndexHNSW& index) {
  std::unique_ptr<faiss::DistanceComputer> base(index.storage->get_distance_computer());
  if (index.storage->metric_type != faiss::METRIC_INNER_PRODUCT) return base;
  return std::make_unique<NegatedDistance>(base.release());
}

}  // namespace

void searchHnsw(const faiss::IndexHNSW& index, const float* queries, int nq, int k,
                const faiss::SearchParametersHNSW& params, int threads, float* distances, idx_t* labels) {
  if (index.storage == nullptr || index.ntotal > INT32_MAX) {
    throw Error(ErrorCode::Internal, "HNSW search needs a flat storage of at most 2^31 vectors");
  }
  if (nq == 1) {
    auto dis = distanceComputer(index);
    searchOne(index, *dis, queries, k, params, distances, labels);
  } else {
#pragma omp parallel num_threads(threads)
    {
      auto dis = distanceComputer(index);
#pragma omp for schedule(dynamic, 4)
      for (int q = 0; q < nq; ++q) {
        searchOne(index, *dis, queries + static_cast<size_t>(q) * index.d, k, params,
                  distances + static_cast<size_t>(q) * k, labels + static_cast<size_t>(q) * k);
      }
    }
  }
  if (index.metric_type == faiss::METRIC_INNER_PRODUCT) {
    for (size_t i = 0; i < static_cast<size_t>(nq) * k; ++i) distances[i] = -distances[i];
  }
}

}  // namespace cangen
