/** Closed-loop load for the cluster benchmarks: latency samples and their summary. */
import { ascending, quantile } from './sizing-model';

export type Latencies = { samples: number[]; seconds: number };
export type Summary = ReturnType<typeof summary>;

export function summary(l: Latencies) {
  const sorted = ascending(l.samples);
  return { requests: l.samples.length, perSecond: l.samples.length / l.seconds, p50Ms: quantile(sorted, 0.5), p90Ms: quantile(sorted, 0.9), p99Ms: quantile(sorted, 0.99), maxMs: sorted[sorted.length - 1]! };
}

/** Closed loop: `workers` callers each issue the next request when the last one returns, for `forSeconds` (after `warmup` untimed calls). */
export async function closedLoop(workers: number, forSeconds: number, call: (i: number) => Promise<void>, warmup = 20): Promise<Latencies> {
  for (let i = 0; i < warmup; i++) await call(i);
  const samples: number[] = [];
  const started = performance.now();
  const until = started + forSeconds * 1000;
  let next = 0;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (performance.now() < until) {
      const t = performance.now();
      await call(next++);
      samples.push(performance.now() - t);
    }
  }));
  return { samples, seconds: (performance.now() - started) / 1000 };
}

export const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
export const thousands = (x: number) => Math.round(x).toLocaleString('en-US');
