#pragma once
// Device code: per-query cut of a candidate buffer back to exactly k entries, and the small
// kernels around the final sort. One block per query.
//
// Radix select: scores map to order-preserving uint32 keys; four passes of 8-bit histograms
// (most significant digit first) find the key of the k-th largest entry. Then the entries above
// it, plus enough entries equal to it to make k, are compacted through a scratch area and
// copied back to the front of the buffer; the threshold becomes the k-th score, so the next
// chunk only appends what can still enter the top k.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "cuda/score_kernel.cuh"

namespace cangen::gpu {

constexpr int kSelectThreads = 1024;
constexpr int kFinishThreads = 256;

// Larger float <=> larger key (for non-NaN values; -0.0 sorts just below +0.0).
__device__ __forceinline__ uint32_t orderedKey(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ float keyToFloat(uint32_t key) {
  const uint32_t u = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
  return __uint_as_float(u);
}

struct SelectArgs {
  float* candScores;       // nq x capacity
  uint32_t* candSlots;     // nq x capacity
  uint32_t* counts;        // nq
  float* thresholds;       // nq
  size_t capacity;
  int k;
  float* scratchScores;    // nq x k
  uint32_t* scratchSlots;  // nq x k
  int* errorFlag;
};

__global__ void __launch_bounds__(kSelectThreads) selectTopKKernel(SelectArgs args) {
  __shared__ uint32_t histogram[256];
  __shared__ uint32_t sharedPrefix;
  __shared__ uint32_t sharedRemaining;
  __shared__ uint32_t sharedAbove;  // compaction cursor for keys above the k-th
  __shared__ uint32_t sharedEqual;  // compaction cursor for keys equal to the k-th

  const int q = blockIdx.x;
  const int tid = threadIdx.x;
  const uint32_t k = static_cast<uint32_t>(args.k);
  size_t n = args.counts[q];  // read by every thread before any write below
  if (n > args.capacity) {
    if (tid == 0) atomicOr(args.errorFlag, kErrorCandidateOverflow);
    n = args.capacity;
  }
  if (n <= k) return;  // uniform across the block

  float* scores = args.candScores + static_cast<size_t>(q) * args.capacity;
  uint32_t* slots = args.candSlots + static_cast<size_t>(q) * args.capacity;
  float* scratchScores = args.scratchScores + static_cast<size_t>(q) * k;
  uint32_t* scratchSlots = args.scratchSlots + static_cast<size_t>(q) * k;

  if (tid == 0) {
    sharedAbove = 0;
    sharedEqual = 0;
  }
  // Invariant at each pass: at least `remaining` keys match `prefix` on the bits of `mask`.
  uint32_t prefix = 0;
  uint32_t mask = 0;
  uint32_t remaining = k;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = tid; i < 256; i += kSelectThreads) histogram[i] = 0;
    __syncthreads();  // histogram cleared (and, first time, the cursors set)
    for (size_t i = tid; i < n; i += kSelectThreads) {
      const uint32_t key = orderedKey(scores[i]);
      if ((key & mask) == prefix) atomicAdd(&histogram[(key >> shift) & 0xffu], 1u);
    }
    __syncthreads();  // histogram complete
    if (tid == 0) {
      // Walk digits from the top; `above` counts matching keys with a larger digit.
      uint32_t above = 0;
      int digit = 255;
      for (; digit > 0; --digit) {
        if (above + histogram[digit] >= remaining) break;
        above += histogram[digit];
      }
      // At digit 0 the invariant guarantees above + histogram[0] >= remaining.
      sharedPrefix = prefix | (static_cast<uint32_t>(digit) << shift);
      sharedRemaining = remaining - above;
    }
    __syncthreads();  // the digit is chosen; nobody touches the histogram until the next clear
    prefix = sharedPrefix;
    remaining = sharedRemaining;
    mask |= 0xffu << shift;
  }
  // Now `prefix` is the k-th largest key: exactly k - remaining keys are larger, and at least
  // `remaining` are equal to it.
  const uint32_t kthKey = prefix;
  const uint32_t aboveCount = k - remaining;
  for (size_t i = tid; i < n; i += kSelectThreads) {
    const float score = scores[i];
    const uint32_t key = orderedKey(score);
    if (key > kthKey) {
      const uint32_t p = atomicAdd(&sharedAbove, 1u);
      if (p < aboveCount) {
        scratchScores[p] = score;
        scratchSlots[p] = slots[i];
      }
    } else if (key == kthKey) {
      const uint32_t p = atomicAdd(&sharedEqual, 1u);
      if (p < remaining) {
        scratchScores[aboveCount + p] = score;
        scratchSlots[aboveCount + p] = slots[i];
      }
    }
  }
  __syncthreads();  // scratch written (global writes of this block are visible after the barrier)
  if (tid == 0 && (sharedAbove != aboveCount || sharedEqual < remaining)) {
    atomicOr(args.errorFlag, kErrorSelectMismatch);
  }
  for (uint32_t i = tid; i < k; i += kSelectThreads) {
    scores[i] = scratchScores[i];
    slots[i] = scratchSlots[i];
  }
  if (tid == 0) {
    args.counts[q] = k;
    args.thresholds[q] = keyToFloat(kthKey);
  }
}

// Sets every threshold to -inf and every count to 0 (start of a batch).
__global__ void resetQueriesKernel(float* thresholds, uint32_t* counts, int nq) {
  const int q = blockIdx.x * blockDim.x + threadIdx.x;
  if (q < nq) {
    thresholds[q] = -__int_as_float(0x7f800000);
    counts[q] = 0;
  }
}

// Sort key: score descending, then slot ascending (a descending sort of this 64-bit key).
__device__ __forceinline__ uint64_t sortKey(float score, uint32_t slot) {
  return (static_cast<uint64_t>(orderedKey(score)) << 32) | static_cast<uint64_t>(0xffffffffu - slot);
}

// Grid: (ceil(k / kFinishThreads), nq). Packs each query's <= k survivors into keys[q * k ...]
// and writes the segment bounds for the segmented sort.
__global__ void buildSortKeysKernel(const float* candScores, const uint32_t* candSlots,
                                    const uint32_t* counts, size_t capacity, int k, uint64_t* keys,
                                    int64_t* segmentBegin, int64_t* segmentEnd, int* errorFlag) {
  const int q = blockIdx.y;
  const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  uint32_t n = counts[q];
  if (n > static_cast<uint32_t>(k)) {
    if (i == 0) atomicOr(errorFlag, kErrorCountAboveK);
    n = static_cast<uint32_t>(k);
  }
  if (i == 0) {
    segmentBegin[q] = static_cast<int64_t>(q) * k;
    segmentEnd[q] = static_cast<int64_t>(q) * k + n;
  }
  if (i < n) {
    const size_t src = static_cast<size_t>(q) * capacity + i;
    keys[static_cast<size_t>(q) * k + i] = sortKey(candScores[src], candSlots[src]);
  }
}

// Grid: (ceil(k / kFinishThreads), nq). Decodes the sorted keys; pads with slot -1, score -inf.
__global__ void writeResultsKernel(const uint64_t* sortedKeys, const uint32_t* counts, int k,
                                   int64_t* outSlots, float* outScores) {
  const int q = blockIdx.y;
  const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= static_cast<uint32_t>(k)) return;
  const uint32_t n = min(counts[q], static_cast<uint32_t>(k));
  const size_t at = static_cast<size_t>(q) * k + i;
  if (i < n) {
    const uint64_t key = sortedKeys[at];
    outScores[at] = keyToFloat(static_cast<uint32_t>(key >> 32));
    outSlots[at] = static_cast<int64_t>(0xffffffffu - static_cast<uint32_t>(key & 0xffffffffu));
  } else {
    outScores[at] = -__int_as_float(0x7f800000);
    outSlots[at] = -1;
  }
}

}  // namespace cangen::gpu
