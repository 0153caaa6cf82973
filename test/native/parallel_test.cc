// Exceptions thrown inside OpenMP regions reach the calling thread as themselves (an exception
// escaping a region would call std::terminate and end the test binary), both from the helpers
// directly and from the regions of the searches, through the fault injected in region work.
#include <gtest/gtest.h>

#include <chrono>

#include <atomic>
#include <functional>
#include <new>
#include <numeric>
#include <thread>
#include <vector>

#include "ann/ad_index.h"
#include "common/error.h"
#include "common/parallel.h"
#include "test_data.h"

namespace {

using cangen::Error;
using cangen::ErrorCode;

TEST(Parallel, ErrorInAForLoopSurfacesOnTheCallerAndStopsTheRest) {
  std::atomic<int> ran{0};
  std::atomic<bool> threw{false};
  try {
    cangen::parallelFor(4, 100000, 1, [&](int64_t i) {
      ran.fetch_add(1);
      if (i == 37) {
        threw = true;
        throw Error(ErrorCode::InvalidArgument, "item 37");
      }
      // Later items wait until item 37 has thrown and then long enough for the throw to unwind
      // into the team's failure record (ms under a sanitizer or load), so the count does not
      // depend on scheduling. Once recorded, the team starts no further item.
      if (i > 37) {
        for (int spin = 0; !threw && spin < 1000000; ++spin) std::this_thread::yield();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
    FAIL() << "expected cangen::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
    EXPECT_STREQ(e.what(), "item 37");
  }
  EXPECT_LT(ran.load(), 1000);  // the team skipped the work left after the failure
}

TEST(Parallel, ForeignExceptionFromAnotherThreadOfATeamKeepsItsType) {
  EXPECT_THROW(cangen::parallelTeam(4, [](int thread, int team) {
                 if (thread == team - 1) throw std::bad_alloc();
               }),
               std::bad_alloc);
}

TEST(Parallel, OneThreadRunsOnTheCaller) {
  std::vector<int> seen(10, 0);
  cangen::parallelFor(1, 10, 4, [&](int64_t i) { seen[i]++; });
  EXPECT_EQ(std::accumulate(seen.begin(), seen.end(), 0), 10);
  EXPECT_THROW(cangen::parallelFor(1, 10, 1, [](int64_t i) {
                 if (i == 3) throw Error(ErrorCode::Internal, "three");
               }),
               Error);
}

using cangen::testdata::randomRows;

// Every search region of ours turns an injected fault into a cangen::Error on the caller, and the
// index answers correctly afterwards.
void expectInjectedFaultSurfaces(const std::function<void()>& search) {
  cangen::testing::injectFaultInRegion(2);
  try {
    search();
    cangen::testing::injectFaultInRegion(0);
    FAIL() << "expected the injected fault";
  } catch (const Error& e) {
    cangen::testing::injectFaultInRegion(0);
    EXPECT_EQ(e.code(), ErrorCode::Internal);
    EXPECT_STREQ(e.what(), "injected fault");
  }
  EXPECT_NO_THROW(search());
}

// An HNSW AdIndex of n random ads searched by 32 queries on 4 threads.
void expectHnswSearchFaultSurfaces(size_t n) {
  const int dim = 16, nq = 32;
  cangen::AnnConfig config;
  config.kind = cangen::AnnKind::Hnsw;
  config.dim = dim;
  config.hnswM = 8;
  cangen::AdIndex index(config, 4);
  std::vector<float> x = randomRows(n, dim, 11);
  std::vector<int64_t> ids(n);
  std::iota(ids.begin(), ids.end(), 1);
  index.upsert(ids.data(), x.data(), nullptr, n);
  const std::vector<float> q = randomRows(nq, dim, 12);
  cangen::AnnSearchParams params;
  params.threads = 4;
  expectInjectedFaultSurfaces([&] { index.search(q.data(), nq, 10, params); });
}

TEST(Parallel, HnswSearchRegionFailureSurfacesAsError) {
  expectHnswSearchFaultSurfaces(6000);  // above the exact fallback's 4096 ads: the graph is searched
}

TEST(Parallel, ExactOverSlotsRegionFailureSurfacesAsError) {
  expectHnswSearchFaultSurfaces(500);  // a small corpus is scored exactly over its slots
}

TEST(Parallel, ExactScanRegionFailureSurfacesAsError) {
  const int dim = 16, nq = 32;
  const size_t n = 20000;
  cangen::AdIndex index(cangen::testdata::flatConfig(dim), 4);
  std::vector<float> x = randomRows(n, dim, 14);
  std::vector<int64_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  index.upsert(ids.data(), x.data(), nullptr, n);
  const std::vector<float> q = randomRows(nq, dim, 15);
  expectInjectedFaultSurfaces([&] { index.search(q.data(), nq, 10, {}); });
}

}  // namespace
