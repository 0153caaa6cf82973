// The IVF search pieces cangen does itself: the coarse step on the exact kernel (ann/ivf_coarse.h)
// against a float64 brute force over the centroids, and IVF-Flat's list scan (ann/ivf_flat_scan.h)
// against a float64 brute force over the visited lists' vectors, with and without an eligibility
// bitmap; and the coarse step feeding FAISS's own list scan (IVF-SQ8) against FAISS's whole search.
#include <gtest/gtest.h>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexScalarQuantizer.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <set>
#include <vector>

#include "ann/ivf_coarse.h"
#include "ann/ivf_flat_scan.h"
#include "ann/row_block.h"
#include "common/cpu_features.h"
#include "test_data.h"

namespace {

using cangen::testdata::randomRows;

constexpr int kDim = 40, kLists = 32, kAds = 4000, kQueries = 9;

double score64(const float* q, const float* x, int d, bool l2) {
  double s = 0;
  for (int j = 0; j < d; ++j) s += l2 ? (double(q[j]) - x[j]) * (double(q[j]) - x[j]) : double(q[j]) * x[j];
  return l2 ? -s : s;
}

// Positions 0..k-1 of the best by float64 score (higher first), as (score, id).
std::vector<std::pair<double, int64_t>> best64(std::vector<std::pair<double, int64_t>> all, size_t k) {
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  all.resize(std::min(k, all.size()));
  return all;
}

struct Built {
  std::unique_ptr<faiss::IndexFlat> quantizer;
  std::unique_ptr<faiss::IndexIVF> ivf;
  std::vector<float> ads;
};

template <typename Ivf, typename... Extra>
Built build(bool l2, Extra... extra) {
  Built b;
  b.ads = randomRows(kAds, kDim, l2 ? 11 : 12);
  const faiss::MetricType metric = l2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
  b.quantizer = l2 ? std::unique_ptr<faiss::IndexFlat>(new faiss::IndexFlatL2(kDim))
                   : std::unique_ptr<faiss::IndexFlat>(new faiss::IndexFlatIP(kDim));
  b.ivf = std::make_unique<Ivf>(b.quantizer.get(), kDim, kLists, extra..., metric);
  b.ivf->train(kAds, b.ads.data());
  b.ivf->add(kAds, b.ads.data());  // ids 0 .. kAds-1
  return b;
}

class IvfSearch : public ::testing::TestWithParam<bool> {};

TEST_P(IvfSearch, CoarseStepFindsTheNearestListsOfAFloat64BruteForce) {
  const bool l2 = GetParam();
  Built b = build<faiss::IndexIVFFlat>(l2);
  cangen::IvfCoarse coarse;
  coarse.rebuild(b.ivf.get());
  ASSERT_EQ(coarse.ivf(), b.ivf.get());
  const std::vector<float> queries = randomRows(kQueries, kDim, 13);
  const float* centroids = b.quantizer->get_xb();
  // 5 of 32 lists: the int8 scan with its fp32 window; 20 of 32: the fp32 scan alone.
  for (const int nprobe : {5, 20}) {
    std::vector<int64_t> lists(kQueries * nprobe);
    std::vector<float> distances(lists.size());
    coarse.assign(queries.data(), kQueries, nprobe, 2, lists.data(), distances.data());
    for (int q = 0; q < kQueries; ++q) {
      std::vector<std::pair<double, int64_t>> all;
      for (int c = 0; c < kLists; ++c) all.push_back({score64(&queries[q * kDim], centroids + c * kDim, kDim, l2), c});
      const auto expected = best64(all, nprobe);
      for (int r = 0; r < nprobe; ++r) {
        const double want = expected[r].first;
        // Same list, or a tie with it at float precision.
        const double got = score64(&queries[q * kDim], centroids + lists[q * nprobe + r] * kDim, kDim, l2);
        EXPECT_NEAR(got, want, 1e-4 * (1 + std::abs(want))) << "query " << q << " rank " << r;
        // FAISS's convention: the squared distance, or the inner product.
        EXPECT_NEAR(distances[q * nprobe + r], l2 ? -got : got, 1e-3 * (1 + std::abs(want)));
      }
    }
  }
}

TEST_P(IvfSearch, FlatListScanEqualsAFloat64BruteForceOverTheVisitedLists) {
  const bool l2 = GetParam();
  Built b = build<faiss::IndexIVFFlat>(l2);
  ASSERT_TRUE(cangen::scansIvfFlatLists(*b.ivf));
  cangen::IvfCoarse coarse;
  coarse.rebuild(b.ivf.get());
  const std::vector<float> queries = randomRows(kQueries, kDim, 14);
  const int nprobe = 3, k = 25;
  std::vector<int64_t> lists(kQueries * nprobe);
  std::vector<float> listDistances(lists.size());
  coarse.assign(queries.data(), kQueries, nprobe, 1, lists.data(), listDistances.data());
  // Every third ad eligible; and no filter.
  std::vector<uint64_t> bits((kAds + 63) / 64, 0);
  for (int i = 0; i < kAds; i += 3) bits[i / 64] |= uint64_t{1} << (i % 64);
  for (const bool filtered : {false, true}) {
    std::vector<float> distances(kQueries * k);
    std::vector<int64_t> labels(kQueries * k);
    cangen::searchIvfFlatLists(*b.ivf, queries.data(), kQueries, lists.data(), nprobe, k,
                               filtered ? bits.data() : nullptr, filtered ? bits.size() : 0, 2, distances.data(),
                               labels.data(), {});
    for (int q = 0; q < kQueries; ++q) {
      std::set<int64_t> visited(&lists[q * nprobe], &lists[q * nprobe] + nprobe);
      std::vector<std::pair<double, int64_t>> all;
      for (int64_t list : visited) {
        const size_t n = b.ivf->invlists->list_size(list);
        const int64_t* ids = b.ivf->invlists->get_ids(list);
        for (size_t i = 0; i < n; ++i) {
          if (filtered && ids[i] % 3 != 0) continue;
          all.push_back({score64(&queries[q * kDim], &b.ads[ids[i] * kDim], kDim, l2), ids[i]});
        }
      }
      const auto expected = best64(all, k);
      ASSERT_GE(expected.size(), size_t(k)) << "the test needs at least k candidates";
      for (int r = 0; r < k; ++r) {
        const int64_t id = labels[q * k + r];
        ASSERT_GE(id, 0);
        if (filtered) {
          EXPECT_EQ(id % 3, 0) << "an ineligible ad was returned";
        }
        const double got = score64(&queries[q * kDim], &b.ads[id * kDim], kDim, l2);
        EXPECT_NEAR(got, expected[r].first, 1e-4 * (1 + std::abs(expected[r].first))) << "query " << q << " rank " << r;
        EXPECT_NEAR(distances[q * k + r], l2 ? -got : got, 1e-3 * (1 + std::abs(got)));
      }
    }
  }
}

TEST_P(IvfSearch, CoarseStepFeedingFaissListScanEqualsFaissSearch) {
  const bool l2 = GetParam();
  Built b = build<faiss::IndexIVFScalarQuantizer>(l2, faiss::ScalarQuantizer::QT_8bit);
  EXPECT_FALSE(cangen::scansIvfFlatLists(*b.ivf)) << "only IVF-Flat has its list scan here";
  cangen::IvfCoarse coarse;
  coarse.rebuild(b.ivf.get());
  ASSERT_EQ(coarse.ivf(), b.ivf.get());
  const std::vector<float> queries = randomRows(kQueries, kDim, 15);
  const int nprobe = 4, k = 10;
  faiss::SearchParametersIVF params;
  params.nprobe = nprobe;
  std::vector<float> ours(kQueries * k), theirs(kQueries * k), listDistances(kQueries * nprobe);
  std::vector<int64_t> ourLabels(kQueries * k), theirLabels(kQueries * k), lists(kQueries * nprobe);
  coarse.assign(queries.data(), kQueries, nprobe, 1, lists.data(), listDistances.data());
  b.ivf->search_preassigned(kQueries, queries.data(), k, lists.data(), listDistances.data(), ours.data(),
                            ourLabels.data(), false, &params);
  b.ivf->search(kQueries, queries.data(), k, theirs.data(), theirLabels.data(), &params);
  for (int i = 0; i < kQueries * k; ++i) {
    EXPECT_NEAR(ours[i], theirs[i], 1e-3 * (1 + std::abs(theirs[i]))) << "result " << i;
  }
}

TEST(RowBlock, BothKernelsEqualAFloat64ReferenceForEveryBlockSizeAndOddDimensions) {
  std::vector<std::pair<const char*, cangen::RowBlockFunction>> kernels = {{"baseline", cangen::row_block_baseline::scoreRows}};
  if (cangen::cpuHasAvx512()) {
    kernels.push_back({"avx512", cangen::row_block_avx512::scoreRows});
  } else {
    std::printf("skipped: the AVX-512 row kernel (this CPU has no AVX-512)\n");
  }
  for (const int d : {1, 7, 16, 33, 64, 129}) {
    const std::vector<float> rows = randomRows(16, d, 20 + d);
    const std::vector<float> query = randomRows(1, d, 40 + d);
    const float* pointers[16];
    // Rows out of order, as a filter leaves them.
    for (int r = 0; r < 16; ++r) pointers[r] = &rows[static_cast<size_t>((r * 7) % 16) * d];
    for (const bool l2 : {false, true}) {
      for (int n = 1; n <= 16; ++n) {
        for (const auto& [name, kernel] : kernels) {
          float out[16];
          kernel(query.data(), pointers, n, d, l2, out);
          for (int r = 0; r < n; ++r) {
            const double want = score64(query.data(), pointers[r], d, l2);
            EXPECT_NEAR(out[r], want, 1e-4 * (1 + std::abs(want))) << name << " d " << d << " n " << n << " row " << r;
          }
        }
      }
    }
  }
}

TEST(IvfCoarse, StaysOffForIndexesItCannotServe) {
  cangen::IvfCoarse coarse;
  faiss::IndexFlatL2 flat(kDim);
  coarse.rebuild(&flat);
  EXPECT_EQ(coarse.ivf(), nullptr) << "not an IVF index";
  faiss::IndexFlatL2 quantizer(kDim);
  faiss::IndexIVFFlat untrained(&quantizer, kDim, kLists);
  coarse.rebuild(&untrained);
  EXPECT_EQ(coarse.ivf(), nullptr) << "not trained";
}

INSTANTIATE_TEST_SUITE_P(Metrics, IvfSearch, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? std::string("L2") : std::string("InnerProduct"); });

}  // namespace
