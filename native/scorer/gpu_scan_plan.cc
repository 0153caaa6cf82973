#include "scorer/gpu_scan_plan.h"

#include <algorithm>
#include <climits>

namespace cangen::gpu {

namespace {

size_t roundUp(size_t x, size_t m) { return (x + m - 1) / m * m; }
size_t roundDown(size_t x, size_t m) { return x / m * m; }

std::string kib(size_t bytes) { return std::to_string((bytes + 1023) / 1024) + " KiB"; }
std::string mib(size_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

// The chunk a batch aims for before it gives up users: a few tiles per SM at least.
constexpr size_t kPreferredMinChunk = 8192;
// Largest chunk of one launch (grid.x = chunk / kScanTile).
constexpr size_t kMaxChunk = size_t{1} << 20;

}  // namespace

size_t scanSharedBytes(const ScorerModel& m, int itemRows) {
  const size_t tileFloats = sizeof(float) * kScanTile;
  switch (m.kind) {
    case ScorerKind::Dot: return 0;
    case ScorerKind::Mlp: {  // two ping-pong buffers of the widest activation
      int rows = std::max(m.itemDim, m.hidden.empty() ? 0 : m.hidden[0].out);
      for (const DenseWeights& d : m.hidden) rows = std::max(rows, d.out);
      return 2 * static_cast<size_t>(rows) * tileFloats;
    }
    case ScorerKind::Mol: {  // item keys, logits, gate hidden, gates
      const size_t p = static_cast<size_t>(m.logits());
      return (static_cast<size_t>(itemRows) + p + m.gatingWidth + static_cast<size_t>(m.heads) * p) * tileFloats;
    }
  }
  return 0;
}

size_t scanBytesPerUser(size_t capacity, size_t inputBytesPerUser) {
  // scores + slots, twice; cub's segmented sort scratch is bounded by about one more copy.
  const size_t perEntry = 3 * (sizeof(float) + sizeof(uint32_t));
  const size_t fixed = sizeof(float) + sizeof(uint32_t) + 2 * sizeof(int);  // threshold, count, segment
  return capacity * perEntry + fixed + inputBytesPerUser;
}

GpuScanPlan planGpuScan(const GpuScanNeeds& needs, const GpuLimits& limits) {
  GpuScanPlan plan;
  const size_t sharedLimit = std::max(limits.sharedPerBlock, limits.sharedPerBlockOptin);
  if (needs.sharedBytes > sharedLimit) {
    plan.fallbackReason = "the model is too wide for the GPU kernel: a block needs " + kib(needs.sharedBytes) +
                          " of shared memory and the device allows " + kib(sharedLimit);
    return plan;
  }
  plan.sharedOptIn = needs.sharedBytes > limits.sharedPerBlock;
  if (needs.users == 0 || needs.ads == 0) {
    plan.onGpu = true;
    return plan;
  }
  const size_t k = static_cast<size_t>(std::max(needs.k, 1));
  const size_t budget = (limits.freeBytes + limits.reservedBytes) / 2;
  const size_t corpusChunk = std::min(roundUp(needs.ads, kScanTile), kMaxChunk);
  // cub's segment offsets are ints: a batch's users x capacity entries must stay below INT_MAX.
  auto usersFitting = [&](size_t capacity) {
    return std::min({needs.users, static_cast<size_t>(kMaxGridY), budget / scanBytesPerUser(capacity, needs.inputBytesPerUser),
                     static_cast<size_t>(INT_MAX) / capacity});
  };
  size_t minChunk = std::min(kPreferredMinChunk, corpusChunk);
  size_t users = usersFitting(k + minChunk);
  if (users == 0) {
    minChunk = kScanTile;
    users = usersFitting(k + minChunk);
  }
  if (users == 0) {
    plan.fallbackReason = "too little free GPU memory: one user at k = " + std::to_string(k) + " needs " +
                          mib(scanBytesPerUser(k + kScanTile, needs.inputBytesPerUser)) + " and " + mib(limits.freeBytes) +
                          " are free";
    return plan;
  }
  // Spread the users evenly over the batches, then give each user the largest chunk that fits.
  const size_t batches = (needs.users + users - 1) / users;
  users = (needs.users + batches - 1) / batches;
  const size_t perUserBudget = budget / users;
  size_t chunk = corpusChunk;
  const size_t perEntry = scanBytesPerUser(1, 0) - scanBytesPerUser(0, 0);
  const size_t fixed = scanBytesPerUser(0, needs.inputBytesPerUser);
  const size_t entriesByMemory = perUserBudget > fixed ? (perUserBudget - fixed) / perEntry : 0;
  const size_t entriesByIndex = static_cast<size_t>(INT_MAX) / users;
  const size_t entries = std::min(entriesByMemory, entriesByIndex);
  if (entries > k) chunk = std::min(chunk, roundDown(entries - k, kScanTile));
  chunk = std::max(chunk, minChunk);
  plan.onGpu = true;
  plan.usersPerBatch = users;
  plan.chunk = chunk;
  plan.capacity = k + chunk;
  plan.deviceBytes = users * scanBytesPerUser(plan.capacity, needs.inputBytesPerUser);
  return plan;
}

}  // namespace cangen::gpu
