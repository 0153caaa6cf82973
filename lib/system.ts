/** What this build and machine support, and the machine's measured limits. */
import { native, type NativeBuildInfo } from './native';
import { integerIn, knownOptions } from './validate';

export type BuildInfo = NativeBuildInfo;

/**
 * Build and machine facts: cangen and FAISS versions, SIMD levels, CUDA compiled in and devices
 * present, and the thread budget (`threads`) that all concurrent calls share, with what set it
 * (`threadSource`: the affinity mask, the cgroup CPU quota, CANGEN_THREAD_BUDGET or setLimits).
 */
export function buildInfo(): BuildInfo {
  return native().buildInfo();
}

export interface Ceilings {
  /** fp32 FLOP/s of register-resident fused multiply-adds on `threads` threads. */
  peakFlops: number;
  /** The same for the bf16 scan's dot-product instruction (VDPBF16PS, or its AVX2 stand-in): 2 x multiply-adds/s. */
  peakBf16Flops: number;
  /** The same for the int8 scan's (VPDPBUSD, or its AVX2 stand-in): 2 x multiply-adds/s. */
  peakInt8Ops: number;
  /** Bytes/s of streaming reads from memory on `threads` threads. */
  readBandwidth: number;
}

/** Measures the machine's compute ceiling and memory-bandwidth floor (takes about a second). */
export async function measureCeilings(threads: number = buildInfo().threads, megabytes = 1024): Promise<Ceilings> {
  integerIn(threads, 'threads', 1, 4096);
  integerIn(megabytes, 'megabytes', 16, 65536);
  return native().measureCeilings(threads, megabytes);
}

export interface Limits {
  /** Threads all concurrent native calls share (each call's team is leased from it). */
  threads: number;
  /** Bytes one call's results may take (nq x k); larger requests fail with ResourceLimitError. */
  resultBytes: number;
}

export interface LimitsUsage extends Limits {
  /** Threads running native work right now. */
  activeThreads: number;
  /** Most threads running native work at once since the last `limits({ resetPeak: true })`. */
  peakThreads: number;
  /** Bytes of HNSW visited tables kept between searches (bounded by the thread budget). */
  hnswVisitedBytes: number;
  /** Native calls small enough to have run on the main thread, not a worker, since the addon loaded (the fast path for tiny calls). */
  inlineCalls: number;
}

/** The process-wide limits and current use. */
export function limits(options: { resetPeak?: boolean } = {}): LimitsUsage {
  const o = knownOptions(options, 'options', ['resetPeak']);
  return native().limits(o.resetPeak === true);
}

/**
 * Sets process-wide limits. `threads` (1-4096, or 0 for the detected default) is the thread budget
 * shared by every concurrent call; `resultBytes` (0 for the default, 1 GiB) bounds one call's results.
 * Omitted fields keep their value.
 */
export function setLimits(options: Partial<Limits>): void {
  const o = knownOptions(options, 'options', ['threads', 'resultBytes']);
  const threads = o.threads === undefined ? -1 : integerIn(o.threads, 'threads', 0, 4096);
  const resultBytes = o.resultBytes === undefined ? -1 : integerIn(o.resultBytes, 'resultBytes', 0, Number.MAX_SAFE_INTEGER);
  native().setLimits(threads, resultBytes);
}
