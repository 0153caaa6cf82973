// The scorer's GPU launch decisions (scorer/gpu_scan_plan.h), checked without a device against
// hand-computed sizes and the limits CUDA documents: shared memory per block, 65,535 blocks in
// grid.y, int segment offsets, and half the free device memory for the candidate buffers.
#include <gtest/gtest.h>

#include <climits>
#include <random>

#include "common/cuda_status.h"
#include "scorer/gpu_scan_plan.h"

namespace {

using namespace cangen;
using namespace cangen::gpu;

constexpr size_t kGiB = size_t{1} << 30;

// H100 / H200 (sm_90): 48 KiB without opting in, 227 KiB with.
GpuLimits hopper(size_t freeBytes) {
  GpuLimits l;
  l.sharedPerBlock = 48 * 1024;
  l.sharedPerBlockOptin = 227 * 1024;
  l.freeBytes = freeBytes;
  return l;
}

ScorerModel mlp(int itemDim, std::vector<int> widths) {
  ScorerModel m;
  m.kind = ScorerKind::Mlp;
  m.itemDim = itemDim;
  int in = itemDim;
  for (int w : widths) {
    DenseWeights d;
    d.in = in;
    d.out = w;
    m.hidden.push_back(d);
    in = w;
  }
  return m;
}

TEST(GpuScanPlan, SharedBytesAreTwoBuffersOfTheWidestMlpLayer) {
  EXPECT_EQ(scanSharedBytes(mlp(64, {128, 512, 16}), 64), 2u * 512 * 32 * 4);
  EXPECT_EQ(scanSharedBytes(mlp(300, {128}), 300), 2u * 300 * 32 * 4);
  ScorerModel dot;
  dot.kind = ScorerKind::Dot;
  EXPECT_EQ(scanSharedBytes(dot, 32), 0u);
  ScorerModel mol;
  mol.kind = ScorerKind::Mol;
  mol.queryComponents = 8, mol.itemComponents = 4, mol.componentDim = 64, mol.gatingWidth = 128, mol.heads = 2;
  // keys (4 x 64 rows) + logits 32 + gate hidden 128 + gates 2 x 32, each row 32 floats.
  EXPECT_EQ(scanSharedBytes(mol, 4 * 64), (256u + 32 + 128 + 64) * 32 * 4);
}

TEST(GpuScanPlan, AModelTooWideForSharedMemoryRunsOnTheCpu) {
  GpuScanNeeds needs;
  needs.sharedBytes = scanSharedBytes(mlp(16, {1024, 16}), 16);  // 256 KiB
  needs.ads = 1000, needs.users = 4, needs.k = 10;
  const GpuScanPlan plan = planGpuScan(needs, hopper(80 * kGiB));
  EXPECT_FALSE(plan.onGpu);
  EXPECT_NE(plan.fallbackReason.find("too wide"), std::string::npos) << plan.fallbackReason;
  EXPECT_NE(plan.fallbackReason.find("256 KiB"), std::string::npos) << plan.fallbackReason;
  // Without the opt-in (a device reporting none), 48 KiB is the limit.
  needs.sharedBytes = 64 * 1024;
  GpuLimits noOptin = hopper(80 * kGiB);
  noOptin.sharedPerBlockOptin = 0;
  EXPECT_FALSE(planGpuScan(needs, noOptin).onGpu);
}

TEST(GpuScanPlan, AboveTheDefaultLimitTheKernelOptsIn) {
  GpuScanNeeds needs;
  needs.sharedBytes = 100 * 1024;
  needs.ads = 1000, needs.users = 4, needs.k = 10;
  const GpuScanPlan plan = planGpuScan(needs, hopper(80 * kGiB));
  EXPECT_TRUE(plan.onGpu);
  EXPECT_TRUE(plan.sharedOptIn);
  needs.sharedBytes = 48 * 1024;
  EXPECT_FALSE(planGpuScan(needs, hopper(80 * kGiB)).sharedOptIn);
}

TEST(GpuScanPlan, MoreUsersThanGridYAreBatched) {
  GpuScanNeeds needs;
  needs.ads = 3000, needs.users = 200000, needs.k = 5, needs.inputBytesPerUser = 32 * 4;
  const GpuScanPlan plan = planGpuScan(needs, hopper(80 * kGiB));
  ASSERT_TRUE(plan.onGpu);
  EXPECT_LE(plan.usersPerBatch, size_t(kMaxGridY));
  // Even batches: 200,000 users in ceil(200000 / 65535) = 4 batches of 50,000.
  EXPECT_EQ(plan.usersPerBatch, 50000u);
  EXPECT_EQ(plan.chunk, 3008u);  // the corpus in one chunk, rounded up to whole tiles
}

TEST(GpuScanPlan, CandidateBuffersStayWithinHalfTheFreeMemory) {
  GpuScanNeeds needs;
  needs.ads = 50'000'000, needs.users = 10000, needs.k = 100000;
  const GpuScanPlan plan = planGpuScan(needs, hopper(kGiB));
  ASSERT_TRUE(plan.onGpu);
  EXPECT_LE(plan.deviceBytes, kGiB / 2);
  EXPECT_EQ(plan.deviceBytes, plan.usersPerBatch * scanBytesPerUser(plan.capacity, 0));
  EXPECT_LT(plan.usersPerBatch, needs.users);  // memory, not the grid, limits the batch
  EXPECT_GE(plan.chunk, size_t(kScanTile));
}

TEST(GpuScanPlan, NotEvenOneUserFitsRunsOnTheCpu) {
  GpuScanNeeds needs;
  needs.ads = 1'000'000, needs.users = 1, needs.k = 100000;
  const GpuScanPlan plan = planGpuScan(needs, hopper(size_t{1} << 20));
  EXPECT_FALSE(plan.onGpu);
  EXPECT_NE(plan.fallbackReason.find("free GPU memory"), std::string::npos) << plan.fallbackReason;
}

TEST(GpuScanPlan, EveryPlanKeepsEveryLimit) {
  std::mt19937_64 rng(13);
  for (int trial = 0; trial < 20000; ++trial) {
    GpuScanNeeds needs;
    needs.ads = 1 + rng() % 200'000'000;
    needs.users = 1 + rng() % 300'000;
    needs.k = 1 + static_cast<int>(rng() % 100000);
    needs.inputBytesPerUser = rng() % 200000;
    needs.sharedBytes = rng() % (64 * 1024);
    const GpuLimits limits = hopper(size_t(rng() % (96 * kGiB)));
    const GpuScanPlan plan = planGpuScan(needs, limits);
    if (!plan.onGpu) {
      EXPECT_FALSE(plan.fallbackReason.empty());
      continue;
    }
    SCOPED_TRACE(::testing::Message() << "ads " << needs.ads << " users " << needs.users << " k " << needs.k << " free "
                                      << limits.freeBytes);
    ASSERT_GE(plan.usersPerBatch, 1u);
    ASSERT_LE(plan.usersPerBatch, size_t(kMaxGridY));
    ASSERT_LE(plan.usersPerBatch, needs.users);
    ASSERT_EQ(plan.chunk % kScanTile, 0u);
    ASSERT_GE(plan.chunk, size_t(kScanTile));
    ASSERT_EQ(plan.capacity, size_t(needs.k) + plan.chunk);
    ASSERT_LE(plan.usersPerBatch * plan.capacity, size_t(INT_MAX));
    ASSERT_LE(plan.deviceBytes, limits.freeBytes / 2);
    ASSERT_LE(plan.chunk / kScanTile, size_t(INT_MAX));  // grid.x
  }
}

TEST(CudaStatus, StickyErrorsAreTheOnesThatLoseTheContext) {
  for (int sticky : {700, 702, 710, 714, 715, 716, 717, 718, 719, 214}) EXPECT_TRUE(isStickyCudaError(sticky)) << sticky;
  // cudaSuccess, cudaErrorInvalidValue, cudaErrorMemoryAllocation, cudaErrorLaunchOutOfResources,
  // cudaErrorInvalidConfiguration, cudaErrorNoDevice: the context stays usable.
  for (int recoverable : {0, 1, 2, 701, 9, 100}) EXPECT_FALSE(isStickyCudaError(recoverable)) << recoverable;
}

}  // namespace
