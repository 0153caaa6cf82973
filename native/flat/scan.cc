#include "flat/scan.h"

namespace cangen {

namespace {
bool hasAvx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}
}  // namespace

ScanFunction bestScanFunction() {
  static const ScanFunction chosen = hasAvx512() ? scan_avx512::scan : scan_avx2::scan;
  return chosen;
}

const char* bestScanName() { return hasAvx512() ? "avx512" : "avx2"; }

}  // namespace cangen
