// The process thread budget: cgroup quota parsing from sample files (v2 and v1 layouts, as on a
// host, in a container with its own cgroup namespace, and under Kubernetes), leases that share
// the budget across threads, and concurrent searches that stay within it.
#include <gtest/gtest.h>
#include <omp.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>
#include <vector>

#include "ann/ad_index.h"
#include "common/parallel.h"
#include "common/threads.h"
#include "test_data.h"

namespace {

namespace fs = std::filesystem;

class CgroupTree {
 public:
  CgroupTree() {
    char pattern[] = "/tmp/cangen-cgroup-XXXXXX";
    root_ = mkdtemp(pattern);
  }
  ~CgroupTree() { fs::remove_all(root_); }
  void write(const std::string& relative, const std::string& text) const {
    const fs::path path = fs::path(root_) / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

TEST(CgroupQuota, ParsesCpuMax) {
  EXPECT_FALSE(cangen::parseCpuMax("max 100000\n").has_value());
  EXPECT_DOUBLE_EQ(*cangen::parseCpuMax("200000 100000\n"), 2.0);
  EXPECT_DOUBLE_EQ(*cangen::parseCpuMax("150000 100000"), 1.5);
  EXPECT_FALSE(cangen::parseCpuMax("").has_value());
  EXPECT_FALSE(cangen::parseCpuMax("garbage").has_value());
}

TEST(CgroupQuota, ParsesCfsQuota) {
  EXPECT_FALSE(cangen::parseCfsQuota("-1\n", "100000\n").has_value());
  EXPECT_DOUBLE_EQ(*cangen::parseCfsQuota("50000\n", "100000\n"), 0.5);
  EXPECT_FALSE(cangen::parseCfsQuota("100000", "0").has_value());
}

TEST(CgroupQuota, V2TakesTheTightestLimitAlongThePath) {
  CgroupTree tree;
  tree.write("cpu.max", "max 100000\n");
  tree.write("kubepods/cpu.max", "400000 100000\n");
  tree.write("kubepods/pod1/cpu.max", "250000 100000\n");
  tree.write("kubepods/pod1/container/cpu.max", "max 100000\n");
  EXPECT_DOUBLE_EQ(*cangen::cgroupCpuLimit(tree.root(), "0::/kubepods/pod1/container\n"), 2.5);
  EXPECT_DOUBLE_EQ(*cangen::cgroupCpuLimit(tree.root(), "0::/kubepods\n"), 4.0);
  EXPECT_FALSE(cangen::cgroupCpuLimit(tree.root(), "0::/\n").has_value());
}

TEST(CgroupQuota, V2InsideAContainerNamespace) {
  CgroupTree tree;
  tree.write("cpu.max", "200000 100000\n");
  EXPECT_DOUBLE_EQ(*cangen::cgroupCpuLimit(tree.root(), "0::/\n"), 2.0);
}

TEST(CgroupQuota, V1JoinedControllerOnTheHost) {
  CgroupTree tree;
  tree.write("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "300000\n");
  tree.write("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  tree.write("cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  tree.write("cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  const std::string self = "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n";
  EXPECT_DOUBLE_EQ(*cangen::cgroupCpuLimit(tree.root(), self), 3.0);
}

TEST(CgroupQuota, V1ContainerSeesItsOwnCgroupAtTheMount) {
  CgroupTree tree;  // /proc/self/cgroup names the host path, which the container does not see
  tree.write("cpu/cpu.cfs_quota_us", "150000\n");
  tree.write("cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_DOUBLE_EQ(*cangen::cgroupCpuLimit(tree.root(), "3:cpu:/docker/xyz\n"), 1.5);
}

TEST(CgroupQuota, NoCpuControllerMeansNoLimit) {
  CgroupTree tree;
  tree.write("memory/memory.limit_in_bytes", "1000000\n");
  EXPECT_FALSE(cangen::cgroupCpuLimit(tree.root(), "7:memory:/\n").has_value());
}

class ThreadBudget : public ::testing::Test {
 protected:
  void TearDown() override { cangen::setThreadBudget(0); }
};

TEST_F(ThreadBudget, DetectedBudgetRespectsAffinity) {
  const cangen::ThreadBudgetInfo info = cangen::threadBudgetInfo();
  EXPECT_GE(info.budget, 1);
  if (info.source != "CANGEN_THREAD_BUDGET") EXPECT_LE(info.budget, info.affinityCpus);
}

TEST_F(ThreadBudget, LeasesShareTheBudgetAndWaitWhenNoneIsFree) {
  cangen::setThreadBudget(3);
  auto first = std::make_unique<cangen::ThreadLease>(2);
  EXPECT_EQ(first->threads(), 2);
  {
    cangen::ThreadLease nested(8);  // same thread: shares the outer lease, does not wait
    EXPECT_EQ(nested.threads(), 2);
  }
  std::atomic<int> second{0}, third{0};
  std::thread a([&] {
    cangen::ThreadLease lease(5);
    second = lease.threads();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  });
  while (second == 0) std::this_thread::yield();
  EXPECT_EQ(second.load(), 1);  // only one was free
  std::thread b([&] {
    cangen::ThreadLease lease(0);
    third = lease.threads();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(third.load(), 0);  // the budget is spent: it waits
  first.reset();
  a.join();
  b.join();
  EXPECT_GE(third.load(), 1);
  EXPECT_LE(third.load(), 3);
}

TEST_F(ThreadBudget, IfFreeTakesWhatIsFreeOrNothingWithoutWaiting) {
  cangen::setThreadBudget(2);
  std::atomic<int> other{0};
  std::atomic<bool> release{false};
  std::thread holder([&] {
    cangen::ThreadLease lease(1);
    other = lease.threads();
    while (!release) std::this_thread::yield();
  });
  while (other == 0) std::this_thread::yield();
  {
    cangen::ThreadLease free(4, cangen::ThreadLease::IfFree{});
    EXPECT_EQ(free.threads(), 1);  // one of two was free
    cangen::ThreadLease nested(1);  // nests in it, does not wait
    EXPECT_EQ(nested.threads(), 1);
    std::atomic<int> none{-1};
    std::thread c([&] { none = cangen::ThreadLease(1, cangen::ThreadLease::IfFree{}).threads(); });
    c.join();  // returns at once although the budget is spent
    EXPECT_EQ(none.load(), 0);
  }
  cangen::ThreadLease after(1, cangen::ThreadLease::IfFree{});
  EXPECT_EQ(after.threads(), 1);  // the budget's accounting survived the empty lease
  release = true;
  holder.join();
}

TEST_F(ThreadBudget, FaissSettingIsRestoredAfterTheCall) {
  const int before = omp_get_max_threads();
  {
    cangen::ScopedOmpThreads team(before + 3);
    EXPECT_EQ(omp_get_max_threads(), before + 3);
  }
  EXPECT_EQ(omp_get_max_threads(), before);
}

TEST_F(ThreadBudget, ConcurrentSearchesStayWithinTheBudget) {
  const int dim = 32, n = 60000, nq = 16;
  const std::vector<float> x = cangen::testdata::randomRows(n, dim, 3), q = cangen::testdata::randomRows(nq, dim, 4);
  std::vector<int64_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  cangen::AdIndex index(cangen::testdata::flatConfig(dim), 8);  // asks for 8 threads per call
  index.upsert(ids.data(), x.data(), nullptr, n);
  cangen::setThreadBudget(3);
  cangen::regionThreadCounts(true);
  std::vector<std::thread> callers;
  for (int c = 0; c < 6; ++c) {
    callers.emplace_back([&] {
      for (int r = 0; r < 5; ++r) index.search(q.data(), nq, 10, {});
    });
  }
  for (auto& t : callers) t.join();
  const cangen::RegionThreadCounts counts = cangen::regionThreadCounts(true);
  EXPECT_GE(counts.peak, 2);  // the searches did run in teams
  EXPECT_LE(counts.peak, 3);  // 6 callers x 8 threads asked for, 3 allowed
}

}  // namespace
