/**
 * The pure parts of the sizing model (docs/SIZING.md): quantiles of measured latency samples, the
 * fan-out tail of S shards with and without hedging (order statistics), a Monte-Carlo simulation
 * that draws from the same samples to check the formula, and the scaling of a shard's latency
 * with its size. No I/O: bench/sizing.ts feeds it measurements, test/sizing-model.test.ts checks it.
 */
import { uniform } from './data';

/** The q-quantile (0..1) of ascending `sorted`, interpolated linearly between order statistics. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new Error('Expected at least one sample for a quantile');
  if (q <= 0) return sorted[0]!;
  if (q >= 1) return sorted[n - 1]!;
  const position = q * (n - 1);
  const below = Math.floor(position);
  const above = Math.min(n - 1, below + 1);
  return sorted[below]! + (sorted[above]! - sorted[below]!) * (position - below);
}

/**
 * The smallest sample whose empirical CDF reaches p (the inverse of empiricalCdf, no
 * interpolation): exactly the p-quantile of a draw from the samples, which is what the
 * simulation draws; at the extreme quantiles a fan-out reads, interpolating between two far-apart
 * outliers would describe neither.
 */
export function empiricalQuantile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) throw new Error('Expected at least one sample for a quantile');
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil(p * n - 1e-9) - 1))]!;
}

/** The empirical CDF of ascending `sorted` at t: the fraction of samples <= t. */
export function empiricalCdf(sorted: ArrayLike<number>, t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo / sorted.length;
}

export function ascending(values: Iterable<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/**
 * The q-quantile of the slowest of S independent shards whose latencies follow `sorted`, plus a
 * constant router overhead: the router answers when the last shard does, and
 * P(max of S <= t) = F(t)^S, so the q-quantile of the max is F's quantile at q^(1/S).
 */
export function fanOutQuantile(sorted: ArrayLike<number>, shards: number, q: number, overheadMs = 0): number {
  return overheadMs + empiricalQuantile(sorted, q ** (1 / shards));
}

/**
 * The same with hedging: a shard whose first replica has not answered after `hedgeMs` is also
 * asked of a second replica, and the first answer wins. With independent replicas (a hedge does
 * not slow the second one down) a shard answers by t with probability
 * 1 - (1 - F(t)) (1 - F(t - hedgeMs)), and the fan-out's q-quantile is the t where that,
 * raised to the S-th power, reaches q (found by bisection on the empirical CDF).
 */
export function hedgedFanOutQuantile(sorted: ArrayLike<number>, shards: number, q: number, hedgeMs: number, overheadMs = 0): number {
  const shardCdf = (t: number) => 1 - (1 - empiricalCdf(sorted, t)) * (1 - empiricalCdf(sorted, t - hedgeMs));
  const target = q ** (1 / shards);
  let lo = 0;
  let hi = sorted[sorted.length - 1]! + hedgeMs;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (shardCdf(mid) >= target) hi = mid;
    else lo = mid;
  }
  return overheadMs + hi;
}

export interface SimulationOptions {
  shards: number;
  trials: number;
  /** Hedge after this many ms (a second draw for the shard, started then); 0: no hedging. */
  hedgeMs?: number;
  /** A constant overhead, or samples of it drawn once per trial. */
  overheadMs?: number | ArrayLike<number>;
  seed?: number;
}

/**
 * Monte Carlo of the fan-out: each trial draws every shard's latency from `samples` (with
 * replacement), hedges where asked, takes the slowest shard and adds the overhead. Returns the
 * trial latencies, ascending.
 */
export function simulateFanOut(samples: ArrayLike<number>, o: SimulationOptions): Float64Array {
  const next = uniform(o.seed ?? 1);
  // The overhead has a generator of its own, so that the shards' draws do not depend on it.
  const nextOverhead = uniform((o.seed ?? 1) ^ 0x5bd1e995);
  const draw = (from: ArrayLike<number>, random = next) => from[Math.floor(random() * from.length)]!;
  const hedgeMs = o.hedgeMs ?? 0;
  const out = new Float64Array(o.trials);
  for (let trial = 0; trial < o.trials; trial++) {
    let slowest = 0;
    for (let s = 0; s < o.shards; s++) {
      let shard = draw(samples);
      if (hedgeMs > 0 && shard > hedgeMs) shard = Math.min(shard, hedgeMs + draw(samples));
      if (shard > slowest) slowest = shard;
    }
    const overhead = typeof o.overheadMs === 'number' || o.overheadMs === undefined ? (o.overheadMs ?? 0) : draw(o.overheadMs, nextOverhead);
    out[trial] = slowest + overhead;
  }
  return out.sort();
}

/**
 * A shard's latency samples measured at `fromAds`, carried to `toAds` ads by a cost model:
 * 'linear' (an exact scan reads every ad), 'sqrt' (IVF with nlist ~ sqrt(ads) and a fixed nprobe
 * visits ~ sqrt(ads) ads), 'log' (HNSW: hops grow with log(ads)). Each sample is scaled by the
 * same factor: the distribution's shape (its tail relative to its median) is assumed to hold.
 */
export type CostModel = 'linear' | 'sqrt' | 'log';

export function costFactor(model: CostModel, fromAds: number, toAds: number): number {
  if (model === 'linear') return toAds / fromAds;
  if (model === 'sqrt') return Math.sqrt(toAds / fromAds);
  return Math.log(Math.max(toAds, 2)) / Math.log(Math.max(fromAds, 2));
}

export function scaleSamples(sorted: ArrayLike<number>, model: CostModel, fromAds: number, toAds: number): Float64Array {
  const factor = costFactor(model, fromAds, toAds);
  return Float64Array.from(sorted, (x) => x * factor);
}

/**
 * The largest shard size in [minAds, maxAds] whose latency (`latencyAt(ads)`, the fan-out
 * quantile over however many shards that size needs, plus the router's cost) is within
 * `budgetMs`; 0 when none is. Not a bisection: latency is U-shaped in shard size (large shards
 * scan long, small ones mean many shards, a longer tail and more router work), so sizes are
 * tried from maxAds down on a grid 1% apart and the first that fits is the answer.
 */
export function largestShardWithin(budgetMs: number, maxAds: number, latencyAt: (ads: number) => number, minAds = 1): number {
  for (let ads = maxAds; ads >= minAds; ads *= 0.99) {
    if (latencyAt(ads) <= budgetMs) return Math.floor(ads);
  }
  return 0;
}
