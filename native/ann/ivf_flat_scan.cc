#include "ann/ivf_flat_scan.h"

#include <faiss/IndexIVFFlat.h>
#include <faiss/invlists/InvertedLists.h>

#include <limits>
#include <typeinfo>
#include <vector>

#include "ann/row_block.h"
#include "common/parallel.h"
#include "flat/topk.h"

namespace cangen {

namespace {

inline bool admitted(const uint64_t* eligible, size_t words, int64_t id) {
  const uint64_t at = static_cast<uint64_t>(id);
  return at / 64 < words && ((eligible[at / 64] >> (at % 64)) & 1u);
}

// Rows go to the scorer in blocks of 16 (the eligible ones only, so a filter costs its bit tests
// and nothing more), and scores above the running threshold to the collector.
void scanList(RowBlockFunction score, bool l2, const float* q, const float* rows, const int64_t* ids, size_t n, int d,
              const uint64_t* eligible, size_t words, TopKCollector& top) {
  const float* block[kRowBlock16];
  uint32_t slots[kRowBlock16];
  float scores[kRowBlock16];
  int filled = 0;
  const auto flush = [&] {
    score(q, block, filled, d, l2, scores);
    for (int r = 0; r < filled; ++r) {
      if (scores[r] > top.threshold()) top.push(scores[r], slots[r]);
    }
    filled = 0;
  };
  for (size_t i = 0; i < n; ++i) {
    if (eligible && !admitted(eligible, words, ids[i])) continue;
    block[filled] = rows + i * static_cast<size_t>(d);
    slots[filled] = static_cast<uint32_t>(ids[i]);
    if (++filled == kRowBlock16) flush();
  }
  if (filled > 0) flush();
}

}  // namespace

bool scansIvfFlatLists(const faiss::IndexIVF& ivf) {
  return typeid(ivf) == typeid(faiss::IndexIVFFlat) &&
         (ivf.metric_type == faiss::METRIC_L2 || ivf.metric_type == faiss::METRIC_INNER_PRODUCT);
}

void searchIvfFlatLists(const faiss::IndexIVF& ivf, const float* queries, int nq, const int64_t* lists, int nprobe,
                        int k, const uint64_t* eligible, size_t eligibleWords, int threads, float* distances,
                        int64_t* labels, const CancelFlag& cancel) {
  const bool l2 = ivf.metric_type == faiss::METRIC_L2;
  const int d = static_cast<int>(ivf.d);
  const faiss::InvertedLists& invlists = *ivf.invlists;
  const RowBlockFunction score = bestRowBlockFunction();
  parallelFor(threads, nq, 1, [&](int64_t qi) {
    if (cancel.raised()) return;  // the caller's check() reports it
    const float* q = queries + static_cast<size_t>(qi) * d;
    TopKCollector top(static_cast<size_t>(k));
    for (int p = 0; p < nprobe; ++p) {
      const int64_t list = lists[static_cast<size_t>(qi) * nprobe + p];
      if (list < 0) continue;
      const size_t n = invlists.list_size(static_cast<size_t>(list));
      if (n == 0) continue;
      faiss::InvertedLists::ScopedCodes codes(&invlists, static_cast<size_t>(list));
      faiss::InvertedLists::ScopedIds ids(&invlists, static_cast<size_t>(list));
      const float* rows = reinterpret_cast<const float*>(codes.get());
      scanList(score, l2, q, rows, ids.get(), n, d, eligible, eligibleWords, top);
    }
    const std::vector<ScoredSlot> best = top.sorted();
    float* outDistances = distances + static_cast<size_t>(qi) * k;
    int64_t* outLabels = labels + static_cast<size_t>(qi) * k;
    for (int r = 0; r < k; ++r) {
      const bool found = static_cast<size_t>(r) < best.size();
      outLabels[r] = found ? static_cast<int64_t>(best[r].slot) : -1;
      const float empty = l2 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
      outDistances[r] = found ? (l2 ? -best[r].score : best[r].score) : empty;
    }
  });
}

}  // namespace cangen
