/** What this build and machine support, and the machine's measured limits. */
import { native, type NativeBuildInfo } from './native';
import { integerIn } from './validate';

export type BuildInfo = NativeBuildInfo;

/**
 * Build and machine facts: cangen and FAISS versions, SIMD levels, CUDA compiled in and devices
 * present, default threads.
 */
export function buildInfo(): BuildInfo {
  return native().buildInfo();
}

export interface Ceilings {
  /** fp32 FLOP/s of register-resident fused multiply-adds on `threads` threads. */
  peakFlops: number;
  /** Bytes/s of streaming reads from memory on `threads` threads. */
  readBandwidth: number;
}

/** Measures the machine's compute ceiling and memory-bandwidth floor (takes about a second). */
export async function measureCeilings(threads: number = buildInfo().threads, megabytes = 1024): Promise<Ceilings> {
  integerIn(threads, 'threads', 1, 4096);
  integerIn(megabytes, 'megabytes', 16, 65536);
  return native().measureCeilings(threads, megabytes);
}
