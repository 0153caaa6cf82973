#include "flat/scan.h"

#include "common/cpu_features.h"

namespace cangen {

namespace {
bool hasAvx512() { return cpuHasAvx512(); }
bool hasReducedDot(Precision precision) {
  __builtin_cpu_init();
  return hasAvx512() && (precision == Precision::Bf16 ? __builtin_cpu_supports("avx512bf16")
                                                      : __builtin_cpu_supports("avx512vnni"));
}
}  // namespace

ReducedScanFunction bestReducedScanFunction(Precision precision) {
  return hasReducedDot(precision) ? scan_reduced_avx512::scanReduced : scan_reduced_generic::scanReduced;
}

double bestReducedPeakOps(Precision precision, int threads) {
  return hasReducedDot(precision) ? scan_reduced_avx512::peakOps(precision, threads)
                                  : scan_reduced_generic::peakOps(precision, threads);
}

const char* bestReducedScanName(Precision precision) {
  if (precision == Precision::Bf16) return hasReducedDot(precision) ? "avx512-bf16" : "avx2-bf16";
  return hasReducedDot(precision) ? "avx512-vnni" : "avx2-int8";
}

ScanFunction bestScanFunction() {
  static const ScanFunction chosen = hasAvx512() ? scan_avx512::scan : scan_avx2::scan;
  return chosen;
}

const char* bestScanName() { return hasAvx512() ? "avx512" : "avx2"; }

}  // namespace cangen
