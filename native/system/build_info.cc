#include "system/build_info.h"

#include "common/threads.h"
#include "cuda/gpu_flat_search.h"
#include "flat/scan.h"
#include "sequence/linear_kernels.h"

namespace cangen {

BuildInfo buildInfo() {
  BuildInfo info;
  info.version = CANGEN_VERSION;
  info.faissVersion = CANGEN_FAISS_VERSION;
  info.faissSimd = CANGEN_FAISS_OPT_LEVEL;
  info.scanSimd = bestScanName();
  info.bf16Simd = bestReducedScanName(Precision::Bf16);
  info.int8Simd = bestReducedScanName(Precision::Int8);
  info.sequenceSimd = sequence::linearKernelName(sequence::bestLinearKernel());
  info.cudaCompiled = gpu::compiledWithCuda();
  info.cudaDevices = gpu::deviceCount();
  info.cudaDevice = gpu::describeDevice(0);
  const ThreadBudgetInfo budget = threadBudgetInfo();
  info.threads = budget.budget;
  info.threadSource = budget.source;
  info.affinityCpus = budget.affinityCpus;
  info.cgroupCpus = budget.cgroupCpus;
  info.compiler = "gcc " __VERSION__;
  return info;
}

}  // namespace cangen
