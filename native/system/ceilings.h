#pragma once
// The machine's limits, measured in-process so benchmarks can say how close a kernel gets.

namespace cangen {

// fp32 FLOP/s of register-resident fused multiply-adds on `threads` threads, at the widest
// vector width the scan kernel uses on this CPU.
double measurePeakFlops(int threads);
// The same for the bf16 and int8 scan kernels' dot-product instructions (2 x multiply-adds / s).
double measurePeakBf16Flops(int threads);
double measurePeakInt8Ops(int threads);
// Bytes/s of streaming reads over a buffer of `bytes` (far larger than the caches) on `threads`.
double measureReadBandwidth(int threads, double bytes);

}  // namespace cangen
