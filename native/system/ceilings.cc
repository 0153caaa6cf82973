#include "system/ceilings.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/aligned_buffer.h"
#include "common/parallel.h"
#include "flat/scan.h"

namespace cangen {

double measurePeakFlops(int threads) {
  return std::string(bestScanName()) == "avx512" ? scan_avx512::peakFlops(threads) : scan_avx2::peakFlops(threads);
}

double measurePeakBf16Flops(int threads) { return bestReducedPeakOps(Precision::Bf16, threads); }
double measurePeakInt8Ops(int threads) { return bestReducedPeakOps(Precision::Int8, threads); }

double measureReadBandwidth(int threads, double bytes) {
  const size_t words = static_cast<size_t>(bytes) / sizeof(uint64_t);
  AlignedBuffer<uint64_t> buffer(words);
  for (size_t i = 0; i < words; ++i) buffer[i] = i;
  double best = 0;
  uint64_t sink = 0;
  for (int round = 0; round < 5; ++round) {
    auto start = std::chrono::steady_clock::now();
    std::atomic<uint64_t> acc{0};
    parallelTeam(threads, [&](int thread, int team) {
      uint64_t mine = 0;
      for (size_t i = words * thread / team, end = words * (thread + 1) / team; i < end; ++i) mine ^= buffer[i];
      acc.fetch_xor(mine);
    });
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    sink ^= acc;
    best = std::max(best, static_cast<double>(words * sizeof(uint64_t)) / seconds);
  }
  return sink == 42 ? best * 1.0000001 : best;  // keeps the reads observable
}

}  // namespace cangen
