// AdIndex kind flat (the exact scan) against a float64 brute force computed here, and CRC-32C
// against its check value.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "common/crc32c.h"
#include "test_data.h"
#include "ann/ad_index.h"

namespace {

TEST(Crc32c, MatchesTheStandardCheckValue) {
  const char text[] = "123456789";
  EXPECT_EQ(cangen::crc32c(text, 9), 0xE3069283u);
}

TEST(FlatSearch, InnerProductTopKMatchesFloat64BruteForce) {
  const int dim = 24, n = 1000, nq = 7, k = 10;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> vectors(size_t(n) * dim), queries(size_t(nq) * dim);
  for (float& v : vectors) v = normal(rng);
  for (float& v : queries) v = normal(rng);
  std::vector<int64_t> ids(n);
  std::iota(ids.begin(), ids.end(), 1000);

  cangen::AdIndex index(cangen::testdata::flatConfig(dim), 1);
  index.upsert(ids.data(), vectors.data(), nullptr, n);
  const cangen::SearchResult result = index.search(queries.data(), nq, k, {});

  for (int q = 0; q < nq; ++q) {
    std::vector<std::pair<double, int64_t>> exact(n);
    for (int i = 0; i < n; ++i) {
      double s = 0;
      for (int j = 0; j < dim; ++j) s += double(queries[q * dim + j]) * vectors[size_t(i) * dim + j];
      exact[i] = {-s, ids[i]};
    }
    std::sort(exact.begin(), exact.end());
    ASSERT_EQ(result.counts[q], uint32_t(k));
    for (int r = 0; r < k; ++r) {
      EXPECT_EQ(result.ids[q * k + r], exact[r].second) << "query " << q << " rank " << r;
      EXPECT_NEAR(result.scores[q * k + r], -exact[r].first, 1e-3);
    }
  }
}

TEST(FlatSearch, PadsWhenFewerThanKAds) {
  cangen::AdIndex index(cangen::testdata::flatConfig(4), 1);
  const int64_t ids[] = {5, 6};
  const float vectors[] = {1, 0, 0, 0, 0, 1, 0, 0};
  index.upsert(ids, vectors, nullptr, 2);
  const float query[] = {1, 0, 0, 0};
  const cangen::SearchResult result = index.search(query, 1, 4, {});
  EXPECT_EQ(result.counts[0], 2u);
  EXPECT_EQ(result.ids[0], 5);
  EXPECT_EQ(result.ids[2], -1);
  EXPECT_TRUE(std::isnan(result.scores[3]));
}

}  // namespace
