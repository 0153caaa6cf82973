// The bf16 and int8 scans of the flat kind: answers equal the fp32 scan's (same ids, same scores,
// bit for bit) on random, clustered and near-duplicate data for every metric, through writes,
// deletes and a save/load; the error bound holds ad by ad; both kernel builds (AVX-512 with
// VDPBF16PS / VPDPBUSD, and AVX2) keep every reduced score within the bound of the float64 score.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "ann/ad_index.h"
#include "common/error.h"
#include "flat/exact_search.h"
#include "flat/panel_store.h"
#include "flat/scan.h"
#include "flat/topk.h"
#include "test_data.h"

namespace {

using cangen::Metric;
using cangen::Precision;

// 40 centres, each ad a centre plus noise of `spread`: many ads score within the reduced
// precision's error of each other, so the fp32 re-ranking decides.
std::vector<float> clusteredRows(size_t n, int dim, float spread, unsigned seed) {
  std::vector<float> centres = cangen::testdata::randomRows(40, dim, seed);
  std::vector<float> noise = cangen::testdata::randomRows(n, dim, seed + 1);
  std::vector<float> rows(n * dim);
  for (size_t i = 0; i < n; ++i) {
    for (int j = 0; j < dim; ++j) rows[i * dim + j] = centres[(i % 40) * dim + j] + spread * noise[i * dim + j];
  }
  return rows;
}

cangen::AnnConfig config(int dim, Metric metric, Precision precision) {
  cangen::AnnConfig c = cangen::testdata::flatConfig(dim, metric);
  c.precision = precision;
  return c;
}

void expectSameAnswers(const cangen::AdIndex& reduced, const cangen::AdIndex& fp32, const std::vector<float>& queries,
                       int nq, int k, const std::string& what) {
  const cangen::SearchResult a = reduced.search(queries.data(), nq, k, {});
  const cangen::SearchResult b = fp32.search(queries.data(), nq, k, {});
  for (int q = 0; q < nq; ++q) {
    ASSERT_EQ(a.counts[q], b.counts[q]) << what << " query " << q;
    for (uint32_t r = 0; r < b.counts[q]; ++r) {
      const size_t i = size_t(q) * k + r;
      // Ties at equal fp32 scores may come in either order; the scores must match bit for bit.
      ASSERT_EQ(a.scores[i], b.scores[i]) << what << " query " << q << " rank " << r;
      if (r + 1 < b.counts[q] && b.scores[i] != b.scores[i + 1] && (r == 0 || b.scores[i] != b.scores[i - 1])) {
        EXPECT_EQ(a.ids[i], b.ids[i]) << what << " query " << q << " rank " << r;
      }
    }
  }
}

struct Case {
  const char* name;
  Precision precision;
  Metric metric;
  int dim;
  bool clustered;
};

void PrintTo(const Case& c, std::ostream* out) { *out << c.name; }

class ReducedScan : public ::testing::TestWithParam<Case> {};

TEST_P(ReducedScan, AnswersEqualTheFp32ScanThroughWritesAndDeletes) {
  const Case c = GetParam();
  const size_t n = 6000;
  const int nq = 13;
  std::vector<float> rows = c.clustered ? clusteredRows(n, c.dim, 1e-3f, 3) : cangen::testdata::randomRows(n, c.dim, 3);
  std::vector<float> queries = c.clustered ? clusteredRows(nq, c.dim, 0.05f, 3) : cangen::testdata::randomRows(nq, c.dim, 4);
  std::vector<int64_t> ids(n);
  std::iota(ids.begin(), ids.end(), 1);
  cangen::AdIndex reduced(config(c.dim, c.metric, c.precision), 2);
  cangen::AdIndex fp32(config(c.dim, c.metric, Precision::Fp32), 2);
  reduced.upsert(ids.data(), rows.data(), nullptr, n);
  fp32.upsert(ids.data(), rows.data(), nullptr, n);
  for (int k : {1, 10, 100}) expectSameAnswers(reduced, fp32, queries, nq, k, std::string(c.name) + " k " + std::to_string(k));

  // Overwrite a tenth of the ads with vectors 100x larger (the bound grows with them) and delete another tenth.
  std::vector<int64_t> changed, removed;
  std::vector<float> larger;
  for (size_t i = 0; i < n; i += 10) {
    changed.push_back(ids[i]);
    removed.push_back(ids[i + 5]);
    for (int j = 0; j < c.dim; ++j) larger.push_back(100 * rows[i * c.dim + j]);
  }
  for (cangen::AdIndex* index : {&reduced, &fp32}) {
    index->upsert(changed.data(), larger.data(), nullptr, changed.size());
    index->remove(removed.data(), removed.size());
  }
  expectSameAnswers(reduced, fp32, queries, nq, 50, std::string(c.name) + " after writes");
  const cangen::AnnStats stats = reduced.stats();
  EXPECT_EQ(stats.reducedQueries, uint64_t(4 * nq));
  EXPECT_GE(stats.reducedReranked, uint64_t(nq) * (1 + 10 + 100 + 50));

  reduced.compact();
  expectSameAnswers(reduced, fp32, queries, nq, 20, std::string(c.name) + " after compaction");
}

INSTANTIATE_TEST_SUITE_P(
    EveryPrecisionAndMetric, ReducedScan,
    ::testing::Values(Case{"bf16_ip_random", Precision::Bf16, Metric::InnerProduct, 64, false},
                      Case{"bf16_l2_clustered", Precision::Bf16, Metric::L2, 37, true},
                      Case{"bf16_cosine_clustered", Precision::Bf16, Metric::Cosine, 48, true},
                      Case{"int8_ip_clustered", Precision::Int8, Metric::InnerProduct, 64, true},
                      Case{"int8_l2_random", Precision::Int8, Metric::L2, 33, false},
                      Case{"int8_cosine_random", Precision::Int8, Metric::Cosine, 130, false}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

// Every ad's reduced score (all of them collected) within half the margin of the float64 score,
// for each kernel build this CPU runs.
TEST(ReducedScan, KernelsStayWithinTheErrorBoundOfEveryAd) {
  const int dim = 45, nq = 7;
  const size_t n = 700;
  std::vector<float> rows = cangen::testdata::randomRows(n, dim, 11);
  std::vector<float> queries = cangen::testdata::randomRows(nq, dim, 12);
  for (Precision precision : {Precision::Bf16, Precision::Int8}) {
    cangen::PanelStore store(dim, Metric::L2, precision);
    store.append(rows.data(), n);
    const cangen::ReducedPanels& reduced = *store.reduced();
    const cangen::ReducedView view = reduced.view(store.view().bias, n);
    const cangen::ReducedQueries encoded = reduced.encodeQueries(queries.data(), nq, true);
    struct Build {
      const char* name;
      cangen::ReducedScanFunction scan;
      bool runs;
    };
    __builtin_cpu_init();
    const bool native = __builtin_cpu_supports("avx512f") &&
                        (precision == Precision::Bf16 ? __builtin_cpu_supports("avx512bf16") : __builtin_cpu_supports("avx512vnni"));
    for (const Build& build : {Build{"avx512", cangen::scan_reduced_avx512::scanReduced, native},
                               Build{"avx2", cangen::scan_reduced_generic::scanReduced, true}}) {
      if (!build.runs) {
        std::printf("skipped: this CPU lacks the AVX-512 %s instruction\n", cangen::precisionName(precision));
        continue;
      }
      std::vector<cangen::TopKCollector> collectors(nq, cangen::TopKCollector(n));
      build.scan(view, encoded.words.data(), encoded.scale.data(), nq, 0, cangen::panelCount(n), nullptr, collectors.data());
      for (int q = 0; q < nq; ++q) {
        const std::vector<cangen::ScoredSlot> all = collectors[q].sorted();
        ASSERT_EQ(all.size(), n);
        for (const cangen::ScoredSlot& s : all) {
          double exact = 0;
          for (int j = 0; j < dim; ++j) exact += double(queries[q * dim + j]) * rows[s.slot * dim + j];
          exact += store.view().bias[s.slot];
          EXPECT_LE(std::fabs(s.score - exact), encoded.margin[q] / 2)
              << build.name << " " << cangen::precisionName(precision) << " query " << q << " ad " << s.slot;
        }
        // Not vacuous: the bound is within a few percent of the scores' spread.
        EXPECT_LT(encoded.margin[q], 0.1 * (all.front().score - all.back().score));
      }
    }
  }
}

TEST(ReducedScan, SaveAndLoadKeepThePrecisionAndAnFp32FileStaysVersion1) {
  const int dim = 16;
  const size_t n = 300;
  std::vector<float> rows = cangen::testdata::randomRows(n, dim, 5);
  std::vector<int64_t> ids(n);
  std::iota(ids.begin(), ids.end(), 1);
  const std::string dir = ::testing::TempDir();
  for (Precision precision : {Precision::Fp32, Precision::Int8}) {
    cangen::AdIndex index(config(dim, Metric::InnerProduct, precision), 1);
    index.upsert(ids.data(), rows.data(), nullptr, n);
    const std::string path = dir + "/reduced-" + cangen::precisionName(precision) + ".cgn";
    index.save(path);
    std::FILE* f = std::fopen(path.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    unsigned char header[12];
    ASSERT_EQ(std::fread(header, 1, 12, f), 12u);
    std::fclose(f);
    EXPECT_EQ(header[8], precision == Precision::Fp32 ? 1 : 2);
    std::unique_ptr<cangen::AdIndex> loaded = cangen::AdIndex::load(path, 1);
    EXPECT_EQ(loaded->config().precision, precision);
    expectSameAnswers(*loaded, index, rows, 5, 10, "loaded");
    std::remove(path.c_str());
  }
}

// Ads whose values are all subnormal (the fuzzer's find: their int8 scale underflowed to 0 and
// every code was 0 / 0) are encoded and ranked like any other: answers equal the fp32 scan's.
TEST(ReducedScan, SubnormalAdsAreEncodedAndRankedExactly) {
  const int dim = 24, n = 300;
  std::vector<float> rows = cangen::testdata::randomRows(n, dim, 31);
  for (int i = 0; i < n; i += 3) {
    for (int j = 0; j < dim; ++j) rows[size_t(i) * dim + j] *= 1e-40f;  // below FLT_MIN: subnormal
  }
  std::vector<int64_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = i;
  const std::vector<float> queries = cangen::testdata::randomRows(6, dim, 32);
  for (Precision precision : {Precision::Bf16, Precision::Int8}) {
    for (Metric metric : {Metric::InnerProduct, Metric::L2}) {
      cangen::AdIndex reduced(config(dim, metric, precision), 1);
      cangen::AdIndex fp32(config(dim, metric, Precision::Fp32), 1);
      reduced.upsert(ids.data(), rows.data(), nullptr, n);
      fp32.upsert(ids.data(), rows.data(), nullptr, n);
      expectSameAnswers(reduced, fp32, queries, 6, 50, "subnormal ads");
    }
  }
}

TEST(ReducedScan, PrecisionIsOnlyForTheFlatKind) {
  cangen::AnnConfig c = cangen::testdata::smallConfig(cangen::AnnKind::Hnsw, 8, Metric::InnerProduct);
  c.precision = Precision::Bf16;
  try {
    cangen::validateAnnConfig(c);
    FAIL() << "expected InvalidArgument";
  } catch (const cangen::Error& e) {
    EXPECT_EQ(e.code(), cangen::ErrorCode::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("flat"), std::string::npos);
  }
}

}  // namespace
