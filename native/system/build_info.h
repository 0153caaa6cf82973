#pragma once
// What this build and this machine support, for users (`cangen.buildInfo()`) and bug reports.
#include <string>

namespace cangen {

struct BuildInfo {
  std::string version;
  std::string faissVersion;
  std::string faissSimd;      // "avx2" or "generic": the SIMD level FAISS was compiled for
  std::string scanSimd;       // "avx512" or "avx2": the exact-search kernel chosen on this CPU
  std::string bf16Simd;       // "avx512-bf16" or "avx2-bf16": the bf16 scan's kernel
  std::string int8Simd;       // "avx512-vnni" or "avx2-int8": the int8 scan's kernel
  std::string sequenceSimd;   // "avx512", "avx2" or "scalar": the sequence encoder's linear kernel
  bool cudaCompiled = false;
  int cudaDevices = 0;
  std::string cudaDevice;     // first device's description, or why there is none
  int threads = 0;            // the process's thread budget, shared by concurrent calls (common/threads.h)
  std::string threadSource;   // what set it: "affinity", "cgroup", "CANGEN_THREAD_BUDGET" or "setThreadBudget"
  int affinityCpus = 0;       // CPUs in this process's affinity mask
  double cgroupCpus = 0;      // the cgroup CPU quota in CPUs (0: none)
  std::string compiler;
};

BuildInfo buildInfo();

}  // namespace cangen
