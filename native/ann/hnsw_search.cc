#include "ann/hnsw_search.h"

#include <faiss/IndexFlat.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/utils/distances.h>
#include <omp.h>
#include <xmmintrin.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <mutex>
#include <queue>
#include <vector>

#include "common/error.h"
#include "common/parallel.h"
#include "common/threads.h"

namespace cangen {

namespace {

using idx_t = faiss::Index::idx_t;
using NodeId = faiss::HNSW::storage_idx_t;

// A node and its distance to the query; smaller is closer (inner product is negated).
struct Scored {
  float distance;
  NodeId id;
};
struct Closer {
  bool operator()(const Scored& a, const Scored& b) const { return a.distance > b.distance; }
};
struct Farther {
  bool operator()(const Scored& a, const Scored& b) const { return a.distance < b.distance; }
};

// Visited tables (ntotal bytes each; advance() resets one in O(1)) are reused across calls, but
// only as many as the thread budget and none above kKeptVisitedBytes are kept: idle memory stays
// bounded whatever the number of worker threads, and a huge index's tables are freed after use.
constexpr size_t kKeptVisitedBytes = size_t{64} << 20;

class VisitedPool {
 public:
  std::unique_ptr<faiss::VisitedTable> take(idx_t ntotal) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = kept_.begin(); it != kept_.end(); ++it) {
        if (static_cast<idx_t>((*it)->visited.size()) >= ntotal) {
          std::unique_ptr<faiss::VisitedTable> table = std::move(*it);
          kept_.erase(it);
          return table;
        }
      }
    }
    return std::make_unique<faiss::VisitedTable>(static_cast<int>(ntotal));
  }
  void giveBack(std::unique_ptr<faiss::VisitedTable> table) {
    if (!table || table->visited.size() > kKeptVisitedBytes) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (kept_.size() < static_cast<size_t>(threadBudget())) {
      kept_.push_back(std::move(table));
    } else {
      // Keep the larger ones: they serve every index up to their size.
      auto smallest = std::min_element(kept_.begin(), kept_.end(), [](const auto& a, const auto& b) {
        return a->visited.size() < b->visited.size();
      });
      if (smallest != kept_.end() && (*smallest)->visited.size() < table->visited.size()) *smallest = std::move(table);
    }
    while (kept_.size() > static_cast<size_t>(threadBudget())) kept_.pop_back();  // the budget was lowered
  }
  size_t keptBytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t bytes = 0;
    for (const auto& t : kept_) bytes += t->visited.size();
    return bytes;
  }

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<faiss::VisitedTable>> kept_;
};

VisitedPool& visitedPool() {
  static VisitedPool pool;
  return pool;
}

class GraphSearch {
 public:
  GraphSearch(const faiss::IndexHNSW& index, const float* vectors, const faiss::IDSelector* selector)
      : graph_(index.hnsw),
        vectors_(vectors),
        dim_(index.d),
        innerProduct_(index.metric_type == faiss::METRIC_INNER_PRODUCT),
        selector_(selector) {}

  // The k closest eligible nodes to `query` (ascending distance), beam width ef; -1 padding.
  void run(const float* query, int k, int ef, faiss::VisitedTable& visited, float* outDistances, idx_t* outLabels) {
    query_ = query;
    std::fill(outLabels, outLabels + k, -1);
    std::fill(outDistances, outDistances + k, std::numeric_limits<float>::infinity());
    NodeId entry = graph_.entry_point;
    if (entry < 0) return;
    float entryDistance = distance(entry);
    for (int level = graph_.max_level; level >= 1; --level) descend(level, entry, entryDistance);

    visited.advance();
    std::vector<Scored> candidateStore, resultStore;
    candidateStore.reserve(static_cast<size_t>(ef) * 2);
    resultStore.reserve(static_cast<size_t>(ef) + 1);
    std::priority_queue<Scored, std::vector<Scored>, Closer> candidates(Closer(), std::move(candidateStore));
    std::priority_queue<Scored, std::vector<Scored>, Farther> results(Farther(), std::move(resultStore));
    candidates.push({entryDistance, entry});
    visited.set(entry);
    if (eligible(entry)) results.push({entryDistance, entry});
    float bound = results.empty() ? std::numeric_limits<float>::infinity() : entryDistance;

    while (!candidates.empty()) {
      const Scored current = candidates.top();
      // Stop at the first candidate farther than every result we keep; with a filter, only once
      // ef eligible nodes are held (ineligible ones may be the way to them).
      const bool full = selector_ == nullptr || static_cast<int>(results.size()) >= ef;
      if (current.distance > bound && full) break;
      candidates.pop();
      size_t begin, end;
      graph_.neighbor_range(current.id, 0, &begin, &end);
      for (size_t i = begin; i < end; ++i) {
        const NodeId next = graph_.neighbors[i];
        if (next < 0) break;
        if (i + 1 < end && graph_.neighbors[i + 1] >= 0) {
          _mm_prefetch(reinterpret_cast<const char*>(vectors_ + static_cast<size_t>(graph_.neighbors[i + 1]) * dim_), _MM_HINT_T0);
        }
        if (visited.get(next)) continue;
        visited.set(next);
        const float d = distance(next);
        if (static_cast<int>(results.size()) < ef || d < bound) {
          candidates.push({d, next});
          if (eligible(next)) {
            results.push({d, next});
            if (static_cast<int>(results.size()) > ef) results.pop();
          }
          if (!results.empty()) bound = results.top().distance;
        }
      }
    }
    while (static_cast<int>(results.size()) > k) results.pop();
    for (int r = static_cast<int>(results.size()) - 1; r >= 0; --r) {
      outLabels[r] = results.top().id;
      outDistances[r] = results.top().distance;
      results.pop();
    }
  }

 private:
  float distance(NodeId id) const {
    // FAISS's SIMD kernels (AVX2 in our build) keep several accumulators in flight.
    const float* x = vectors_ + static_cast<size_t>(id) * dim_;
    return innerProduct_ ? -faiss::fvec_inner_product(query_, x, dim_) : faiss::fvec_L2sqr(query_, x, dim_);
  }

  bool eligible(NodeId id) const { return selector_ == nullptr || selector_->is_member(id); }

  // Greedy walk on an upper level: move to any closer neighbour until none is closer.
  void descend(int level, NodeId& node, float& nodeDistance) const {
    for (bool moved = true; moved;) {
      moved = false;
      size_t begin, end;
      graph_.neighbor_range(node, level, &begin, &end);
      for (size_t i = begin; i < end; ++i) {
        const NodeId next = graph_.neighbors[i];
        if (next < 0) break;
        const float d = distance(next);
        if (d < nodeDistance) {
          node = next;
          nodeDistance = d;
          moved = true;
        }
      }
    }
  }

  const faiss::HNSW& graph_;
  const float* vectors_;
  const int dim_;
  const bool innerProduct_;
  const faiss::IDSelector* selector_;
  const float* query_ = nullptr;
};

}  // namespace

void searchHnsw(const faiss::IndexHNSW& index, const float* queries, int nq, int k, int ef,
                const faiss::IDSelector* selector, int threads, float* distances, idx_t* labels,
                const CancelFlag& cancel) {
  auto* storage = dynamic_cast<const faiss::IndexFlat*>(index.storage);
  if (storage == nullptr || index.ntotal > INT32_MAX) {
    throw Error(ErrorCode::Internal, "HNSW search needs a flat storage of at most 2^31 vectors");
  }
  const int beam = std::max(ef, k);
  // One table per thread of this call, taken on the thread's first query, returned at the end.
  std::vector<std::unique_ptr<faiss::VisitedTable>> tables(static_cast<size_t>(std::max(threads, 1)));
  struct GiveBack {
    std::vector<std::unique_ptr<faiss::VisitedTable>>& tables;
    ~GiveBack() {
      for (auto& t : tables) visitedPool().giveBack(std::move(t));
    }
  } giveBack{tables};
  auto one = [&](int64_t q) {
    if (cancel.raised()) return;
    std::unique_ptr<faiss::VisitedTable>& table = tables[static_cast<size_t>(omp_get_thread_num())];
    if (!table) table = visitedPool().take(index.ntotal);
    GraphSearch search(index, storage->get_xb(), selector);
    search.run(queries + static_cast<size_t>(q) * index.d, k, beam, *table, distances + static_cast<size_t>(q) * k,
               labels + static_cast<size_t>(q) * k);
  };
  // A single query runs on the calling thread, without a team.
  parallelFor(threads, nq, 4, one);
  cancel.check();
  // FAISS's convention: inner product comes back as a similarity, largest first.
  if (index.metric_type == faiss::METRIC_INNER_PRODUCT) {
    for (size_t i = 0; i < static_cast<size_t>(nq) * k; ++i) distances[i] = -distances[i];
  }
}

}  // namespace cangen

namespace cangen {
size_t hnswVisitedBytesKept() { return visitedPool().keptBytes(); }
}  // namespace cangen
