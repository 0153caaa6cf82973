/**
 * An open-loop load generator for `cangen bench --client paced`: request i leaves at
 * start + i / rate whatever earlier answers took, and its latency counts from that scheduled
 * time (a late send is the server's delay too, so no latency is hidden). autocannon's fixed
 * rate is paced per connection, so its 32 connections' timers release requests together, in
 * bursts; this sends them evenly spaced, as independent users would.
 */
export interface LoadSummary {
  latency: { p50: number; p90: number; p99: number; max: number; average: number; total: number };
  requests: { average: number; total: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}

const timeoutMs = 5000;

function percentile(sorted: number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export async function pacedLoad(url: string, rate: number, seconds: number, body: () => string): Promise<LoadSummary> {
  const total = Math.round(rate * seconds);
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const request = fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(), signal: AbortSignal.timeout(timeoutMs) });
    pending.push(
      request.then(
        async (response) => {
          await response.arrayBuffer();
          if (response.ok) latencies.push(performance.now() - due);
          else non2xx++;
        },
        (error: unknown) => {
          if ((error as Error).name === 'TimeoutError') timeouts++;
          else errors++;
        },
      ),
    );
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - start) / 1000;
  const sorted = latencies.sort((a, b) => a - b);
  const round = (ms: number) => Math.round(ms * 100) / 100;
  return {
    latency: {
      p50: round(percentile(sorted, 0.5)), p90: round(percentile(sorted, 0.9)), p99: round(percentile(sorted, 0.99)), max: round(sorted.at(-1) ?? NaN),
      average: round(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)), total: sorted.length,
    },
    requests: { average: latencies.length / elapsed, total: latencies.length },
    non2xx,
    errors,
    timeouts,
  };
}
