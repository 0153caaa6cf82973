#pragma once
// What this CPU runs, for kernels built more than once (AVX-512 beside the AVX2 baseline).

namespace cangen {

// AVX-512 F, DQ, BW and VL: what the *_avx512.cc kernels are compiled for.
inline bool cpuHasAvx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}

}  // namespace cangen
