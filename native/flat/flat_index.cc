#include "flat/flat_index.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>
#include <unordered_set>

#include "common/all_or_nothing.h"
#include "common/error.h"
#include "common/threads.h"
#include "common/vectors.h"
#include "flat/exact_search.h"

namespace cangen {

FlatIndex::FlatIndex(int dim, Metric metric, int threads)
    : dim_(dim), metric_(metric), threads_(std::max(threads, 0)), store_(dim, metric) {
  if (dim < 1 || dim > 65536) {
    throw Error(ErrorCode::InvalidArgument, "Expected a dimension between 1 and 65536 but received " +
                                                std::to_string(dim));
  }
}

FlatIndex::~FlatIndex() = default;

size_t FlatIndex::size() const { return publicCount_.load(std::memory_order_acquire); }

void FlatIndex::add(const int64_t* ids, const float* vectors, size_t n) {
  if (n == 0) return;
  // Cosine stores unit vectors; the copy is made before the lock so searches wait less.
  std::vector<float> normalised;
  if (metric_ == Metric::Cosine) {
    normalised = prepareRows(vectors, n, dim_, metric_, "vectors", true);
    vectors = normalised.data();
  } else {
    requireFinite(vectors, n, dim_, "vectors");
  }

  std::unique_lock lock(mutex_);
  // All or nothing: every id is checked before the first one is stored.
  std::unordered_set<int64_t> batch;
  batch.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (slotOfId_.count(ids[i]) != 0 || !batch.insert(ids[i]).second) {
      throw Error(ErrorCode::DuplicateId, "Expected ids not already in the index but id " + std::to_string(ids[i]) +
                                              (slotOfId_.count(ids[i]) ? " is already present"
                                                                       : " appears twice in this batch") +
                                              "; nothing was added");
    }
  }
  if (count_ + n > UINT32_MAX) {
    throw Error(ErrorCode::InvalidArgument, "A flat index holds at most 4294967295 ads");
  }

  // Prepare: every allocation, with the index untouched.
  const size_t first = count_;
  reserveRoom(ids_, first + n);
  const std::vector<int64_t> inserted = insertAllOrNothing(
      slotOfId_, ids, n, [](size_t) { return true; }, [&](size_t i) { return static_cast<uint32_t>(first + i); });
  try {
    store_.reserve(first + n);
  } catch (...) {
    eraseKeys(slotOfId_, inserted);
    throw;
  }
  // Commit: nothing below allocates.
  store_.append(vectors, n);
  ids_.insert(ids_.end(), ids, ids + n);
  count_ = first + n;
  publicCount_.store(count_, std::memory_order_release);
  gpu_.markDirty(first);
}

std::vector<float> FlatIndex::prepareQueries(const float* queries, int nq) const {
  std::vector<float> prepared = prepareRows(queries, nq, dim_, metric_, "queries", false);
  if (metric_ == Metric::L2) {
    for (float& v : prepared) v *= 2.0f;  // the kernels rank L2 by 2 q.x - |x|^2
  }
  return prepared;
}

SearchResult FlatIndex::search(const float* queries, int nq, int k, const SearchOptions& options) const {
  if (nq < 1) throw Error(ErrorCode::InvalidArgument, "Expected at least one query but received " + std::to_string(nq));
  if (k < 1) throw Error(ErrorCode::InvalidArgument, "Expected k >= 1 but received " + std::to_string(k));
  std::vector<float> prepared = prepareQueries(queries, nq);

  SearchResult result = SearchResult::padded(nq, k);
  std::vector<int64_t> slots(static_cast<size_t>(nq) * k, -1);

  std::shared_lock lock(mutex_);
  const PanelView view = store_.view();
  if (options.device == Device::Gpu) {
    gpu_.search(view, prepared.data(), nq, k, nullptr, options.gpuDevice, slots.data(), result.scores.data());
  } else if (count_ > 0) {
    ThreadLease lease(exactSearchTeams(view, requestedThreads(options.threads, threads_)));
    exactSearchPanels(view, prepared.data(), nq, k, lease.threads(), nullptr, slots.data(), result.scores.data());
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i] >= 0) {
      result.ids[i] = ids_[slots[i]];
      result.counts[i / k]++;
    } else {
      result.scores[i] = std::nanf("");
    }
  }
  lock.unlock();
  convertScores(queries, result);
  return result;
}

// Internal "larger is better" scores to what the metric reports (see common/metric.h).
void FlatIndex::convertScores(const float* queries, SearchResult& result) const {
  if (metric_ != Metric::L2) return;
  for (int q = 0; q < result.nq; ++q) {
    const float queryNorm = static_cast<float>(squaredNorm(queries + static_cast<size_t>(q) * dim_, dim_));
    for (int i = 0; i < result.k; ++i) {
      float& s = result.scores[static_cast<size_t>(q) * result.k + i];
      if (!std::isnan(s)) s = std::max(0.0f, queryNorm - s);
    }
  }
}

}  // namespace cangen
