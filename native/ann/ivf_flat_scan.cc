#include "ann/ivf_flat_scan.h"

#include <faiss/IndexIVFFlat.h>
#include <faiss/invlists/InvertedLists.h>

#include <cmath>
#include <limits>
#include <typeinfo>
#include <vector>

#include "common/parallel.h"
#include "common/row_score.h"
#include "flat/topk.h"

namespace cangen {

namespace {

inline bool admitted(const uint64_t* eligible, size_t words, int64_t id) {
  const uint64_t at = static_cast<uint64_t>(id);
  return at / 64 < words && ((eligible[at / 64] >> (at % 64)) & 1u);
}

template <bool L2>
void scanList(const float* q, const float* rows, const int64_t* ids, size_t n, int d, const uint64_t* eligible,
              size_t words, TopKCollector& top) {
  const size_t stride = static_cast<size_t>(d);
  if (!eligible) {
    size_t i = 0;
    float s[4];
    for (; i + 4 <= n; i += 4) {
      rowScoresFour<L2>(q, rows + i * stride, stride, d, s);
      for (int r = 0; r < 4; ++r) {
        if (s[r] > top.threshold()) top.push(s[r], static_cast<uint32_t>(ids[i + r]));
      }
    }
    for (; i < n; ++i) {
      const float score = rowScore<L2>(q, rows + i * stride, d);
      if (score > top.threshold()) top.push(score, static_cast<uint32_t>(ids[i]));
    }
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    if (!admitted(eligible, words, ids[i])) continue;
    const float score = rowScore<L2>(q, rows + i * stride, d);
    if (score > top.threshold()) top.push(score, static_cast<uint32_t>(ids[i]));
  }
}

// One build for AVX-512 CPUs and one for the AVX2 baseline, picked at load time (an ifunc);
// `flatten` inlines the row scoring into each, so each gets its own vector width.
#define CANGEN_LIST_SCAN_CLONES __attribute__((target_clones("arch=x86-64-v4", "default"), flatten))

CANGEN_LIST_SCAN_CLONES void scanListL2(const float* q, const float* rows, const int64_t* ids, size_t n, int d,
                                        const uint64_t* eligible, size_t words, TopKCollector& top) {
  scanList<true>(q, rows, ids, n, d, eligible, words, top);
}

CANGEN_LIST_SCAN_CLONES void scanListIp(const float* q, const float* rows, const int64_t* ids, size_t n, int d,
                                        const uint64_t* eligible, size_t words, TopKCollector& top) {
  scanList<false>(q, rows, ids, n, d, eligible, words, top);
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
      (l2 ? scanListL2 : scanListIp)(q, rows, ids.get(), n, d, eligible, eligibleWords, top);
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
