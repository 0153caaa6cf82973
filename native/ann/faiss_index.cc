#include "ann/faiss_index.h"

#include <faiss/IndexIDMap.h>
#include <faiss/index_factory.h>
#include <omp.h>

#include <cmath>
#include <mutex>
#include <unordered_set>

#include "ann/faiss_call.h"
#include "ann/faiss_writes.h"
#include "common/all_or_nothing.h"
#include "common/error.h"
#include "common/threads.h"
#include "common/vectors.h"

namespace cangen {

namespace {

faiss::MetricType toFaiss(Metric metric) {
  return metric == Metric::L2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
}

}  // namespace

FaissIndex::FaissIndex(int dim, Metric metric, const std::string& factory, int threads)
    : dim_(dim), metric_(metric), threads_(std::max(threads, 0)) {
  if (dim < 1) throw Error(ErrorCode::InvalidArgument, "Expected a dimension >= 1 but received " + std::to_string(dim));
  index_ = callFaiss("index_factory", [&] {
    std::unique_ptr<faiss::Index> inner(faiss::index_factory(dim, factory.c_str(), toFaiss(metric)));
    auto map = std::make_unique<faiss::IndexIDMap2>(inner.get());
    map->own_fields = true;
    inner.release();
    return std::unique_ptr<faiss::Index>(std::move(map));
  });
  trained_ = index_->is_trained;
}

FaissIndex::~FaissIndex() = default;

size_t FaissIndex::size() const { return publicCount_.load(std::memory_order_acquire); }

bool FaissIndex::isTrained() const { return trained_.load(std::memory_order_acquire); }

std::vector<float> FaissIndex::prepare(const float* vectors, size_t n) const {
  return prepareRows(vectors, n, dim_, metric_, "vectors", false);
}

void FaissIndex::train(const float* vectors, size_t n) {
  std::vector<float> x = prepare(vectors, n);
  std::unique_lock lock(mutex_);
  ThreadLease lease(threads_);
  ScopedOmpThreads team(lease.threads());
  callFaiss("train", [&] { index_->train(static_cast<faiss::Index::idx_t>(n), x.data()); });
  trained_ = index_->is_trained;
}

void FaissIndex::add(const int64_t* ids, const float* vectors, size_t n) {
  std::vector<float> x = prepare(vectors, n);
  std::unique_lock lock(mutex_);
  if (!index_->is_trained) {
    throw Error(ErrorCode::InvalidArgument, "Expected a trained index: call train() with a sample before add()");
  }
  auto& map = static_cast<faiss::IndexIDMap2&>(*index_);
  std::unordered_set<int64_t> batch;
  for (size_t i = 0; i < n; ++i) {
    if (map.rev_map.count(ids[i]) || !batch.insert(ids[i]).second) {
      throw Error(ErrorCode::DuplicateId,
                  "Expected ids not already in the index but id " + std::to_string(ids[i]) + " is repeated; nothing was added");
    }
  }
  if (n == 0) return;
  // All or nothing, as in AdIndex: the id map's room and entries first, then the inner index's
  // add (undone on failure), then a commit that cannot fail. FAISS's IndexIDMap2::add_with_ids
  // would grow the inner index before its own maps, with nothing to undo a failure between.
  const faiss::Index::idx_t first = map.ntotal;
  reserveRoom(map.id_map, static_cast<size_t>(first) + n);
  const std::vector<int64_t> inserted = insertAllOrNothing(
      map.rev_map, ids, n, [](size_t) { return true; }, [&](size_t i) { return first + static_cast<faiss::Index::idx_t>(i); });
  ThreadLease lease(threads_);
  ScopedOmpThreads team(lease.threads());
  try {
    addToFaiss(*map.index, x.data(), n, first);
  } catch (...) {
    eraseKeys(map.rev_map, inserted);
    throw;
  }
  map.id_map.insert(map.id_map.end(), ids, ids + n);
  map.ntotal = map.index->ntotal;
  publicCount_.store(static_cast<size_t>(map.ntotal), std::memory_order_release);
}

SearchResult FaissIndex::search(const float* queries, int nq, int k, const SearchOptions& options) const {
  if (k < 1) throw Error(ErrorCode::InvalidArgument, "Expected k >= 1 but received " + std::to_string(k));
  if (options.device == Device::Gpu) {
    throw Error(ErrorCode::NoDevice, "FAISS-backed indexes search on the CPU in this build; use device 'cpu'");
  }
  std::vector<float> q = prepare(queries, nq);
  SearchResult result = SearchResult::padded(nq, k);
  {
    std::shared_lock lock(mutex_);
    ThreadLease lease(options.threads > 0 ? options.threads : threads_);
    ScopedOmpThreads team(lease.threads());
    callFaiss("search", [&] { index_->search(nq, q.data(), k, result.scores.data(), result.ids.data()); });
  }
  for (size_t i = 0; i < result.ids.size(); ++i) {
    if (result.ids[i] >= 0) {
      result.counts[i / k]++;
    } else {
      result.scores[i] = std::nanf("");
    }
  }
  return result;
}

}  // namespace cangen
